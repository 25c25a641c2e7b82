"""The SageMaker pipeline definition (JSON, schema version 2020-12-01) of the training workflow.

[TrainingSet ->] Split -> Train (or Tune) -> Evaluate -> QualityGate -> Register | GateFailed.

- **TrainingSet** (with `labels`): joins the labels under InputDataUri with the feature groups'
  offline store, each label with the values as of its event time (training/training_set.py).

- **Split** (training image) reads the input prefix, validates it, and splits it by a hash of the
  entity id into train and test, so every execution holds out data the model never sees; it also
  writes the drift baseline of the train part.
- **Train** or **Tune** fits on the train part; a tuning job optimises the cross-validated metric
  (`validation:cv_roc_auc`), never the held-out one.
- **Evaluate** scores the best model on the test part only; the **QualityGate** reads that report.
- **Register** records the package with its `ModelMetrics` (the evaluation) and
  `DriftCheckBaselines` (the drift baseline), pending manual approval.

Every output lives under `executions/<PipelineExecutionId>/` of the models zone, so no execution
overwrites another's evaluation or baseline, and a package's metrics keep describing that package.
Every job runs in the platform's private subnets with network isolation (but for the training
job of a namespace with a tracking server, which logs to it: `tracking_uri`), inter-container
encryption and the platform's key on outputs (and on volumes, where the instance type allows a
key): checkov cannot see inside this JSON, so the secure settings live here. `mlops validate
--schema` checks each step's arguments against the SageMaker API's request shapes.

Contract with the training image: see `training/` (`python -m training split | train | evaluate`)
and the README's training section.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..templates.training import CV_OBJECTIVE, CategoricalRange, ContinuousRange, IntegerRange, TrainingInfrastructure
from ..terraform import Value, interp
from .instances import has_local_storage

VERSION = "2020-12-01"
LOCAL = "/opt/ml/processing"
EVALUATION_REPORT = "EvaluationReport"
EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}
PARQUET = "application/x-parquet"
# Transient failures: the service (throttling, faults) and the job (no capacity, quota, internal
# error). Tuning jobs retry their own training jobs' internal errors and ignore that type.
SERVICE_RETRY = {"ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING"],
                 "IntervalSeconds": 10, "BackoffRate": 2.0, "MaxAttempts": 5}
JOB_ERRORS = ["SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT", "SageMaker.JOB_INTERNAL_ERROR"]


@dataclass(frozen=True)
class TrainingSetInputs:
    """With `labels`: where the TrainingSet step reads (training/training_set.py)."""

    offline_store_uri: Value
    """s3:// URI of the offline store's prefix (`feature-store/` of the offline zone), mounted whole."""
    groups: tuple[Value, ...]
    """Each group as `<store name>:<record id>:<event time>` (`--group` of `training-set`)."""
    labels_uri: Value
    """The default of InputDataUri: the labels' prefix."""


@dataclass(frozen=True)
class PipelineInputs:
    """Values known only to Terraform, passed in as expressions."""

    role_arn: Value
    training_image: Value
    serving_image: Value
    data_bucket: Value
    models_bucket: Value
    key_arn: Value
    subnets: Value
    security_group_ids: Value
    model_package_group: Value
    config_uri: Value
    """The S3 URI of the rendered training configuration (training_config.py)."""
    training_set: TrainingSetInputs | None = None
    """With `labels`: the TrainingSet step runs first and Split reads its output."""
    tracking_uri: Value | None = None
    """The MLflow tracking server's ARN (aws/tracking.py), where the namespace opts in: the training
    job logs there, so it runs without network isolation (through the MLflow VPC endpoint)."""


def join(*values: Any) -> dict[str, Any]:
    """`Std:Join` with "/": an S3 URI built at execution time."""
    return {"Std:Join": {"On": "/", "Values": list(values)}}


def execution_prefix(p: PipelineInputs, *parts: str) -> dict[str, Any]:
    """`s3://<models>/executions/<PipelineExecutionId>/<parts>`: where this execution writes."""
    return join(interp("s3://", p.models_bucket, "/executions"), EXECUTION_ID, *parts)


