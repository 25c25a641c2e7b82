"""The SageMaker training pipeline: honest semantics (split per execution, held-out evaluation,
execution-scoped outputs, metrics and baselines on the package), and every step's request checked
against botocore's SageMaker service model."""

from __future__ import annotations

import copy
import json

import pytest

from mlops_dsl import (
    CategoricalRange,
    ContinuousRange,
    DataInfrastructure,
    Dataset,
    IntegerRange,
    Platform,
    QualityGate,
    Search,
    TrainingInfrastructure,
    Tuning,
)
from mlops_dsl.aws import pipeline_requests, training_config
from mlops_dsl.aws.instances import has_local_storage
from mlops_dsl.namespaces import parse
from mlops_dsl.templates.training import FAMILIES
from mlops_dsl.terraform.values import Call

from .conftest import NAMESPACES

botocore = pytest.importorskip("botocore", reason="botocore (the cdktn extra) is not installed")

TAGS = {"training": "aaaaaaaaaaaa", "serving": "bbbbbbbbbbbb"}
DATASET = Dataset(target="churned", id_column="customer_id", numeric=["tenure", "charges"],
                  categorical=["contract"], test_size=0.25, cv_folds=3)
TUNING = Tuning("validation:cv_roc_auc", [IntegerRange("max_depth", 2, 8),
                                          ContinuousRange("learning_rate", 0.01, 0.3, scaling="Logarithmic")])


def _training(**kwargs) -> TrainingInfrastructure:
    data = DataInfrastructure()
    training = TrainingInfrastructure(data, **{"dataset": DATASET, **kwargs})
    return training


def _stack(ns: str = "prod", **kwargs):
    training = _training(**kwargs)
    platform = Platform("churn", cloud="aws").add(training.data, training)
    return {b.template: b for b in platform.synth(parse(NAMESPACES)[ns], image_tags=TAGS)}["training"].stack


def _definition(stack) -> dict:
    pipeline = next(r for r in stack.resources if r.type == "aws_sagemaker_pipeline")
    call = pipeline.body["pipeline_definition"]
    assert isinstance(call, Call)
    return call.args[0]


def _steps(definition: dict) -> dict[str, dict]:
    return {s["Name"]: s for s in pipeline_requests.steps(definition)}


def _uses_execution_id(value) -> bool:
    return "Execution.PipelineExecutionId" in json.dumps(value, default=str)


