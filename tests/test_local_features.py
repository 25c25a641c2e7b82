"""Features in, predictions out, in the `local` namespace: raw CSVs put into the raw zone are ingested
into the feature groups by a runner on this machine (`python -m training ingest`, the spec the
features stack wrote), a training set is built from the offline store with the labels
(`python -m training training-set`), `mlops release` trains on it and serves the version, and the
`lookup` endpoint answers a request that carries only the record id with the features read from the
online store, exactly as the `serving` endpoint answers the same rows sent in full.

This is the suite's one end-to-end `mlops release`: its report, the approved package, the pin and
the endpoint's model are checked here (a release re-applies the platform's five serving stacks,
minutes against the emulator, so it is not run twice). Reuses the platform the lifecycle test
applied (tests/conftest.py orders the `local` tests); skips where terraform, its AWS mirror or moto
is missing, as they do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_dsl.aws.naming import endpoint_name

from .conftest import ROOT, LocalNamespace

pytestmark = pytest.mark.terraform

ROWS = 1000  # with seed 11 the held-out ROC AUC is 0.86 against the gate's 0.80 (2,000 rows: 0.82)
FEATURE_TIME = 1764547200.0  # 2025-12-01T00:00:00Z: when the billing export was taken
LABEL_TIME = 1767225600.0  # 2026-01-01: churn observed a month later
CUSTOMER = ["customer_id", "event_time", "tenure_months", "monthly_charges", "total_charges", "contract",
            "payment_method", "internet_service", "support_calls"]
ACCOUNT = ["customer_id", "event_time", "senior_citizen", "paperless_billing"]


def _aws(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1",
                        aws_access_key_id="mlops-local", aws_secret_access_key="mlops-local")


def _outputs(endpoint: str, template: str) -> dict[str, Any]:
    body = _aws(endpoint, "s3").get_object(Bucket="mlops-tfstate-local",
                                           Key=f"customer-churn/local/{template}.tfstate")["Body"].read()
    return {k: v["value"] for k, v in json.loads(body)["outputs"].items()}


def _training(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "training", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def _config(tmp_path: Path) -> Path:
    """The shipped configuration with a quick search (logistic regression, 2 candidates x 2 folds): it
    passes the blueprint's gate (ROC AUC 0.80) in seconds."""
    import yaml

    config = yaml.safe_load((ROOT / "training" / "config.yaml").read_text())
    config["model"]["family"] = "logistic_regression"
    config["model"]["search"].update(n_iter=2, cv_folds=2)
    config["gates"]["max_latency_ms"] = 1000  # a busy test machine's single-row p99 is not this test's subject
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _invoke(endpoint: str, name: str, rows: list[dict[str, Any]]) -> Any:
    answer = _aws(endpoint, "sagemaker-runtime").invoke_endpoint(
        EndpointName=name, TargetVariant="champion", ContentType="application/json", Accept="application/json",
        Body=json.dumps({"dataframe_records": rows}))
    return json.loads(answer["Body"].read())


