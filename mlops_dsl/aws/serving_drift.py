"""The drift job on a schedule: EventBridge Scheduler starts a Step Functions state machine that
runs `python -m serving.drift` as a SageMaker Processing job per pinned production variant, over the
variant's capture of the hours since the last run, against the baseline.json inside the package
that variant serves. The job publishes DriftDetected and per-feature metrics to CloudWatch
(dimensions Endpoint, Variant); an alarm per variant notifies the endpoint's alarm topic.

Why not Model Monitor: it is closed to new customers since 2026-07-30 (Model Monitor availability
change, SageMaker Developer Guide); it stays an opt-in (serving_model_monitor.py) for accounts that
already use it.

Roles, each for one thing: the job's (read its capture and its package, write its reports and
metrics, pull the serving image; not network-isolated, since it calls S3 and CloudWatch, through
the VPC's endpoints), the state machine's (create, describe and stop the drift jobs, pass the job's
role to SageMaker and nothing else, the managed EventBridge rule behind `.sync`), the scheduler's
(start that state machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..context import StackContext
from ..serving_pins import Pinned
from ..templates.serving import ModelServing, schedule_interval_hours
from ..terraform import Expr, Resource, Value, interp
from . import iam
from .instances import has_local_storage
from .naming import sagemaker_name
from .provider import partition
from .repositories import repository_name
from .schedules import Schedule, render_schedule
from .serving_workflows import JOB_PREFIX_LIMIT, DriftJob, drift_definition
from .state_machines import failed_executions_alarm, observability_statements, state_machine
from .training import image_uri
from .training_role import network_statements

METRICS_NAMESPACE = "MLOps/Drift"
DRIFT_DETECTED = "DriftDetected"  # what the alarms read; the dashboard shows it and the run's other metrics
# Step Functions' `.sync` for Processing jobs watches them through this managed rule ("IAM policies
# for Amazon SageMaker AI", Step Functions Developer Guide).
SYNC_RULE = "StepFunctionsGetEventsForSageMakerProcessingJobsRule"


@dataclass(frozen=True)
class Drift:
    """What the retraining needs from the drift job: the schedule's interval and the alarms' metric."""

    interval_hours: int
    endpoint_name: str
    variants: list[str]
    state_machine: Resource


def capture_prefix(endpoint_name: str) -> str:
    """Key prefix of an endpoint's capture (the endpoint configuration's destination)."""
    return f"data-capture/{endpoint_name}"


def _s3_object_arn(uri: str) -> str:
    """arn:aws:s3:::bucket/key of an s3:// URI (the partition of S3 ARNs is not regional)."""
    return "arn:aws:s3:::" + uri.removeprefix("s3://")


