"""The `local` namespace for real, and the model lifecycle through it: terraform plans and applies the
customer-churn platform in the moto emulator (state in the emulator's S3, outputs read across stacks
through remote state); a trained model is registered, refused before approval, approved, promoted,
planned (the summary names old and new versions) and applied; a second version replaces it through
the endpoint's update; destroy leaves nothing.

Needs the terraform (or tofu) binary, a local mirror of hashicorp/aws and moto; skips, saying which is
missing, elsewhere. It runs the real `mlops` command in a subprocess, bounded in time, against an
emulator on a free port of 127.0.0.1, with its own plans directory and output tree, so it never
touches a developer's emulator or the committed `terraform/`.
"""

from __future__ import annotations

import json
import re

import pytest

from mlops_dsl import blueprints

from .conftest import ROOT, LocalNamespace

# The customer-churn platform the local namespace renders: its templates and their dependencies.
PLATFORM = next(p for p in blueprints.load([ROOT / "blueprints/customer_churn.py"]) if p.name == "customer-churn")
TEMPLATES = PLATFORM.deploy_order()

pytestmark = pytest.mark.terraform


@pytest.fixture
def local(local_namespace: LocalNamespace):
    """The session's `local` namespace (conftest.py), as (mlops, endpoint, base)."""
    return local_namespace.mlops, local_namespace.endpoint, local_namespace.base


def _aws(endpoint: str, service: str):
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1",
                        aws_access_key_id="mlops-local", aws_secret_access_key="mlops-local")


def _state(endpoint: str, template: str) -> dict:
    body = _aws(endpoint, "s3").get_object(Bucket="mlops-tfstate-local",
                                           Key=f"customer-churn/local/{template}.tfstate")["Body"].read()
    return json.loads(body)


