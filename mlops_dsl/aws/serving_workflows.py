"""The Step Functions definitions of drift monitoring and bounded retraining, as plain data.

Three state machines (Amazon States Language, JSONPath), built here without Terraform so tests can
run them on moto's Step Functions interpreter; the values may be Terraform references, which
`jsonencode()` renders in place.

- **drift**: started by the schedule; one SageMaker Processing job per pinned variant
  (`createProcessingJob.sync`: the state waits for the job), all in parallel. A failed job does not
  cancel the others: each branch catches its error, and the execution fails at the end if any did,
  so the failed-executions alarm fires once per run.
- **retraining**: started by EventBridge when the retraining alarm goes to ALARM (N consecutive
  drifted runs). It ends without starting anything while a pipeline execution is Executing or
  Stopping, or while a cooldown execution runs; otherwise it starts the pipeline and a cooldown.
- **cooldown**: one Wait state of the cooldown's length. A running cooldown execution *is* the
  cooldown: the retraining machine asks Step Functions whether one runs (ListExecutions), because
  ASL's JSONPath has no date arithmetic to compare a start time with "now minus N hours" (JSONata
  has, but moto's interpreter cannot run it, so it could not be tested here).

Deduplication. CloudWatch sends an alarm's state change to EventBridge once per transition, and
the alarm stays in ALARM while drift continues, so a drift episode is one event, not one per run.
EventBridge delivers at least once, so that event may arrive twice (and two executions may run at
the same moment). Both executions derive the same ClientRequestToken from the alarm and the time
of its transition (`detail.state.timestamp`), and StartPipelineExecution with a token it has seen
starts nothing new ("An idempotent operation completes no more than once", SageMaker API
reference); the cooldown is started under a name made of the same token, and StartExecution of a
standard workflow with the name and input of a running execution returns that execution (Step
Functions API reference, StartExecution). So a repeated event yields one pipeline execution and one
cooldown, whichever order the duplicates run in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..terraform import Interp, Value, interp

PROCESSING_SYNC = "arn:aws:states:::sagemaker:createProcessingJob.sync"
LIST_PIPELINE_EXECUTIONS = "arn:aws:states:::aws-sdk:sagemaker:listPipelineExecutions"
START_PIPELINE_EXECUTION = "arn:aws:states:::aws-sdk:sagemaker:startPipelineExecution"
LIST_EXECUTIONS = "arn:aws:states:::aws-sdk:sfn:listExecutions"
START_EXECUTION = "arn:aws:states:::states:startExecution"

# ProcessingJobName: 1 to 63 characters, ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} (botocore's SageMaker
# model). A job is named <prefix><variant index>-<MD5 of the execution ARN, 32 hex digits>: unique
# per execution and variant, the same on a retry of the state, and under the role's name prefix.
JOB_SUFFIX = 1 + 1 + 32
JOB_PREFIX_LIMIT = 63 - JOB_SUFFIX
OUTPUT_PATH = "/opt/ml/processing/output"
# Pipeline statuses during which a new execution would train on top of a running one.
BUSY = ("Executing", "Stopping")
# The error the optimized Step Functions integration raises for a name in use (moto says the same).
ALREADY_EXISTS = "StepFunctions.ExecutionAlreadyExistsException"
# Read-only calls, and a start made idempotent by its token: safe to retry.
RETRY = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5, "MaxAttempts": 3, "BackoffRate": 2.0}]


@dataclass(frozen=True)
class DriftJob:
    """One variant's drift job: what the Processing job request needs."""

    variant: str
    job_prefix: str
    """Names start with this, then the variant's index; at most JOB_PREFIX_LIMIT characters."""
    index: int
    image: Value
    role_arn: Value
    package: str
    """s3:// URI of the pinned package's model.tar.gz (its baseline.json is the baseline)."""
    capture: Value
    """s3:// prefix of the variant's capture: <destination>/<endpoint>/<variant>/."""
    reports: Value
    """s3:// prefix the reports go to, one folder per execution (its name) below it."""
    endpoint: Value
    metrics_namespace: str
    window_hours: int
    instance_type: str
    volume_key: Value | None
    """None for an instance type with local NVMe storage, where SageMaker refuses a volume key."""
    output_key: Value
    subnets: Value
    security_groups: Value
    region: str = "eu-west-1"
    """For boto3 in the container (S3 and CloudWatch clients): named, not guessed."""
    max_runtime_seconds: int = 3600


def job_name_expression(job: DriftJob) -> str:
    """The ProcessingJobName, computed by Step Functions from the execution."""
    return f"States.Format('{job.job_prefix}{job.index}-{{}}', States.Hash($$.Execution.Id, 'MD5'))"