def render_drift(t: ModelServing, ctx: StackContext, endpoint_name: str, production: list[Pinned],
                 topic: Resource, logs: Resource) -> Drift:
    assert t.monitoring_schedule is not None
    hours = schedule_interval_hours(t.monitoring_schedule)
    assert hours is not None  # ModelServing refuses a schedule without one
    data, training = t.training.data, t.training
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    buckets = ctx.upstream_output(data, "bucket_names")
    bucket_arns = ctx.upstream_output(data, "bucket_arns")
    security_group = ctx.upstream_output(data, "sagemaker_security_group_id")
    prefix = sagemaker_name(ctx, "monitoring_schedule", f"{ctx.name}-drift", JOB_PREFIX_LIMIT)
    capture = capture_prefix(endpoint_name)
    reports = f"drift-reports/{endpoint_name}"

    role = iam.role(ctx, "drift", "drift-job", "sagemaker.amazonaws.com")
    ctx.stack.add(role, iam.inline_policy("drift", role, _job_statements(
        t, ctx, production, bucket_arns[t.capture_zone], capture, reports, key_arn, security_group)))

    repository = ctx.upstream_output(training, "repository_urls")["serving"]
    jobs = [DriftJob(
        variant=p.variant.name, job_prefix=prefix, index=i, image=image_uri(repository, p.pin.image),
        role_arn=role.attr("arn"), package=p.pin.artifact,
        # Trailing slash: variant "a" must not read the capture of variant "ab".
        capture=interp("s3://", buckets[t.capture_zone], f"/{capture}/{endpoint_name}/{p.variant.name}/"),
        reports=interp("s3://", buckets[t.capture_zone], f"/{reports}/{p.variant.name}"),
        endpoint=endpoint_name, metrics_namespace=METRICS_NAMESPACE, window_hours=hours,
        instance_type=t.drift_instance_type,
        volume_key=None if has_local_storage(t.drift_instance_type) else key_arn, output_key=key_arn,
        subnets=ctx.upstream_output(data, "private_subnet_ids"), security_groups=[security_group],
        region=ctx.namespace.aws.region,  # type: ignore[union-attr]
    ) for i, p in enumerate(production)]

    workflow_role = iam.role(ctx, "drift_workflow", "drift-workflow", "states.amazonaws.com")
    workflow_policy = iam.inline_policy("drift_workflow", workflow_role, [
        iam.statement("RunDriftJobs", ["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                                       "sagemaker:StopProcessingJob", "sagemaker:AddTags", "sagemaker:ListTags"],
                      [iam.arn(ctx, "sagemaker", f"processing-job/{prefix}*")]),
        iam.statement("PassDriftJobRole", ["iam:PassRole"], [role.attr("arn")],
                      {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        iam.statement("WatchJobsForSync", ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                      [iam.arn(ctx, "events", f"rule/{SYNC_RULE}")]),
        *observability_statements(),
    ])
    ctx.stack.add(workflow_role, workflow_policy)
    machine = state_machine(ctx, "drift", f"{ctx.name}-drift", drift_definition(
        jobs, f"Drift jobs of {endpoint_name}: one Processing job per pinned variant"), workflow_role,
        workflow_policy, logs)
    failed_executions_alarm(ctx, machine, f"the drift jobs of {endpoint_name}", topic)
    _render_schedule(t, ctx, machine, key_arn, topic)
    _render_alarms(ctx, endpoint_name, hours, [p.variant.name for p in production], topic)
    return Drift(hours, endpoint_name, [p.variant.name for p in production], machine)


def _job_statements(t: ModelServing, ctx: StackContext, production: list[Pinned], capture_bucket: Expr,
                    capture: str, reports: str, key_arn: Expr, security_group: Expr) -> list[dict[str, Any]]:
    """Read its capture and its packages, write its reports and metrics, pull the serving image."""
    statements = [
        iam.statement("ListCapture", ["s3:ListBucket"], [capture_bucket],
                      {"StringLike": {"s3:prefix": [f"{capture}/*"]}}),
        iam.statement("ReadCapture", ["s3:GetObject"], [interp("", capture_bucket, f"/{capture}/*")]),
        iam.statement("ReadServedPackages", ["s3:GetObject"], sorted({_s3_object_arn(p.pin.artifact)
                                                                      for p in production})),
        iam.statement("WriteReports", ["s3:PutObject", "s3:AbortMultipartUpload"],
                      [interp("", capture_bucket, f"/{reports}/*")]),
        # Decrypt the capture, encrypt the reports; the grant is how SageMaker uses the key on the
        # job's volume (the pipeline's execution role holds the same).
        iam.statement("PlatformKey", ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
                      [key_arn]),
        iam.statement("DriftMetrics", ["cloudwatch:PutMetricData"], "*",
                      {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}),
        iam.statement("JobLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                  "logs:DescribeLogStreams"],
                      [iam.arn(ctx, "logs", "log-group:/aws/sagemaker/ProcessingJobs"),
                       iam.arn(ctx, "logs", "log-group:/aws/sagemaker/ProcessingJobs:*")]),
        iam.statement("PullServingImage", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                           "ecr:BatchCheckLayerAvailability"],
                      [iam.arn(ctx, "ecr", "repository/" + repository_name(ctx.platform, ctx.namespace.name,
                                                                           t.image.repository))]),
        # GetAuthorizationToken acts on the registry, which has no ARN to scope it to.
        iam.statement("RegistryLogin", ["ecr:GetAuthorizationToken"], "*"),
        *network_statements(ctx, security_group),
    ]
    registry = ctx.namespace.registry_aws
    if not ctx.namespace.owns_registry and registry is not None:
        # The packages live in the registry's models bucket, under the registry's key.
        statements.append(iam.statement(
            "DecryptRegistryPackages", ["kms:Decrypt", "kms:DescribeKey"],
            [f"arn:{partition(registry.region)}:kms:{registry.region}:{registry.account_id}:key/*"],
            {"StringEquals": {"kms:ViaService": f"s3.{registry.region}.amazonaws.com"}}))
    return statements


def _render_schedule(t: ModelServing, ctx: StackContext, machine: Resource, key_arn: Value,
                     topic: Resource) -> None:
    """Like the training schedule (schedules.py). A late run still reads the same whole hours (the
    window ends at the hour it starts in), so one retried within the hour loses nothing."""
    assert t.monitoring_schedule is not None
    render_schedule(ctx, Schedule(
        prefix="drift_", title="drift", role="drift_scheduler", role_name="drift-scheduler",
        description=f"Starts the drift jobs of {ctx.platform} in {ctx.namespace.name}",
        expression=t.monitoring_schedule, target_arn=machine.attr("arn"),
        start=iam.statement("StartDriftJobs", ["states:StartExecution"], [machine.attr("arn")]),
        what="the drift jobs", target_input="{}"), key_arn, topic)


def drift_dimensions(endpoint_name: str, variant: str) -> dict[str, str]:
    return {"Endpoint": endpoint_name, "Variant": variant}


def _render_alarms(ctx: StackContext, endpoint_name: str, hours: int, variants: list[str],
                   topic: Resource) -> None:
    """A drifted run of a variant notifies once: DriftDetected is 1 for a drifted run, 0 otherwise,
    one datapoint per run and period; a run over an empty window sends 0, a failed run none (notBreaching)."""
    for variant in variants:
        ctx.stack.add(Resource("aws_cloudwatch_metric_alarm", f"drift_{variant.replace('-', '_')}", {
            "alarm_name": f"{endpoint_name}-{variant}-drift",
            "alarm_description": f"The drift job found drift in the capture of {variant} (report: the drift "
                                 f"state machine's execution, s3 drift-reports/{endpoint_name}/{variant}/)",
            "namespace": METRICS_NAMESPACE,
            "metric_name": DRIFT_DETECTED,
            "dimensions": drift_dimensions(endpoint_name, variant),
            "statistic": "Maximum",
            "period": hours * 3600,
            "evaluation_periods": 1,
            "comparison_operator": "GreaterThanThreshold",
            "threshold": 0,
            "treat_missing_data": "notBreaching",
            "alarm_actions": [topic.attr("arn")],
            "ok_actions": [topic.attr("arn")],
            "actions_enabled": True,
        }))


__all__ = ["DRIFT_DETECTED", "METRICS_NAMESPACE", "Drift", "capture_prefix", "drift_dimensions", "render_drift"]