def _trained_model(directory, c: float) -> str:
    """A small churn classifier saved as an MLflow model, with the evaluation and baseline training writes."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    directory.mkdir()
    model = directory / "model"
    mlflow.sklearn.save_model(LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]), model,
                              serialization_format="pickle")
    (model / "evaluation.json").write_text(json.dumps({"metrics": {"roc_auc": 0.9, "accuracy": 0.85}}))
    (model / "baseline.json").write_text(json.dumps({"version": 2, "rows": 4, "features": {}}))
    return str(model)


def _summary(base) -> str:
    return (base / "work" / "plans" / "local" / "summary.md").read_text()


def _endpoint_model(endpoint: str) -> dict:
    sm = _aws(endpoint, "sagemaker")
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName="customer-churn-local-serving")["EndpointConfigName"])
    variants = {v["VariantName"]: v["ModelName"] for v in config["ProductionVariants"]}
    assert set(variants) == {"champion"}  # the unpinned challenger is left out
    return sm.describe_model(ModelName=variants["champion"])


def _release(mlops, model: str, version: int) -> None:
    """Register, approve and promote one version to the champion variant."""
    registered = mlops("models", "register", "-n", "local", "--model", model)
    assert registered.returncode == 0, registered.stdout + registered.stderr
    assert f"registered customer-churn-local version {version} (PendingManualApproval)" in registered.stdout
    early = mlops("models", "promote", "-n", "local", "--variant", "champion", "--version", str(version))
    assert early.returncode == 1 and "is PendingManualApproval, not Approved" in early.stderr
    approved = mlops("models", "approve", "-n", "local", "--version", str(version))
    assert approved.returncode == 0, approved.stdout + approved.stderr
    promoted = mlops("models", "promote", "-n", "local", "--variant", "champion", "--version", str(version))
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr


@pytest.mark.local_stage(0)
def test_the_model_lifecycle_in_the_local_namespace(local, local_namespace: LocalNamespace, tmp_path) -> None:
    mlops, endpoint, base = local

    planned = mlops("plan", "-n", "local")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "started the local AWS emulator on " + endpoint in planned.stdout
    assert re.search(r"customer-churn/data +planned", planned.stdout), planned.stdout
    assert "customer-churn/serving: champion: no model version pinned" in planned.stdout
    applied = mlops("apply", "-n", "local")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    local_namespace.applied = True  # tests of a later stage reuse the platform (tests/test_local_features.py)
    for template in TEMPLATES:
        assert _state(endpoint, template)["resources"], template
    assert not _aws(endpoint, "sagemaker").list_endpoints()["Endpoints"]  # nothing pinned: no endpoint

    # Version 1: registered, refused before approval, approved, promoted, planned, applied.
    _release(mlops, _trained_model(tmp_path / "v1", 1.0), 1)
    pins = base / "models" / "local.yaml"
    assert "champion: {version: 1, group: customer-churn-local" in pins.read_text()
    # A pin changes the serving stack only. (The whole namespace would defer serving behind the
    # emulator's perpetual feature-group replacement: moto does not keep its online store.)
    planned = mlops("plan", "-n", "local", "--template", "serving")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "- champion: nothing -> version 1 (image " in _summary(base)
    applied = mlops("apply", "-n", "local", "--template", "serving")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    first = _endpoint_model(endpoint)
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/customer-churn-local/1"
    package = _aws(endpoint, "sagemaker").describe_model_package(ModelPackageName=arn)
    assert first["PrimaryContainer"]["ModelDataUrl"] == package["InferenceSpecification"]["Containers"][0][
        "ModelDataUrl"]
    tags = {t["Key"]: t["Value"] for t in _aws(endpoint, "sagemaker").list_tags(ResourceArn=first["ModelArn"])["Tags"]}
    assert tags["mlops-dsl:model-package"] == arn
    # Outputs flowed through remote state: the model runs with the training stack's hosting role.
    assert first["ExecutionRoleArn"] == _state(endpoint, "training")["outputs"]["hosting_role_arn"]["value"]

    # Version 2 replaces it through the endpoint's update.
    _release(mlops, _trained_model(tmp_path / "v2", 0.1), 2)
    planned = mlops("plan", "-n", "local", "--template", "serving")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    image = first["PrimaryContainer"]["Image"].rsplit(":", 1)[-1]
    assert f"- champion: version 1 (image {image}) -> version 2 (image {image})" in _summary(base)
    applied = mlops("apply", "-n", "local", "--template", "serving")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    second = _endpoint_model(endpoint)
    assert second["ModelName"] != first["ModelName"] and "-v2-" in second["ModelName"]

    # Version 3's update is rolled back (the emulator's rehearsal tag): the apply fails saying so,
    # and the configuration the endpoint still runs is kept.
    sm = _aws(endpoint, "sagemaker")
    live = sm.describe_endpoint(EndpointName="customer-churn-local-serving")
    rehearsal = mlops("emulator", "rehearse-rollback", "--endpoint", "customer-churn-local-serving")
    assert rehearsal.returncode == 0, rehearsal.stdout + rehearsal.stderr
    _release(mlops, _trained_model(tmp_path / "v3", 0.5), 3)
    assert mlops("plan", "-n", "local", "--template", "serving").returncode == 0
    applied = mlops("apply", "-n", "local", "--template", "serving")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    running = live["EndpointConfigName"]
    assert (f"SageMaker rolled the update of endpoint customer-churn-local-serving back: it runs configuration "
            f"{running}, not ") in " ".join((applied.stdout + applied.stderr).split())
    assert sm.describe_endpoint(EndpointName="customer-churn-local-serving")["EndpointConfigName"] == running
    assert sm.describe_endpoint_config(EndpointConfigName=running)["ProductionVariants"]  # not deleted
    assert _endpoint_model(endpoint)["ModelName"] == second["ModelName"]

    # A rejected version that is pinned stops the next plan, naming it.
    assert mlops("models", "reject", "-n", "local", "--version", "3").returncode == 0
    refused = mlops("plan", "-n", "local", "--template", "serving")
    assert refused.returncode == 1
    assert "customer-churn.champion pins customer-churn-local version 3, which is Rejected" in refused.stderr


@pytest.mark.local_stage(2)
def test_destroy_leaves_nothing_in_the_local_namespace(local, local_namespace: LocalNamespace) -> None:
    """After every test that uses the applied platform (the conftest orders them)."""
    mlops, endpoint, _ = local
    local_namespace.ensure_applied()
    destroyed = mlops("destroy", "-n", "local")
    local_namespace.applied = False
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    order = [line.split(":")[0].strip() for line in destroyed.stdout.splitlines() if "destroy started" in line]
    assert sorted(order) == sorted(f"customer-churn/{t}" for t in TEMPLATES)
    for template, needs in PLATFORM.edges().items():  # a stack goes only after every stack that reads it
        for dependency in needs:
            assert order.index(f"customer-churn/{template}") < order.index(f"customer-churn/{dependency}"), order
    for template in TEMPLATES:
        assert not _state(endpoint, template).get("resources"), template
    s3 = _aws(endpoint, "s3")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["mlops-tfstate-local"]
    sm = _aws(endpoint, "sagemaker")
    assert not sm.list_models()["Models"] and not sm.list_endpoints()["Endpoints"]
    assert not sm.list_endpoint_configs()["EndpointConfigs"]
    assert not sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert [v for v in _aws(endpoint, "ec2").describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert not [r for r in _aws(endpoint, "iam").list_roles()["Roles"] if r["RoleName"].startswith("customer-churn")]
    kms = _aws(endpoint, "kms")
    states = {kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] for k in kms.list_keys()["Keys"]}
    assert states <= {"PendingDeletion"}  # KMS never deletes a key at once