def output_uri(step: str, output: str) -> dict[str, Any]:
    """A processing step's output URI, as SageMaker's SDK addresses it (which also orders the steps)."""
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"}


def retries(step_type: str) -> list[dict[str, Any]]:
    job_errors = [e for e in JOB_ERRORS if not (step_type == "Tuning" and e.endswith("JOB_INTERNAL_ERROR"))]
    return [SERVICE_RETRY, {"ExceptionType": job_errors, "IntervalSeconds": 60, "BackoffRate": 2.0,
                            "MaxAttempts": 3}]


def _volume_key(instance_type: str, p: PipelineInputs) -> dict[str, Value]:
    """`VolumeKmsKeyId`, left out where the instance's local NVMe storage may not name a key."""
    return {} if has_local_storage(instance_type) else {"VolumeKmsKeyId": p.key_arn}


def _metric_definitions(names: list[str]) -> list[dict[str, str]]:
    return [{"Name": n, "Regex": f"{re.escape(n)}=([-+0-9.eE]+)"} for n in dict.fromkeys(names)]


def _channel(name: str, uri: Any, content_type: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": content_type,
        "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix",
            "S3Uri": uri,
            "S3DataDistributionType": "FullyReplicated",
        }},
    }


def hyperparameter_values(t: TrainingInfrastructure) -> dict[str, str]:
    """Static hyperparameters JSON-encoded, as SageMaker's SDK sends them (`True` is `"true"`)."""
    return {k: json.dumps(v) for k, v in sorted(t.hyperparameters.items())}


def _job(t: TrainingInfrastructure, p: PipelineInputs, metrics: list[str]) -> dict[str, Any]:
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": t.max_runtime_seconds}
    job: dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": p.training_image,
            "TrainingInputMode": "File",
            "MetricDefinitions": _metric_definitions(metrics),
        },
        "RoleArn": p.role_arn,
        "InputDataConfig": [
            _channel("train", output_uri("Split", "train"), PARQUET),
            _channel("test", output_uri("Split", "test"), PARQUET),
            _channel("config", p.config_uri, "application/json"),
        ],
        "OutputDataConfig": {"S3OutputPath": execution_prefix(p, "training"), "KmsKeyId": p.key_arn},
        "ResourceConfig": {
            "InstanceType": t.instance_type,
            "InstanceCount": t.instance_count,
            "VolumeSizeInGB": t.volume_size_gb,
            **_volume_key(t.instance_type, p),
        },
        "StoppingCondition": stopping,
        "VpcConfig": {"SecurityGroupIds": p.security_group_ids, "Subnets": p.subnets},
        # An isolated container has no network: one that logs to the tracking server cannot be.
        "EnableNetworkIsolation": p.tracking_uri is None,
        "EnableInterContainerTrafficEncryption": True,
        "EnableManagedSpotTraining": t.spot,
    }
    if p.tracking_uri is not None:
        job["Environment"] = {"MLFLOW_TRACKING_URI": p.tracking_uri}
    if t.spot:
        stopping["MaxWaitTimeInSeconds"] = t.effective_max_wait
    return job


def _ranges(t: TrainingInfrastructure) -> dict[str, list[dict[str, Any]]]:
    assert t.tuning is not None
    out: dict[str, list[dict[str, Any]]] = {
        "IntegerParameterRanges": [], "ContinuousParameterRanges": [], "CategoricalParameterRanges": []}
    for r in t.tuning.ranges:
        if isinstance(r, IntegerRange):
            out["IntegerParameterRanges"].append(
                {"Name": r.name, "MinValue": str(r.low), "MaxValue": str(r.high), "ScalingType": r.scaling})
        elif isinstance(r, ContinuousRange):
            out["ContinuousParameterRanges"].append(
                {"Name": r.name, "MinValue": str(r.low), "MaxValue": str(r.high), "ScalingType": r.scaling})
        elif isinstance(r, CategoricalRange):
            out["CategoricalParameterRanges"].append({"Name": r.name, "Values": list(r.values)})
    return {k: v for k, v in out.items() if v}