def test_each_execution_splits_its_input_and_the_gate_reads_only_held_out_entities() -> None:
    definition = _definition(_stack(tuning=TUNING))
    steps = _steps(definition)
    assert [s["Name"] for s in definition["Steps"]] == ["Split", "Tune", "Evaluate", "QualityGate"]
    split = steps["Split"]["Arguments"]
    assert split["AppSpecification"]["ContainerEntrypoint"][:4] == ["python", "-m", "training", "split"]
    assert next(i["S3Input"]["S3Uri"] for i in split["ProcessingInputs"]) == {"Get": "Parameters.InputDataUri"}
    assert [o["OutputName"] for o in split["ProcessingOutputConfig"]["Outputs"]] == ["train", "test", "baseline"]
    # Training reads the split's train part; Evaluate only its test part, never the input prefix.
    job = steps["Tune"]["Arguments"]["TrainingJobDefinition"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert channels["train"] == {"Get": "Steps.Split.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert channels["test"] == {"Get": "Steps.Split.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"}
    evaluate = steps["Evaluate"]["Arguments"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in evaluate["ProcessingInputs"]}
    assert inputs["test"] == channels["test"]
    assert "Parameters.InputDataUri" not in json.dumps(evaluate, default=str)
    assert steps["QualityGate"]["Arguments"]["Conditions"][0]["LeftValue"]["Std:JsonGet"]["PropertyFile"] == \
        {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}


def test_every_output_lives_under_the_execution_and_the_package_points_at_its_own() -> None:
    steps = _steps(_definition(_stack(tuning=TUNING)))
    for name in ("Split", "Evaluate"):
        for output in steps[name]["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
            assert _uses_execution_id(output["S3Output"]["S3Uri"]), (name, output["OutputName"])
    job = steps["Tune"]["Arguments"]["TrainingJobDefinition"]
    assert _uses_execution_id(job["OutputDataConfig"]["S3OutputPath"])
    register = steps["Register"]["Arguments"]
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"]
    assert statistics == [{"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
                          "evaluation.json"]
    baseline = register["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"]
    assert baseline == [{"Get": "Steps.Split.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"},
                        "baseline.json"]
    model = register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]["Std:Join"]["Values"]
    assert model[1] == {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"}
    assert _uses_execution_id(model[0])


def test_tuning_optimises_the_cross_validated_metric_and_hyperparameters_are_json() -> None:
    steps = _steps(_definition(_stack(tuning=TUNING, hyperparameters={"model": "hist_gradient_boosting",
                                                                      "early_stopping": True, "l2": 0.5})))
    config = steps["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:cv_roc_auc"}
    job = steps["Tune"]["Arguments"]["TrainingJobDefinition"]
    assert job["StaticHyperParameters"] == {"early_stopping": "true", "l2": "0.5",
                                            "model": '"hist_gradient_boosting"'}
    assert [m["Name"] for m in job["AlgorithmSpecification"]["MetricDefinitions"]] == \
        ["validation:cv_roc_auc", "validation:roc_auc"]
    # Retries: capacity and quota errors of the jobs, throttling and faults of the service; a tuning
    # job retries its own jobs' internal errors.
    kinds = [e for policy in steps["Tune"]["RetryPolicies"] for e in policy["ExceptionType"]]
    assert {"Step.THROTTLING", "SageMaker.CAPACITY_ERROR"} <= set(kinds)
    assert "SageMaker.JOB_INTERNAL_ERROR" not in kinds
    assert "SageMaker.JOB_INTERNAL_ERROR" in steps["Split"]["RetryPolicies"][1]["ExceptionType"]


def test_the_job_trains_on_the_rendered_configuration_of_this_platform() -> None:
    stack = _stack(search=Search([IntegerRange("max_depth", 2, 6), ContinuousRange("learning_rate", 0.01, 0.3,
                                                                                  scaling="Logarithmic"),
                                  CategoricalRange("max_leaf_nodes", ["15", "31"])], iterations=6),
                   gate=QualityGate("roc_auc", 0.8), spot=True)
    config = next(r for r in stack.resources if r.type == "aws_s3_object" and r.name == "training_config")
    document = config.body["content"].args[0]
    assert document["data"] == {"target": "churned", "id_column": "customer_id", "numeric": ["tenure", "charges"],
                                "categorical": ["contract"]}
    assert document["model"] == {"family": "hist_gradient_boosting", "search": {
        "n_iter": 6, "cv_folds": 3, "space": {"hist_gradient_boosting": {
            "max_depth": {"low": 2, "high": 6}, "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
            "max_leaf_nodes": [15, 31]}}}}
    assert document["gates"] == {"min_roc_auc": 0.8} and document["split"]["test_size"] == 0.25
    assert config.body["key"] == training_config.object_key(document)
    assert config.body["kms_key_id"] is not None and config.body["server_side_encryption"] == "aws:kms"
    steps = _steps(_definition(stack))
    train = steps["Train"]["Arguments"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in train["InputDataConfig"]}
    assert channels["config"] == steps["Split"]["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"]
    assert "aws_s3_object.training_config" in json.dumps(channels["config"], default=str)
    # Spot: the job's search checkpoints its candidates under this execution.
    assert _uses_execution_id(train["CheckpointConfig"]["S3Uri"])
    assert train["StoppingCondition"]["MaxWaitTimeInSeconds"] == 2 * 86400


def test_the_rendered_configuration_is_one_the_training_image_accepts() -> None:
    config = pytest.importorskip("training.config", reason="the ml extra is not installed")
    document = training_config.document(_training(search=Search([IntegerRange("max_depth", 2, 6)])), "churn")
    parsed = config.parse(document, "rendered")
    assert parsed.family == "hist_gradient_boosting" and parsed.id_column == "customer_id"
    assert parsed.numeric == ("tenure", "charges") and parsed.cv_folds == 3
    assert set(FAMILIES) == set(config.FAMILIES)


def test_instance_types_with_local_storage_get_no_volume_key() -> None:
    assert has_local_storage("ml.g5.2xlarge") and has_local_storage("ml.m5d.large") and has_local_storage(
        "ml.p4d.24xlarge") and has_local_storage("ml.g4dn.xlarge")
    assert not has_local_storage("ml.m5.xlarge") and not has_local_storage("ml.c5.2xlarge")
    steps = _steps(_definition(_stack(instance_type="ml.g5.xlarge", evaluation_instance_type="ml.m5d.large")))
    assert "VolumeKmsKeyId" not in steps["Train"]["Arguments"]["ResourceConfig"]
    assert "VolumeKmsKeyId" not in steps["Split"]["Arguments"]["ProcessingResources"]["ClusterConfig"]
    assert steps["Train"]["Arguments"]["OutputDataConfig"]["KmsKeyId"] is not None
    steps = _steps(_definition(_stack()))
    assert steps["Train"]["Arguments"]["ResourceConfig"]["VolumeKmsKeyId"] is not None


def test_a_platform_without_a_dataset_is_a_synth_error() -> None:
    from mlops_dsl.errors import BlueprintError

    data = DataInfrastructure()
    platform = Platform("churn", cloud="aws").add(data, TrainingInfrastructure(data))
    with pytest.raises(BlueprintError, match="set dataset=Dataset"):
        platform.synth(parse(NAMESPACES)["dev"], image_tags=TAGS)


# --- the request check against botocore's SageMaker model ------------------------------------------

def test_every_rendered_pipeline_passes_the_api_request_shapes() -> None:
    for kwargs in ({"tuning": TUNING}, {"search": Search([IntegerRange("max_depth", 2, 6)])}, {"spot": True}):
        problems, checked = pipeline_requests.check_definition(_definition(_stack(**kwargs)), "prod")
        assert problems == [], problems
        assert checked > 150  # every step, member by member: not a vacuous pass


def _problems_after(change) -> list[str]:
    definition = copy.deepcopy(_definition(_stack(tuning=TUNING)))
    change(_steps(definition))
    return pipeline_requests.check_definition(definition, "prod/churn/training")[0]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda s: s["Split"]["Arguments"]["ProcessingResources"]["ClusterConfig"].update(
        VolumeSizeInGb=30),
     "step 'Split' (CreateProcessingJob): ProcessingResources.ClusterConfig.VolumeSizeInGb: no such member of "
     "ProcessingClusterConfig; did you mean 'VolumeSizeInGB'?"),
    (lambda s: s["Tune"]["Arguments"]["HyperParameterTuningJobConfig"].update(Strategy="Baysian"),
     "HyperParameterTuningJobConfig.Strategy: 'Baysian' is not one of"),
    (lambda s: s["Evaluate"]["Arguments"].pop("RoleArn"),
     "step 'Evaluate' (CreateProcessingJob): RoleArn: required by CreateProcessingJobRequest, and not set"),
    (lambda s: s["Register"]["Arguments"].update(ModelPackageDescription="x" * 1025),
     "ModelPackageDescription: EntityDescription allows at most 1024 characters; got 1025"),
    (lambda s: s["Evaluate"]["Arguments"]["ProcessingResources"]["ClusterConfig"].update(InstanceCount="1"),
     "InstanceCount: expects an integer"),
    (lambda s: s["Tune"]["Arguments"]["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"].extend(
        [{"Name": f"m{i}", "Regex": "x"} for i in range(40)]),
     "MetricDefinitions: MetricDefinitionList holds 0 to 40 items; got 42"),
    (lambda s: s["Split"]["Arguments"].update(RoleArn="arn:aws:iam::12:role/x"),
     "RoleArn: 'arn:aws:iam::12:role/x' does not match RoleArn's pattern"),
    (lambda s: s["Tune"]["Arguments"]["TrainingJobDefinition"]["ResourceConfig"].update(VolumeSizeInGB=True),
     "VolumeSizeInGB: expects an integer"),
])
def test_a_wrong_request_member_fails_naming_step_and_path(change, expected: str) -> None:
    problems = _problems_after(change)
    assert any(expected in p for p in problems), problems


def test_validate_schema_reports_a_misspelled_pipeline_member(project, monkeypatch) -> None:
    """Through the CLI: a clean blueprint passes; a misspelled member is exit 2, naming step and path."""
    import mlops_dsl.aws.pipeline as pipeline

    project.write("blueprints/churn.py", BLUEPRINT)
    for context in ("training", "serving"):
        project.write(f"{context}/Dockerfile", "FROM scratch\n")
    result = project.mlops("validate", "--schema", "-n", "dev")
    assert result.exit_code == 0, result.output
    assert "values of SageMaker requests (pipeline steps, state machines) match the API request shapes" in result.output
    network = pipeline._network
    monkeypatch.setattr(pipeline, "_network", lambda p: {**network(p), "EnableNetworkIsolaton": True})
    result = project.mlops("validate", "--schema", "-n", "dev")
    assert result.exit_code == 2, result.output
    assert "step 'Split' (CreateProcessingJob): NetworkConfig.EnableNetworkIsolaton: no such member of " \
           "NetworkConfig; did you mean 'EnableNetworkIsolation'?" in result.output


BLUEPRINT = """\
from mlops_dsl import DataInfrastructure, Dataset, IntegerRange, Platform, TrainingInfrastructure, Tuning

platform = Platform("churn", cloud="aws")
data = DataInfrastructure()
training = TrainingInfrastructure(data, dataset=Dataset("churned", "customer_id", numeric=["tenure"], cv_folds=3),
                                  tuning=Tuning("validation:cv_roc_auc", [IntegerRange("max_depth", 2, 8)]))
platform.add(data, training)
"""
