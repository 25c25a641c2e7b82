"""The `local` namespace for real: terraform plans, applies and destroys the customer-churn platform in
the moto emulator, with state in the emulator's S3 and outputs read across stacks through remote state.

Needs the terraform (or tofu) binary, a local mirror of hashicorp/aws and moto; skips, saying which is
missing, elsewhere. It runs the real `mlops` command in a subprocess, bounded in time, against an
emulator on a free port of 127.0.0.1, with its own plans directory and output tree, so it never
touches a developer's emulator or the committed `terraform/`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from mlops_dsl import toolchain

from .conftest import ROOT

pytestmark = pytest.mark.terraform
COMMAND_TIMEOUT_S = 900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory):
    if toolchain.find_binary() is None:
        pytest.skip("no terraform or tofu binary on PATH")
    if toolchain.find_mirror("aws") is None:
        pytest.skip("no local filesystem mirror of hashicorp/aws (looked in " + ", ".join(toolchain.MIRROR_ROOTS) + ")")
    pytest.importorskip("moto", reason="moto (pip install '.[local]') is not installed")
    pytest.importorskip("boto3", reason="boto3 (installed with moto) is not installed")
    base = tmp_path_factory.mktemp("local")
    endpoint = f"http://127.0.0.1:{_free_port()}"
    namespaces = base / "namespaces.yaml"
    namespaces.write_text((ROOT / "namespaces.yaml").read_text().replace("http://127.0.0.1:4566", endpoint))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(MLOPS_WORKDIR=str(base / "work"), TF_CLI_CONFIG_FILE=str(base / "no-user-config"))

    def mlops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mlops_dsl.cli", *args, "--namespaces", str(namespaces),
             *(["--out", str(base / "terraform"), "--blueprint", "blueprints/customer_churn.py"]
               if args[0] != "emulator" else [])],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)

    yield mlops, endpoint
    mlops("emulator", "stop", "-n", "local")


def _aws(endpoint: str, service: str):
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1",
                        aws_access_key_id="mlops-local", aws_secret_access_key="mlops-local")


def _state(endpoint: str, template: str) -> dict:
    body = _aws(endpoint, "s3").get_object(Bucket="mlops-tfstate-local",
                                           Key=f"customer-churn/local/{template}.tfstate")["Body"].read()
    return json.loads(body)


def test_plan_apply_and_destroy_the_local_namespace(local) -> None:
    mlops, endpoint = local

    planned = mlops("plan", "-n", "local")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "started the local AWS emulator on " + endpoint in planned.stdout
    assert "customer-churn/data      planned" in planned.stdout
    assert "customer-churn/serving   deferred   until customer-churn/data is applied" in planned.stdout

    applied = mlops("apply", "-n", "local")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for template in ("data", "features", "training", "serving"):
        assert f"customer-churn/{template}" in applied.stdout
        assert _state(endpoint, template)["resources"], template

    # Outputs flowed through remote state: the serving stack's models point at the data stack's bucket.
    buckets = _state(endpoint, "data")["outputs"]["bucket_names"]["value"]
    models = _aws(endpoint, "sagemaker").list_models()["Models"]
    assert len(models) == 2
    described = _aws(endpoint, "sagemaker").describe_model(ModelName=models[0]["ModelName"])
    assert described["PrimaryContainer"]["ModelDataUrl"].startswith(f"s3://{buckets['models']}/")
    role = _state(endpoint, "training")["outputs"]["execution_role_arn"]["value"]
    assert described["ExecutionRoleArn"] == role

    destroyed = mlops("destroy", "-n", "local")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    order = [line.split(":")[0].strip() for line in destroyed.stdout.splitlines() if "destroy started" in line]
    assert order == [f"customer-churn/{t}" for t in ("serving", "training", "features", "data")]
    for template in ("data", "features", "training", "serving"):
        assert not _state(endpoint, template).get("resources"), template
    s3 = _aws(endpoint, "s3")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["mlops-tfstate-local"]
    assert not _aws(endpoint, "sagemaker").list_models()["Models"]
    assert not _aws(endpoint, "sagemaker").list_endpoints()["Endpoints"]
    assert [v for v in _aws(endpoint, "ec2").describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert not [r for r in _aws(endpoint, "iam").list_roles()["Roles"] if r["RoleName"].startswith("customer-churn")]
    kms = _aws(endpoint, "kms")
    states = {kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] for k in kms.list_keys()["Keys"]}
    assert states <= {"PendingDeletion"}  # KMS never deletes a key at once