@pytest.mark.local_stage(1)
def test_raw_data_becomes_a_prediction_for_a_request_carrying_only_the_id(local_namespace: LocalNamespace,
                                                                          tmp_path: Path) -> None:
    from training.data import generate_churn

    local_namespace.ensure_applied()
    endpoint, env = local_namespace.endpoint, {**local_namespace.env, "AWS_ACCESS_KEY_ID": "mlops-local",
                                               "AWS_SECRET_ACCESS_KEY": "mlops-local"}
    buckets = _outputs(endpoint, "data")["bucket_names"]
    features = _outputs(endpoint, "features")
    raw, processed = buckets["raw"], buckets["processed"]
    s3 = _aws(endpoint, "s3")

    # Raw data lands in the raw zone: the billing export (one row unreadable), the accounts, the labels.
    sample = generate_churn(ROWS, seed=11)
    exported = sample.assign(event_time=FEATURE_TIME)
    customers = exported[CUSTOMER].astype({"tenure_months": object})
    customers.loc[len(customers)] = ["C999999", FEATURE_TIME, "three", 70.0, 210.0, "One year", "Mailed check",
                                     "DSL", 1]
    s3.put_object(Bucket=raw, Key="customers/2025-12-01.csv", Body=customers.to_csv(index=False).encode())
    s3.put_object(Bucket=raw, Key="accounts/2025-12-01.csv", Body=exported[ACCOUNT].to_csv(index=False).encode())
    labels = pd.DataFrame({"customer_id": sample["customer_id"], "labelled_at": LABEL_TIME,
                           "churned": sample["churned"]})
    s3.put_object(Bucket=raw, Key="labels/churn/2026-01-01.csv", Body=labels.to_csv(index=False).encode())

    # Ingestion, as the state machine's Processing job runs it, here on this machine.
    for group, count in (("customer", ROWS + 1), ("account", ROWS)):
        done = _training("ingest", "--endpoint-url", endpoint, "--region", "eu-west-1",
                         "--spec", features["ingestion_specs"][group], env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        quarantined = 1 if group == "customer" else 0
        assert f"{count} rows, {count - quarantined} written to customer-churn-local-{group}, {quarantined} " \
               f"quarantined" in done.stdout, done.stdout
    rejected = s3.get_object(Bucket=raw, Key="quarantine/customer/customers/2025-12-01.csv.rejected.csv")
    assert "C999999" in rejected["Body"].read().decode()  # kept with its reason, never dropped

    # A training set from the offline store, as the pipeline's first step builds it.
    built = tmp_path / "set"
    made = _training("training-set", "--endpoint-url", endpoint, "--region", "eu-west-1",
                     "--labels", f"s3://{raw}/labels/churn/", "--offline-store", f"s3://{processed}/feature-store/",
                     "--group", "customer-churn-local-customer:customer_id:event_time",
                     "--group", "customer-churn-local-account:customer_id:event_time",
                     "--label-id", "customer_id", "--label-time", "labelled_at", "--label", "churned",
                     "--output", str(built), env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"training set: {ROWS} rows" in made.stdout
    joined = pd.read_parquet(built / "part-00000.parquet")
    assert len(joined) == ROWS and set(joined["customer_id"]) == set(sample["customer_id"])

    # Trained on that set and served by every ModelServing of the platform, `lookup` included.
    _release(local_namespace, built, tmp_path)

    # The same customers, sent in full to `serving` and by id alone to `lookup`: the same answers.
    ids = list(sample["customer_id"][:5])
    full = sample[sample["customer_id"].isin(ids)].drop(columns=["customer_id", "churned"])
    expected = _invoke(endpoint, endpoint_name("customer-churn", "local", "serving"), full.to_dict("records"))
    looked_up = _invoke(endpoint, endpoint_name("customer-churn", "local", "lookup"), [{"customer_id": i} for i in ids])
    # Labels identical; probabilities within the 1e-5 the two engines agree to (README: Serving), as
    # a server answers from scikit-learn until its compiled path is built, then from ONNX Runtime.
    assert looked_up["predictions"] == expected["predictions"] and len(looked_up["predictions"]) == 5
    assert np.allclose(looked_up["probabilities"], expected["probabilities"], rtol=0, atol=1e-5)

    # An id the online store does not hold is the client's mistake, naming the id.
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        _invoke(endpoint, endpoint_name("customer-churn", "local", "lookup"), [{"customer_id": "C999999"}])
    assert "(404)" in str(refused.value) and "C999999" in str(refused.value)


def _release(local_namespace: LocalNamespace, data: Path, tmp_path: Path) -> None:
    """`mlops release -n local` on the set: train, register, local test, approve, promote, plan and apply;
    the endpoint serves the new version, the artifact the registry holds."""
    from mlflow import MlflowClient

    from mlops_dsl import release as r

    client = MlflowClient(tracking_uri=local_namespace.env["MLFLOW_TRACKING_URI"])
    if client.get_experiment_by_name("customer-churn") is None:  # its artifacts in the session's directory
        client.create_experiment("customer-churn", artifact_location=(local_namespace.base / "mlartifacts").as_uri())
    sagemaker = _aws(local_namespace.endpoint, "sagemaker")
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    version = 1 + (len(sagemaker.list_model_packages(ModelPackageGroupName="customer-churn-local")[
        "ModelPackageSummaryList"]) if groups else 0)
    # The latency gate itself is tested in tests/test_release.py; a test machine's load is not the model's
    # latency (a busy 2-core machine here stalled two requests of 100 past 1.3 s once), so its limit is wide.
    released = local_namespace.mlops("release", "-n", "local", "--data", str(data), "--config", str(_config(tmp_path)),
                                     "--latency-margin", "20")
    assert released.returncode == 0, released.stdout + released.stderr
    assert f"released version {version} of customer-churn to local (champion)" in released.stdout
    assert "[3/7] local-test: ran" in released.stdout

    (path,) = sorted((local_namespace.base / "work" / "releases").glob("local-*.json"))[-1:]
    report = json.loads(path.read_text())
    steps = {s["name"]: s for s in report["steps"]}
    assert report["outcome"] == r.RAN and [s["outcome"] for s in report["steps"]] == [r.RAN] * 7
    assert steps["train"]["outputs"]["metrics"]["roc_auc"] >= 0.80
    assert steps["register"]["outputs"]["version"] == version
    assert steps["register"]["outputs"]["status"] == "PendingManualApproval"
    tested = steps["local-test"]["outputs"]
    assert tested["smoke"] == "ok" and tested["sent"] == 100 and tested["errors"] == 0
    assert tested["p99_ms"] <= tested["limit_ms"] == 500 * 20
    assert steps["promote"]["outputs"]["pin"]["version"] == version
    applied = steps["apply"]["outputs"]["stacks"]
    assert {applied[f"local/customer-churn/{t}"]["status"] for t in ("serving", "lookup")} == {"applied"}
    assert all(s["seconds"] is not None for s in report["steps"])

    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/customer-churn-local/{version}"
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "Approved" and "mlops release -n local" in package["ApprovalDescription"]
    assert f"champion: {{version: {version}, " in (local_namespace.base / "models" / "local.yaml").read_text()
    config_name = sagemaker.describe_endpoint(EndpointName="customer-churn-local-serving")["EndpointConfigName"]
    variants = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    model = sagemaker.describe_model(ModelName=next(v["ModelName"] for v in variants if v["VariantName"] == "champion"))
    assert f"-v{version}-" in model["ModelName"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == package["InferenceSpecification"]["Containers"][0][
        "ModelDataUrl"]