def _network(p: PipelineInputs) -> dict[str, Any]:
    return {
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "VpcConfig": {"SecurityGroupIds": p.security_group_ids, "Subnets": p.subnets},
    }


def _processing(t: TrainingInfrastructure, p: PipelineInputs, name: str, command: list[str],
                inputs: dict[str, Any], outputs: list[str]) -> dict[str, Any]:
    """A processing step on the training image with the platform's secure settings.

    Input `x` is mounted at `/opt/ml/processing/x`; output `y` is uploaded from
    `/opt/ml/processing/output/y` to `executions/<id>/<step>/y`.
    """
    return {
        "Name": name,
        "Type": "Processing",
        "RetryPolicies": retries("Processing"),
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {
                "InstanceType": t.evaluation_instance_type, "InstanceCount": 1, "VolumeSizeInGB": 30,
                **_volume_key(t.evaluation_instance_type, p)}},
            "AppSpecification": {"ImageUri": p.training_image, "ContainerEntrypoint": command},
            "RoleArn": p.role_arn,
            "ProcessingInputs": [
                {"InputName": key, "S3Input": {
                    "S3Uri": uri, "LocalPath": f"{LOCAL}/{key}", "S3DataType": "S3Prefix",
                    "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}
                for key, uri in inputs.items()
            ],
            "ProcessingOutputConfig": {
                "Outputs": [{"OutputName": out, "S3Output": {
                    "S3Uri": execution_prefix(p, name.lower(), out), "LocalPath": f"{LOCAL}/output/{out}",
                    "S3UploadMode": "EndOfJob"}} for out in outputs],
                "KmsKeyId": p.key_arn,
            },
            "NetworkConfig": _network(p),
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }


def _fit_step(t: TrainingInfrastructure, p: PipelineInputs) -> tuple[dict[str, Any], Any]:
    """The Train or Tune step, and the expression of the model artifact it produces."""
    gate_metric = f"validation:{t.gate.metric}"
    if t.tuning is None:
        job = _job(t, p, [CV_OBJECTIVE, gate_metric])
        job["HyperParameters"] = hyperparameter_values(t)
        if t.spot:
            # The job's search checkpoints each finished candidate here; a spot interruption
            # restarts the same job, which resumes from them.
            job["CheckpointConfig"] = {"S3Uri": execution_prefix(p, "checkpoints")}
        step = {"Name": "Train", "Type": "Training", "RetryPolicies": retries("Training"), "Arguments": job}
        return step, {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    job = _job(t, p, [t.tuning.objective_metric, gate_metric])
    job["StaticHyperParameters"] = hyperparameter_values(t)
    step = {"Name": "Tune", "Type": "Tuning", "RetryPolicies": retries("Tuning"), "Arguments": {
        "HyperParameterTuningJobConfig": {
            "Strategy": t.tuning.strategy,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": t.tuning.objective_metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": t.tuning.max_jobs,
                               "MaxParallelTrainingJobs": t.tuning.max_parallel_jobs},
            "ParameterRanges": _ranges(t),
        },
        "TrainingJobDefinition": job,
    }}
    # The best job's model, as SageMaker's own SDK addresses it: index 0 is the best training job.
    model = join(execution_prefix(p, "training"), {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"},
                 "output/model.tar.gz")
    return step, model


def _register(t: TrainingInfrastructure, p: PipelineInputs, model_data: Any) -> dict[str, Any]:
    evaluation = join(output_uri("Evaluate", "evaluation"), "evaluation.json")
    baseline = join(output_uri("Split", "baseline"), "baseline.json")
    return {
        "Name": "Register",
        "Type": "RegisterModel",
        "RetryPolicies": [SERVICE_RETRY],
        "Arguments": {
            "ModelPackageGroupName": p.model_package_group,
            "ModelPackageDescription": f"Gate: {t.gate.metric} >= {t.gate.threshold} on held-out entities",
            "ModelApprovalStatus": {"Get": "Parameters.ModelApprovalStatus"},
            "InferenceSpecification": {
                "Containers": [{"Image": p.serving_image, "ModelDataUrl": model_data}],
                "SupportedContentTypes": ["text/csv", "application/json"],
                "SupportedResponseMIMETypes": ["application/json", "text/csv"],
            },
            "ModelMetrics": {"ModelQuality": {"Statistics": {
                "ContentType": "application/json", "S3Uri": evaluation}}},
            "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": {
                "ContentType": "application/json", "S3Uri": baseline}}},
        },
    }


