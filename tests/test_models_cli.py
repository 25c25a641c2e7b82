"""`mlops models`: register, approve, reject, promote and list against a registry in moto (in-process),
with the refusals and exit codes the model lifecycle relies on, and the plan's approval check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_dsl.cli import main
from mlops_dsl.cli_models import check_pins
from mlops_dsl.namespaces import load
from mlops_dsl.pins import parse

from .conftest import ROOT

moto = pytest.importorskip("moto", reason="moto (the local extra) is not installed")

ACCOUNT = "123456789012"  # moto's account
NAMESPACES = f"""\
defaults:
  aws: {{region: eu-west-1}}
  models: {{registry: dev}}
namespaces:
  dev: {{aws: {{account_id: "{ACCOUNT}", backend: {{bucket: s-dev}}}}}}
  staging:
    models: {{promoted_from: dev}}
    aws: {{account_id: "{ACCOUNT}", backend: {{bucket: s-stg}}}}
"""
GROUP = "customer-churn-dev"
BUCKET = f"customer-churn-dev-models-{ACCOUNT}"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A moto registry with the platform's group and models bucket, and a namespaces file in tmp_path."""
    monkeypatch.chdir(ROOT)  # the blueprint's image contexts
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    with moto.mock_aws():
        import boto3

        boto3.client("s3", region_name="eu-west-1").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        boto3.client("sagemaker", region_name="eu-west-1").create_model_package_group(ModelPackageGroupName=GROUP)
        (tmp_path / "namespaces.yaml").write_text(NAMESPACES)
        yield tmp_path


def _model(root: Path, roc_auc: float = 0.91) -> Path:
    model = root / f"model-{roc_auc}"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "model.skops").write_bytes(b"weights")
    (model / "evaluation.json").write_text(json.dumps({"metrics": {"roc_auc": roc_auc, "accuracy": 0.8}}))
    (model / "baseline.json").write_text(json.dumps({"version": 2, "features": {}}))
    return model


def _mlops(root: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--namespaces", str(root / "namespaces.yaml"),
                                     "--blueprint", "blueprints/customer_churn.py"], catch_exceptions=False)


def test_the_lifecycle_from_registration_to_a_pin(registry: Path) -> None:
    registered = _mlops(registry, "models", "register", "-n", "dev", "--model", str(_model(registry)))
    assert registered.exit_code == 0, registered.output
    assert f"registered {GROUP} version 1 (PendingManualApproval)" in registered.output
    # Not approved yet: promotion is refused, naming the status.
    refused = _mlops(registry, "models", "promote", "-n", "dev", "--variant", "champion", "--version", "1")
    assert refused.exit_code == 1
    assert "refused: customer-churn-dev version 1 is PendingManualApproval, not Approved" in refused.output
    assert not (registry / "models" / "dev.yaml").exists()

    approved = _mlops(registry, "models", "approve", "-n", "dev", "--version", "1", "--reason", "reviewed")
    assert approved.exit_code == 0 and "PendingManualApproval -> Approved" in approved.output
    # staging serves only what dev serves.
    early = _mlops(registry, "models", "promote", "-n", "staging", "--variant", "champion", "--version", "1")
    assert early.exit_code == 1 and "refused: dev does not serve version 1" in early.output

    promoted = _mlops(registry, "models", "promote", "-n", "dev", "--variant", "champion", "--version", "1")
    assert promoted.exit_code == 0, promoted.output
    assert "customer-churn.champion: nothing -> version 1" in promoted.output
    pin = parse((registry / "models" / "dev.yaml").read_text(), "dev.yaml")["customer-churn"]["champion"]
    assert pin.version == 1 and pin.group == GROUP
    assert pin.artifact == f"s3://{BUCKET}/packages/{pin.sha256}/model.tar.gz"
    import boto3

    s3 = boto3.client("s3", region_name="eu-west-1")
    assert s3.head_object(Bucket=BUCKET, Key=f"packages/{pin.sha256}/model.tar.gz")["ContentLength"] > 0
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=f"packages/{pin.sha256}/evaluation.json")["Body"].read())[
        "metrics"]["roc_auc"] == 0.91
    assert _mlops(registry, "models", "promote", "-n", "staging", "--variant", "champion",
                  "--version", "1").exit_code == 0

    listed = _mlops(registry, "models", "list", "-n", "staging")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if line.strip().startswith("1 "))
    assert "Approved" in row and "0.9100" in row and "dev:champion, staging:champion" in row

    spaces = load(registry / "namespaces.yaml")
    assert check_pins(spaces["staging"], ["customer-churn"]) == []
    rejected = _mlops(registry, "models", "reject", "-n", "dev", "--version", "1", "--reason", "leaks a label")
    assert rejected.exit_code == 0
    assert "version 1 is pinned in dev:champion, staging:champion" in rejected.output
    problems = check_pins(load(registry / "namespaces.yaml")["staging"], ["customer-churn"])
    assert problems == [f"{registry / 'models' / 'staging.yaml'}: customer-churn.champion pins {GROUP} version 1, "
                        f"which is Rejected: promote an Approved version"]


