"""The Step Functions definition of a scheduled batch inference, as plain data (tests run it on moto).

One Task state: `sagemaker:createTransformJob.sync` sends CreateTransformJob and waits for the job to
end; a failed or stopped job fails the state and the execution, which the failed-executions alarm
reports. The state's TimeoutSeconds bounds a run (a Transform job has no StoppingCondition): when it
passes, Step Functions stops the job it started (Step Functions Developer Guide, "Run a Job (.sync)":
a task that times out or is aborted has its job stopped) and the execution fails, timed out.

Job names are computed from the execution: `<prefix>-<MD5 of the execution ARN>`, so each scheduled run
has its own job (TransformJobName: 1 to 63 characters, ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}) and each run
writes under its own folder, `<output prefix><execution name>/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..terraform import Value, interp

TRANSFORM_SYNC = "arn:aws:states:::sagemaker:createTransformJob.sync"
JOB_SUFFIX = 1 + 32
JOB_PREFIX_LIMIT = 63 - JOB_SUFFIX
# How records of a content type are split into requests and the answers joined (TransformInput.SplitType,
# TransformOutput.AssembleWith): by line for CSV and JSON Lines; a JSON document is sent whole.
LINES = {"text/csv": "Line", "application/jsonlines": "Line", "application/json": "None"}


@dataclass(frozen=True)
class TransformJob:
    """What the CreateTransformJob request needs."""

    job_prefix: str
    model_name: Value
    input_bucket: Value
    input_prefix: str
    output_bucket: Value
    output_prefix: str
    content_type: str
    accept: str
    instance_type: str
    instance_count: int
    max_payload_mb: int
    output_key: Value
    volume_key: Value | None
    """None for an instance type with local NVMe storage, where SageMaker refuses a volume key."""
    tags: dict[str, str]


def job_name_expression(job: TransformJob) -> str:
    return f"States.Format('{job.job_prefix}-{{}}', States.Hash($$.Execution.Id, 'MD5'))"


def transform_request(job: TransformJob) -> dict[str, Any]:
    """The CreateTransformJob request (botocore's CreateTransformJobRequest)."""
    resources: dict[str, Any] = {"InstanceType": job.instance_type, "InstanceCount": job.instance_count}
    if job.volume_key is not None:
        resources["VolumeKmsKeyId"] = job.volume_key
    return {
        "TransformJobName.$": job_name_expression(job),
        "ModelName": job.model_name,
        # Records batched into requests of up to MaxPayloadInMB (the container's /execution-parameters
        # says the same; explicit here so the reviewed request is the one sent).
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": job.max_payload_mb,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                            "S3Uri": interp("s3://", job.input_bucket, f"/{job.input_prefix}")}},
            "ContentType": job.content_type,
            "SplitType": LINES[job.content_type],
            "CompressionType": "None",
        },
        "TransformOutput": {
            # The bucket's name holds none of the characters a States.Format string must escape (' { } \).
            "S3OutputPath.$": interp("States.Format('s3://", job.output_bucket,
                                     f"/{job.output_prefix}{{}}/', $$.Execution.Name)"),
            "Accept": job.accept,
            "AssembleWith": LINES[job.accept],
            "KmsKeyId": job.output_key,
        },
        "TransformResources": resources,
        "Tags": [{"Key": k, "Value": v} for k, v in job.tags.items()],
    }


def batch_definition(job: TransformJob, timeout_seconds: int, comment: str) -> dict[str, Any]:
    return {
        "Comment": comment,
        "StartAt": "Transform",
        "States": {
            "Transform": {
                "Type": "Task",
                "Resource": TRANSFORM_SYNC,
                "Parameters": transform_request(job),
                "TimeoutSeconds": timeout_seconds,
                "ResultSelector": {"Job.$": "$.TransformJobName", "Status.$": "$.TransformJobStatus",
                                   "Output.$": "$.TransformOutput.S3OutputPath"},
                "End": True,
            },
        },
    }


__all__ = ["JOB_PREFIX_LIMIT", "TRANSFORM_SYNC", "TransformJob", "batch_definition", "transform_request"]