def _training_set(t: TrainingInfrastructure, p: PipelineInputs, config_dir: str) -> dict[str, Any]:
    """Labels (InputDataUri) joined point in time with the offline store: `python -m training training-set`.
    The offline store is read as files, not through Athena: the step stays network-isolated and
    the role needs no Glue or Athena permissions (it reads the zones already)."""
    assert t.labels is not None and p.training_set is not None
    groups: list[Value] = []
    for group in p.training_set.groups:
        groups += ["--group", group]
    return _processing(t, p, "TrainingSet", [
        "python", "-m", "training", "training-set", "--labels", f"{LOCAL}/labels", "--offline-store",
        f"{LOCAL}/offline", *groups, "--label-id", t.labels.record_id, "--label-time", t.labels.event_time,
        "--label", t.labels.label, "--config", config_dir, "--output", f"{LOCAL}/output/dataset"],
        inputs={"labels": {"Get": "Parameters.InputDataUri"}, "offline": p.training_set.offline_store_uri,
                "config": p.config_uri},
        outputs=["dataset"])


def definition(t: TrainingInfrastructure, p: PipelineInputs) -> dict[str, Any]:
    config_dir = f"{LOCAL}/config"
    first: list[dict[str, Any]] = []
    data: Any = {"Get": "Parameters.InputDataUri"}
    if t.labels is not None and p.training_set is not None:
        first, data = [_training_set(t, p, config_dir)], output_uri("TrainingSet", "dataset")
    split = _processing(t, p, "Split", [
        "python", "-m", "training", "split", "--data", f"{LOCAL}/data", "--config", config_dir,
        "--output", f"{LOCAL}/output"],
        inputs={"data": data, "config": p.config_uri},
        outputs=["train", "test", "baseline"])
    fit, model_data = _fit_step(t, p)
    evaluate = _processing(t, p, "Evaluate", [
        "python", "-m", "training", "evaluate", "--model", f"{LOCAL}/model", "--data", f"{LOCAL}/test",
        "--config", config_dir, "--output", f"{LOCAL}/output/evaluation"],
        inputs={"model": model_data, "test": output_uri("Split", "test"), "config": p.config_uri},
        outputs=["evaluation"])
    evaluate["PropertyFiles"] = [{"PropertyFileName": EVALUATION_REPORT, "OutputName": "evaluation",
                                  "FilePath": "evaluation.json"}]
    failed = {
        "Name": "GateFailed",
        "Type": "Fail",
        "Arguments": {"ErrorMessage": f"The model's {t.gate.metric} on held-out entities is below the quality "
                                      f"gate of {t.gate.threshold}; it was not registered."},
    }
    gate = {
        "Name": "QualityGate",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [{
                "Type": "GreaterThanOrEqualTo",
                "LeftValue": {"Std:JsonGet": {
                    "PropertyFile": {"Get": f"Steps.Evaluate.PropertyFiles.{EVALUATION_REPORT}"},
                    "Path": f"metrics.{t.gate.metric}",
                }},
                "RightValue": t.gate.threshold,
            }],
            "IfSteps": [_register(t, p, model_data)],
            "ElseSteps": [failed],
        },
    }
    return {
        "Version": VERSION,
        "Metadata": {},
        "Parameters": [
            {"Name": "InputDataUri", "Type": "String",
             "DefaultValue": p.training_set.labels_uri if first and p.training_set else
             interp("s3://", p.data_bucket, "/training/")},
            {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
        ],
        "Steps": [*first, split, fit, evaluate, gate],
    }