def test_same_model_registers_the_same_artifact(registry: Path) -> None:
    model = _model(registry)
    for _ in range(2):
        assert _mlops(registry, "models", "register", "-n", "dev", "--model", str(model)).exit_code == 0
    import boto3

    sm = boto3.client("sagemaker", region_name="eu-west-1")
    urls = {sm.describe_model_package(ModelPackageName=s["ModelPackageArn"])["InferenceSpecification"][
        "Containers"][0]["ModelDataUrl"] for s in sm.list_model_packages(ModelPackageGroupName=GROUP)[
        "ModelPackageSummaryList"]}
    assert len(urls) == 1  # a content address: the deterministic archive hashes the same


@pytest.mark.parametrize(("args", "code", "expected"), [
    (("promote", "-n", "dev", "--variant", "blue", "--version", "1"), 2,
     "--variant blue: ModelServing of 'customer-churn' has no such variant (variants: champion, challenger)"),
    (("promote", "-n", "dev", "--variant", "champion", "--version", "9"), 2,
     "customer-churn-dev has no model package version 9"),
    (("approve", "-n", "dev", "--version", "9"), 2, "customer-churn-dev has no model package version 9"),
    (("list", "-n", "qa"), 2, "no namespace 'qa'"),
    (("list", "-n", "dev", "--platform", "customer-chrun"), 2, "--platform customer-chrun: no AWS platform"),
    (("register", "-n", "dev", "--model", "/nonexistent"), 2, "not an MLflow model directory"),
])
def test_user_errors_exit_2_naming_the_value(registry: Path, args, code: int, expected: str) -> None:
    result = _mlops(registry, "models", *args)
    assert result.exit_code == code, result.output
    assert expected in result.output


def test_a_model_below_the_gate_is_not_registered(registry: Path) -> None:
    result = _mlops(registry, "models", "register", "-n", "dev", "--model", str(_model(registry, roc_auc=0.6)))
    assert result.exit_code == 1
    assert "refused: " in result.output and "roc_auc 0.6000, below the quality gate of 0.8" in result.output


def test_no_credentials_is_said_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside moto and with no credentials anywhere, describing a version fails in botocore before
    any request: the command says so and exits 1."""
    monkeypatch.chdir(ROOT)
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # not the credentials an earlier test's session resolved
    (tmp_path / "namespaces.yaml").write_text(NAMESPACES)
    result = CliRunner().invoke(main, ["models", "approve", "-n", "dev", "--platform", "customer-churn",
                                       "--version", "1", "--reason", "checked",
                                       "--namespaces", str(tmp_path / "namespaces.yaml")])
    assert result.exit_code == 1, result.output
    assert "Unable to locate credentials" in result.output
    assert "Traceback" not in result.output
