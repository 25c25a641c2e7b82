"""Tracking in the cloud (README: Tracking in the cloud): the opt-in in namespaces.yaml, the AWS
rendering (server, roles, endpoint, the training job's environment and isolation) checked against
the provider schemas and botocore's request shapes, and the training client's configuration.
moto has no tracking server, so nothing here applies one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops_dsl import DataInfrastructure, Dataset, IntegerRange, Platform, TrainingInfrastructure, Tuning
from mlops_dsl.errors import NamespaceError
from mlops_dsl.namespaces import load, parse
from mlops_dsl.validate import validate
from training import tracking
from training.config import ConfigError

from .conftest import ROOT

TAGS = {"training": "aaaaaaaaaaaa", "serving": "bbbbbbbbbbbb"}
DATASET = Dataset(target="churned", id_column="id", numeric=["tenure"], categorical=["plan"])
NAMESPACES = """\
defaults:
  aws: {region: eu-west-1}
namespaces:
  dev:
    tracking: {server: Medium}
    aws: {account_id: "111111111111", backend: {bucket: state-dev}}
  prod:
    models: {registry: dev}
    aws: {account_id: "333333333333", backend: {bucket: state-prod}}
"""
ARN = "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/churn-dev"


def _stacks(text: str = NAMESPACES, ns: str = "dev", **training) -> dict:
    data = DataInfrastructure()
    platform = Platform("churn", cloud="aws").add(data, TrainingInfrastructure(data, dataset=DATASET, **training))
    return {b.template: b.stack for b in platform.synth(replace(parse(text)[ns], pins={}), image_tags=TAGS)}


def _of(stack, kind: str) -> dict:
    return {r.name: r for r in stack.resources if r.type == kind}


def _policy(stack, name: str) -> list[dict]:
    return _of(stack, "aws_iam_role_policy")[name].body["policy"].args[0]["Statement"]


def _hcl(value) -> str:
    from mlops_dsl.terraform.hcl import expression

    return "\n".join(expression(value, 0))


def _training_job(stack) -> dict:
    definition = _of(stack, "aws_sagemaker_pipeline")["training"].body["pipeline_definition"].args[0]
    return {s["Name"]: s for s in definition["Steps"]}


# --- namespaces.yaml ---------------------------------------------------------------------------

def test_the_shipped_file_opts_dev_in_and_leaves_local_and_the_others_out() -> None:
    spaces = load(ROOT / "namespaces.yaml")
    assert spaces["dev"].tracking_server == "Small"
    assert {n for n, ns in spaces.items() if ns.tracking_server} == {"dev"}


@pytest.mark.parametrize(("section", "expected"), [
    ("tracking: {server: Huge}", "namespaces.dev.tracking.server: expected one of Small, Medium, Large; got 'Huge'"),
    ("tracking: {size: Small}", "namespaces.dev.tracking.size: unknown key (known keys: server)"),
    ("tracking: {}", "namespaces.dev.tracking: expected {server: Small|Medium|Large}; got {}"),
    ("tracking: managed", "namespaces.dev.tracking: expected a mapping with keys server; got 'managed'"),
])
def test_a_bad_opt_in_names_the_file_the_field_and_the_value(section: str, expected: str) -> None:
    text = NAMESPACES.replace("tracking: {server: Medium}", section)
    with pytest.raises(NamespaceError) as err:
        parse(text, "ns.yaml")
    assert f"ns.yaml: {expected}" in str(err.value)


def test_only_the_namespace_that_trains_and_never_the_emulator_gets_a_server() -> None:
    elsewhere = NAMESPACES.replace("    models: {registry: dev}\n", "    models: {registry: dev}\n"
                                   "    tracking: {server: Small}\n")
    with pytest.raises(NamespaceError, match=r"namespaces\.prod\.tracking: a tracking server records the training "
                                             r"pipeline's runs, and 'prod' does not train"):
        parse(elsewhere)
    emulated = NAMESPACES.replace('backend: {bucket: state-dev}', 'endpoint: "http://127.0.0.1:4566", '
                                                                  'backend: {bucket: state-dev}')
    with pytest.raises(NamespaceError, match=r"namespaces\.dev\.tracking: the local AWS emulator has no MLflow "
                                             r"tracking server"):
        parse(emulated)
    # `tracking: null` opts a namespace out again
    assert parse(NAMESPACES.replace("{server: Medium}", "null"))["dev"].tracking_server is None


# --- the AWS rendering -------------------------------------------------------------------------

def test_the_server_stores_artifacts_under_the_models_zone_with_a_role_scoped_to_that_prefix() -> None:
    training = _stacks()["training"]
    server = _of(training, "aws_sagemaker_mlflow_tracking_server")["main"].body
    assert server["tracking_server_name"] == "churn-dev" and server["tracking_server_size"] == "Medium"
    assert _hcl(server["artifact_store_uri"]) == \
        '"s3://${data.terraform_remote_state.data.outputs.bucket_names["models"]}/mlflow/"'
    assert server["automatic_model_registration"] is False  # the pipeline registers into its own group
    statements = {s["Sid"]: s for s in _policy(training, "tracking")}
    assert set(statements) == {"ListArtifactPrefix", "ArtifactBucketLocation", "ArtifactObjects", "ArtifactKey"}
    assert statements["ListArtifactPrefix"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow/*", "mlflow"]}}
    # GetBucketLocation carries no s3:prefix: under that condition it would never be allowed
    assert statements["ListArtifactPrefix"]["Action"] == ["s3:ListBucket"]
    assert statements["ArtifactBucketLocation"]["Action"] == ["s3:GetBucketLocation"]
    assert "Condition" not in statements["ArtifactBucketLocation"]
    assert _hcl(statements["ArtifactObjects"]["Resource"][0]).endswith('["models"]}/mlflow/*"')
    assert _hcl(statements["ArtifactKey"]["Resource"][0]) == "data.terraform_remote_state.data.outputs.kms_key_arn"


def test_the_training_job_logs_to_the_server_without_isolation_and_the_other_steps_stay_isolated() -> None:
    training = _stacks()["training"]
    steps = _training_job(training)
    train = steps["Train"]["Arguments"]
    assert _hcl(train["Environment"]["MLFLOW_TRACKING_URI"]) == "aws_sagemaker_mlflow_tracking_server.main.arn"
    assert train["EnableNetworkIsolation"] is False
    assert train["VpcConfig"]["Subnets"] is not None  # still in the private subnets
    assert all(steps[s]["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is True for s in ("Split", "Evaluate"))
    jobs = {s["Sid"]: s for s in _policy(training, "execution")}
    assert jobs["LogToTrackingServer"] == {"Sid": "LogToTrackingServer", "Effect": "Allow",
                                           "Action": ["sagemaker-mlflow:*"], "Resource": [ARN]}


def test_a_tuning_job_s_trials_log_there_too_and_match_the_request_shape() -> None:
    stacks = _stacks(tuning=Tuning("validation:cv_roc_auc", [IntegerRange("max_depth", 2, 8)]))
    trial = _training_job(stacks["training"])["Tune"]["Arguments"]["TrainingJobDefinition"]
    assert _hcl(trial["Environment"]["MLFLOW_TRACKING_URI"]) == "aws_sagemaker_mlflow_tracking_server.main.arn"
    assert trial["EnableNetworkIsolation"] is False
    report = validate([("dev/churn/training", stacks["training"])], schema=True)
    assert report.problems == [] and report.pipeline_values > 0


def test_opted_out_nothing_changes_and_the_job_stays_isolated() -> None:
    stacks = _stacks(NAMESPACES.replace("    tracking: {server: Medium}\n", ""))
    training, data = stacks["training"], stacks["data"]
    assert not _of(training, "aws_sagemaker_mlflow_tracking_server")
    train = _training_job(training)["Train"]["Arguments"]
    assert train["EnableNetworkIsolation"] is True and "Environment" not in train
    assert "LogToTrackingServer" not in {s["Sid"] for s in _policy(training, "execution")}
    assert "sagemaker_experiments" not in _of(data, "aws_vpc_endpoint")


def test_the_data_stack_adds_the_mlflow_endpoint_only_where_tracking_is_on() -> None:
    endpoint = _of(_stacks()["data"], "aws_vpc_endpoint")["sagemaker_experiments"].body
    assert endpoint["service_name"] == "aws.sagemaker.eu-west-1.experiments"
    assert endpoint["vpc_endpoint_type"] == "Interface" and endpoint["private_dns_enabled"] is True
    assert _hcl(endpoint["security_group_ids"]) == "[aws_security_group.endpoints.id]"


def test_the_rendering_matches_the_provider_schemas_and_the_sagemaker_request_shapes() -> None:
    stacks = _stacks()
    report = validate([(f"dev/churn/{name}", stack) for name, stack in stacks.items()], schema=True)
    assert report.problems == []
    assert report.pipeline_values > 0 and report.checked > 0


# --- the training client -----------------------------------------------------------------------

@pytest.fixture
def tracking_uri(monkeypatch: pytest.MonkeyPatch):
    def set_uri(uri: str) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield set_uri
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_a_server_arn_needs_the_plugin_and_never_falls_back_to_sqlite(tracking_uri, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    tracking_uri(ARN)
    monkeypatch.setattr(tracking, "entry_points", lambda **kw: [])
    with pytest.raises(ConfigError, match="the sagemaker-mlflow plugin, which resolves a tracking server's ARN, "
                                          "is not installed"):
        tracking.configure()
    assert not (tmp_path / ".mlops").exists()  # no local store was created instead


def test_a_server_arn_with_the_plugin_is_the_tracking_and_the_registry_uri(tracking_uri, monkeypatch) -> None:
    import mlflow

    tracking_uri(ARN)
    seen = {}
    monkeypatch.setattr(tracking, "entry_points", lambda **kw: seen.update(kw) or ["the plugin's arn store"])
    monkeypatch.setattr(mlflow, "set_tracking_uri", lambda uri: seen.setdefault("tracking", uri))
    monkeypatch.setattr(mlflow, "set_registry_uri", lambda uri: seen.setdefault("registry", uri))
    assert tracking.configure() == ARN
    assert seen == {"group": "mlflow.tracking_store", "name": "arn", "tracking": ARN, "registry": ARN}


@pytest.mark.parametrize("uri", [
    "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/churn-dev",
    "arn:aws:sagemaker:eu-west-1:1111:mlflow-tracking-server/churn-dev",
    "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/-bad",
])
def test_an_arn_that_is_not_a_tracking_server_is_a_configuration_error(tracking_uri, uri: str) -> None:
    tracking_uri(uri)
    with pytest.raises(ConfigError, match=r"MLFLOW_TRACKING_URI=.*must be a SageMaker MLflow tracking server's ARN"):
        tracking.configure()


def test_the_plugin_pinned_in_the_training_image_accepts_its_mlflow_and_boto3() -> None:
    """sagemaker-mlflow's declared requirements (its wheel's METADATA, vendored) hold for the pins
    of training/requirements.txt, so the image resolves ARN tracking URIs with the MLflow it runs."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "training/requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    assert pins["sagemaker-mlflow"] == "0.5.0"
    metadata = (ROOT / "tests/reference/sagemaker_mlflow-0.5.0.METADATA").read_text()
    requirements = [Requirement(line.split(":", 1)[1].strip()) for line in metadata.splitlines()
                    if line.startswith("Requires-Dist:")]
    base = [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]
    assert {canonicalize_name(r.name) for r in base} == {"boto3", "mlflow-skinny"}
    for req in base:
        assert req.specifier.contains(pins[canonicalize_name(req.name)]), (req, pins[canonicalize_name(req.name)])