def arguments(job: DriftJob) -> list[Value]:
    """`python -m serving.drift` as the scheduled job runs it (serving/drift/cli.py)."""
    return [
        "--baseline", job.package,
        "--data", job.capture,
        "--since-hours", str(job.window_hours),
        "--metrics", "cloudwatch", "--namespace", job.metrics_namespace,
        "--dimension", _join("Endpoint=", job.endpoint), "--dimension", f"Variant={job.variant}",
        "--out", OUTPUT_PATH,
        # The verdict is in the metrics and the alarms; a drifted run is a successful job.
        "--exit-zero-on-drift",
    ]


def _join(prefix: str, value: Value, suffix: str = "") -> Value:
    """prefix + value + suffix, for a literal or a Terraform reference."""
    if isinstance(value, str):
        return prefix + value + suffix
    if isinstance(value, Interp):
        return interp(prefix, *value.parts, suffix)
    return interp(prefix, value, suffix)  # type: ignore[arg-type]


def _format(prefix: Value, rest: str) -> Value:
    """`States.Format('<prefix><rest>`: the prefix is an S3 URI of a bucket and names, which hold none
    of the characters an intrinsic function's string must escape (' { } \\)."""
    return _join("States.Format('", prefix, rest)


def processing_request(job: DriftJob) -> dict[str, Any]:
    """The CreateProcessingJob request of one variant (botocore's CreateProcessingJobRequest)."""
    cluster: dict[str, Any] = {"InstanceCount": 1, "InstanceType": job.instance_type, "VolumeSizeInGB": 30}
    if job.volume_key is not None:
        cluster["VolumeKmsKeyId"] = job.volume_key
    return {
        "ProcessingJobName.$": job_name_expression(job),
        "RoleArn": job.role_arn,
        "AppSpecification": {
            "ImageUri": job.image,
            # The image's ENTRYPOINT is the server (`python -m serving`); this job is the drift module.
            "ContainerEntrypoint": ["python", "-m", "serving.drift"],
            "ContainerArguments": arguments(job),
        },
        "ProcessingResources": {"ClusterConfig": cluster},
        "ProcessingOutputConfig": {
            "KmsKeyId": job.output_key,
            "Outputs": [{
                "OutputName": "report",
                "S3Output": {
                    "S3Uri.$": _format(job.reports, "/{}', $$.Execution.Name)"),
                    "LocalPath": OUTPUT_PATH,
                    "S3UploadMode": "EndOfJob",
                },
            }],
        },
        # Not network-isolated: the job reads S3 and writes CloudWatch metrics, through the VPC's
        # endpoints only (no internet path from the private subnets).
        "NetworkConfig": {
            "EnableNetworkIsolation": False,
            "EnableInterContainerTrafficEncryption": True,
            "VpcConfig": {"Subnets": job.subnets, "SecurityGroupIds": job.security_groups},
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": job.max_runtime_seconds},
        "Environment": {"AWS_DEFAULT_REGION": job.region},
    }


def drift_definition(jobs: list[DriftJob], comment: str) -> dict[str, Any]:
    """All variants' jobs in parallel; fails after all ran if any failed."""
    branches = []
    for job in jobs:
        state = f"Drift {job.variant}"
        branches.append({"StartAt": state, "States": {
            state: {
                "Type": "Task",
                "Resource": PROCESSING_SYNC,
                "Parameters": processing_request(job),
                "ResultSelector": {"Variant": job.variant, "Status.$": "$.ProcessingJobStatus",
                                   "Job.$": "$.ProcessingJobName"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": f"{state} failed"}],
                "End": True,
            },
            f"{state} failed": {"Type": "Pass", "Parameters": {"Variant": job.variant, "Error.$": "$.Error"},
                                "End": True},
        }})
    return {
        "Comment": comment,
        "StartAt": "Variants",
        "States": {
            "Variants": {"Type": "Parallel", "Branches": branches, "ResultPath": "$.results", "Next": "Any failed?"},
            "Any failed?": {"Type": "Choice", "Choices": [{
                "Or": [{"Variable": f"$.results[{i}].Error", "IsPresent": True} for i in range(len(jobs))],
                "Next": "A drift job failed",
            }] if len(jobs) > 1 else [{"Variable": "$.results[0].Error", "IsPresent": True,
                                       "Next": "A drift job failed"}],
                "Default": "Done"},
            "A drift job failed": {"Type": "Fail", "Error": "DriftJobFailed",
                                   "Cause": "a variant's drift job failed: see the execution's Variants state"},
            "Done": {"Type": "Succeed"},
        },
    }


def token_expression() -> str:
    """SHA-256 of the alarm's ARN and the time it went to ALARM: one per transition (64 hex digits,
    within ClientRequestToken's 32 to 128 characters and an execution name's 80)."""
    return "States.Hash(States.Format('{}|{}', $.resources[0], $.detail.state.timestamp), 'SHA-256')"


def retraining_definition(pipeline_name: Value, cooldown_arn: Value, comment: str) -> dict[str, Any]:
    """Start the pipeline once per drift alarm, unless it runs or a cooldown does."""
    return {
        "Comment": comment,
        "StartAt": "Request token",
        "States": {
            "Request token": {"Type": "Pass", "Parameters": {"Token.$": token_expression()}, "ResultPath": "$.request",
                              "Next": "List pipeline executions"},
            "List pipeline executions": {
                "Type": "Task",
                "Resource": LIST_PIPELINE_EXECUTIONS,
                "Parameters": {"PipelineName": pipeline_name, "SortBy": "CreationTime", "SortOrder": "Descending",
                               "MaxResults": 100},
                "ResultSelector": {"Summaries.$": "$.PipelineExecutionSummaries"},
                "ResultPath": "$.pipeline",
                "Retry": RETRY,
                "Next": "Statuses",
            },
            # The statuses as a list (empty when the pipeline never ran): a JSONPath filter that
            # matches nothing is an error on moto's interpreter, a Map over no items is [].
            "Statuses": {
                "Type": "Map",
                "ItemsPath": "$.pipeline.Summaries",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Status", "States": {
                    "Status": {"Type": "Pass", "Parameters": {"Status.$": "$.PipelineExecutionStatus"},
                               "OutputPath": "$.Status", "End": True}}},
                "ResultPath": "$.pipeline.Statuses",
                "Next": "Busy",
            },
            "Busy": {"Type": "Pass", "Parameters": {
                f"{status}.$": f"States.ArrayContains($.pipeline.Statuses, '{status}')" for status in BUSY},
                "ResultPath": "$.busy", "Next": "Pipeline running?"},
            "Pipeline running?": {"Type": "Choice", "Choices": [{
                "Or": [{"Variable": f"$.busy.{status}", "BooleanEquals": True} for status in BUSY],
                "Next": "Running execution"}],
                "Default": "List cooldowns"},
            "Running execution": {"Type": "Pass", "Result": {"Outcome": "running execution"}, "End": True},
            "List cooldowns": {
                "Type": "Task",
                "Resource": LIST_EXECUTIONS,
                "Parameters": {"StateMachineArn": cooldown_arn, "StatusFilter": "RUNNING", "MaxResults": 1},
                "ResultSelector": {"Running.$": "$.Executions"},
                "ResultPath": "$.cooldown",
                "Retry": RETRY,
                "Next": "In cooldown?",
            },
            "In cooldown?": {"Type": "Choice", "Choices": [{
                "Variable": "$.cooldown.Running[0]", "IsPresent": True, "Next": "Cooldown"}],
                "Default": "Start pipeline"},
            "Cooldown": {"Type": "Pass", "Result": {"Outcome": "cooldown"}, "End": True},
            "Start pipeline": {
                "Type": "Task",
                "Resource": START_PIPELINE_EXECUTION,
                "Parameters": {
                    "PipelineName": pipeline_name,
                    "ClientRequestToken.$": "$.request.Token",
                    "PipelineExecutionDisplayName": "retrain-on-drift",
                    "PipelineExecutionDescription.$":
                        "States.Format('Drift alarm {} in ALARM since {}', $.detail.alarmName, "
                        "$.detail.state.timestamp)",
                    # Never deployed by itself: a person approves and promotes (README: the model lifecycle).
                    "PipelineParameters": [{"Name": "ModelApprovalStatus", "Value": "PendingManualApproval"}],
                },
                "ResultPath": "$.started",
                "Retry": RETRY,
                "Next": "Start cooldown",
            },
            "Start cooldown": {
                "Type": "Task",
                "Resource": START_EXECUTION,
                "Parameters": {
                    "StateMachineArn": cooldown_arn,
                    "Name.$": "$.request.Token",
                    "Input": {"PipelineExecutionArn.$": "$.started.PipelineExecutionArn",
                              "Alarm.$": "$.detail.alarmName"},
                },
                "ResultPath": "$.cooldown_execution",
                # The name of a cooldown that already ended: a repeated event after the cooldown.
                "Retry": [{"ErrorEquals": [ALREADY_EXISTS], "MaxAttempts": 0}, *RETRY],
                "Catch": [{"ErrorEquals": [ALREADY_EXISTS], "ResultPath": "$.duplicate", "Next": "Started"}],
                "Next": "Started",
            },
            "Started": {"Type": "Pass", "Parameters": {
                "Outcome": "started", "PipelineExecutionArn.$": "$.started.PipelineExecutionArn"}, "End": True},
        },
    }


def cooldown_definition(hours: int) -> dict[str, Any]:
    """Runs for the cooldown; while it runs, the retraining machine starts nothing."""
    return {
        "Comment": f"Retraining cooldown: {hours} hour(s) after a retraining started",
        "StartAt": "Cooldown",
        "States": {"Cooldown": {"Type": "Wait", "Seconds": hours * 3600, "End": True}},
    }


__all__ = ["DriftJob", "cooldown_definition", "drift_definition", "processing_request", "retraining_definition"]
