"""The SageMaker pipeline definition (JSON, schema version 2020-12-01) of the training workflow.

Train (or tune) -> Evaluate -> QualityGate -> Register | GateFailed. Every job runs in the
platform's private subnets with network isolation, inter-container encryption and the platform's
key on volumes and outputs: checkov cannot see inside this JSON, so the secure settings live here.

A Baseline step runs SageMaker's Model Monitor analyzer over the feature-only baseline data set
and writes `baseline/statistics.json` and `baseline/constraints.json` to the models zone, which
the serving stack's data-quality monitor compares captured traffic against.

Contract with the training image: it prints `<metric>=<value>` lines that the metric definitions
pick up, and `python -m training evaluate` writes `evaluation.json` with `{"metrics": {...}}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..templates.training import CategoricalRange, ContinuousRange, IntegerRange, TrainingInfrastructure
from ..terraform import Value, interp

VERSION = "2020-12-01"
LOCAL = "/opt/ml/processing"
EVALUATION_REPORT = "EvaluationReport"


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
    monitor_image: Value


def _metric_definitions(names: list[str]) -> list[dict[str, str]]:
    return [{"Name": n, "Regex": f"{re.escape(n)}=([-+0-9.eE]+)"} for n in dict.fromkeys(names)]


def _job(t: TrainingInfrastructure, p: PipelineInputs, metrics: list[str]) -> dict[str, Any]:
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": t.max_runtime_seconds}
    job: dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": p.training_image,
            "TrainingInputMode": "File",
            "MetricDefinitions": _metric_definitions(metrics),
        },
        "RoleArn": p.role_arn,
        "InputDataConfig": [{
            "ChannelName": "train",
            "ContentType": "text/csv",
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": {"Get": "Parameters.InputDataUri"},
                "S3DataDistributionType": "FullyReplicated",
            }},
        }],
        "OutputDataConfig": {
            "S3OutputPath": interp("s3://", p.models_bucket, "/training-output"),
            "KmsKeyId": p.key_arn,
        },
        "ResourceConfig": {
            "InstanceType": t.instance_type,
            "InstanceCount": t.instance_count,
            "VolumeSizeInGB": t.volume_size_gb,
            "VolumeKmsKeyId": p.key_arn,
        },
        "StoppingCondition": stopping,
        "VpcConfig": {"SecurityGroupIds": p.security_group_ids, "Subnets": p.subnets},
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "EnableManagedSpotTraining": t.spot,
    }
    if t.spot:
        stopping["MaxWaitTimeInSeconds"] = t.effective_max_wait
        job["CheckpointConfig"] = {"S3Uri": interp("s3://", p.models_bucket, "/checkpoints/")}
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


def _processing(t: TrainingInfrastructure, p: PipelineInputs, name: str, app: dict[str, Any],
                inputs: dict[str, Any], output: tuple[str, Any]) -> dict[str, Any]:
    """A processing step with the platform's secure settings: key on volume and output, isolated network.

    Input `x` is mounted at `/opt/ml/processing/x`; the output is uploaded from
    `/opt/ml/processing/output/<name>`.
    """
    out_name, out_uri = output
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {
                "InstanceType": t.evaluation_instance_type, "InstanceCount": 1,
                "VolumeSizeInGB": 30, "VolumeKmsKeyId": p.key_arn}},
            "AppSpecification": app,
            "RoleArn": p.role_arn,
            "ProcessingInputs": [
                {"InputName": key, "S3Input": {
                    "S3Uri": uri, "LocalPath": f"{LOCAL}/{key}", "S3DataType": "S3Prefix",
                    "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}
                for key, uri in inputs.items()
            ],
            "ProcessingOutputConfig": {
                "Outputs": [{"OutputName": out_name, "S3Output": {
                    "S3Uri": out_uri, "LocalPath": f"{LOCAL}/output/{out_name}", "S3UploadMode": "EndOfJob"}}],
                "KmsKeyId": p.key_arn,
            },
            "NetworkConfig": _network(p),
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }


def _network(p: PipelineInputs) -> dict[str, Any]:
    return {
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
        "VpcConfig": {"SecurityGroupIds": p.security_group_ids, "Subnets": p.subnets},
    }


def definition(t: TrainingInfrastructure, p: PipelineInputs) -> dict[str, Any]:
    hyperparameters = {k: str(v) for k, v in sorted(t.hyperparameters.items())}
    gate_metric = f"validation:{t.gate.metric}"
    steps: list[dict[str, Any]] = []
    if t.tuning is None:
        job = _job(t, p, [gate_metric])
        job["HyperParameters"] = hyperparameters
        steps.append({"Name": "Train", "Type": "Training", "Arguments": job})
        model_data: Any = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    else:
        job = _job(t, p, [t.tuning.objective_metric, gate_metric])
        job["StaticHyperParameters"] = hyperparameters
        steps.append({"Name": "Tune", "Type": "Tuning", "Arguments": {
            "HyperParameterTuningJobConfig": {
                "Strategy": t.tuning.strategy,
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": t.tuning.objective_metric},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": t.tuning.max_jobs,
                                   "MaxParallelTrainingJobs": t.tuning.max_parallel_jobs},
                "ParameterRanges": _ranges(t),
            },
            "TrainingJobDefinition": job,
        }})
        # The best job's model, as SageMaker's own SDK addresses it.
        model_data = {"Std:Join": {"On": "/", "Values": [
            interp("s3://", p.models_bucket, "/training-output"),
            {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"},
            "output/model.tar.gz",
        ]}}

    evaluate = _processing(t, p, "Evaluate", {
        "ImageUri": p.training_image,
        "ContainerEntrypoint": ["python", "-m", "training", "evaluate", "--model", f"{LOCAL}/model",
                                "--data", f"{LOCAL}/test", "--output", f"{LOCAL}/output/evaluation"],
    }, inputs={"model": model_data, "test": {"Get": "Parameters.InputDataUri"}},
        output=("evaluation", interp("s3://", p.models_bucket, "/evaluation")))
    evaluate["PropertyFiles"] = [{"PropertyFileName": EVALUATION_REPORT, "OutputName": "evaluation",
                                  "FilePath": "evaluation.json"}]
    baseline = _processing(t, p, "Baseline", {"ImageUri": p.monitor_image},
                           inputs={"baseline": {"Get": "Parameters.BaselineDataUri"}},
                           output=("baseline", interp("s3://", p.models_bucket, "/baseline")))
    # Model Monitor's analyzer is configured through its environment.
    baseline["Arguments"]["Environment"] = {
        "dataset_format": '{"csv": {"header": true, "output_columns_position": "START"}}',
        "dataset_source": f"{LOCAL}/baseline",
        "output_path": f"{LOCAL}/output/baseline",
        "publish_cloudwatch_metrics": "Disabled",
    }
    steps += [evaluate, baseline]
    register = {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": p.model_package_group,
            "ModelApprovalStatus": {"Get": "Parameters.ModelApprovalStatus"},
            "InferenceSpecification": {
                "Containers": [{"Image": p.serving_image, "ModelDataUrl": model_data}],
                "SupportedContentTypes": ["text/csv", "application/json"],
                "SupportedResponseMIMETypes": ["application/json", "text/csv"],
            },
            "ModelMetrics": {"ModelQuality": {"Statistics": {
                "ContentType": "application/json", "S3Uri": interp("s3://", p.models_bucket,
                                                                    "/evaluation/evaluation.json")}}},
        },
    }
    failed = {
        "Name": "GateFailed",
        "Type": "Fail",
        "Arguments": {"ErrorMessage": f"The model's {t.gate.metric} is below the quality gate of "
                                      f"{t.gate.threshold}; it was not registered."},
    }
    steps.append({
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
            "IfSteps": [register],
            "ElseSteps": [failed],
        },
    })
    return {
        "Version": VERSION,
        "Metadata": {},
        "Parameters": [
            {"Name": "InputDataUri", "Type": "String",
             "DefaultValue": interp("s3://", p.data_bucket, "/training/")},
            {"Name": "BaselineDataUri", "Type": "String",
             "DefaultValue": interp("s3://", p.data_bucket, "/baseline/")},
            {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
        ],
        "Steps": steps,
    }
