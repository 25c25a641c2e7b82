"""BatchInference on AWS: a SageMaker Batch Transform of the pinned version, on a schedule.

EventBridge Scheduler (schedules.py: its own role, retries, dead letters, alarms) starts a Step
Functions state machine (batch_workflow.py; state_machines.py: logs, tracing, failure alarm) whose one
task runs a Transform job of the variant's pinned version over `s3://<input zone>/<input prefix>`,
writing `s3://<output zone>/<output prefix><execution>/` under the zones' key.

The job's model is its own SageMaker model (the serving image at the pinned tag over the pinned
artifact, like a served variant's: serving_models.py), in the private subnets and network-isolated:
Batch Transform moves the data to and from S3 itself. It runs with its own role, which may read the
input prefix and the artifact, write the output prefix, pull the serving image and log: not the
endpoints' hosting role, which reads no data zone. The state machine's role may start, watch and stop
this stack's Transform jobs and nothing else; the scheduler's may start the state machine.

With no version pinned for the variant there is no model, job or schedule: only the alarm topic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..context import StackContext
from ..pins import TAG_PACKAGE, TAG_SHA256, TAG_VARIANT, Pin, path_for
from ..templates.batch import BatchInference
from ..terraform import Block, Expr, Output, Resource, Value, interp
from . import iam
from .alerts import alert_topic
from .batch_workflow import JOB_PREFIX_LIMIT, TransformJob, batch_definition
from .instances import has_local_storage
from .naming import sagemaker_name
from .network import sagemaker_vpc_config
from .provider import partition
from .repositories import repository_name
from .schedules import Schedule, render_schedule
from .serving_models import package_arn
from .state_machines import failed_executions_alarm, observability_statements, state_machine
from .training import image_uri
from .training_role import network_statements

# Step Functions' `.sync` for Transform jobs watches them through this managed rule ("IAM policies for
# Amazon SageMaker AI", Step Functions Developer Guide).
SYNC_RULE = "StepFunctionsGetEventsForSageMakerTransformJobsRule"


def render(t: BatchInference, ctx: StackContext) -> None:
    data, training = t.serving.training.data, t.serving.training
    topic = alert_topic(ctx, f"{ctx.name}-{t.name}-alarms", "alarm",
                        {"CloudWatchAlarmsOfThisAccount": "cloudwatch.amazonaws.com"})
    ctx.stack.add(Output("alarm_topic_arn", topic.attr("arn"), description="SNS topic the alarms notify"))
    pin = ctx.namespace.pins.get(ctx.platform, {}).get(t.variant)
    if pin is None:
        source = path_for(Path(ctx.namespace.source), ctx.namespace.name)
        ctx.stack.notes.append(f"{t.variant}: no model version pinned ({source}), so no batch job runs")
        return

    key_arn = ctx.upstream_output(data, "kms_key_arn")
    buckets = ctx.upstream_output(data, "bucket_names")
    bucket_arns = ctx.upstream_output(data, "bucket_arns")
    security_group = ctx.upstream_output(data, "sagemaker_security_group_id")
    prefix = sagemaker_name(ctx, "name", f"{ctx.name}-{t.name}", JOB_PREFIX_LIMIT)

    role = iam.role(ctx, "batch_job", f"{t.name}-job", "sagemaker.amazonaws.com")
    policy = iam.inline_policy("batch_job", role, _job_statements(t, ctx, pin, bucket_arns, key_arn, security_group))
    ctx.stack.add(role, policy)
    repository = ctx.upstream_output(training, "repository_urls")["serving"]
    model = Resource("aws_sagemaker_model", "batch", {
        "name": sagemaker_name(ctx, "variant", f"{ctx.name}-{t.name}-{t.variant}-v{pin.version}-{pin.image[:8]}"),
        "execution_role_arn": role.attr("arn"),
        "enable_network_isolation": True,
        "primary_container": _container(image_uri(repository, pin.image), pin),
        "vpc_config": sagemaker_vpc_config(ctx, data),
        "tags": _tags(ctx, t, pin),
    }, depends_on=(policy,))  # SageMaker checks the role can pull the image when the model is created
    ctx.stack.add(model)

    job = TransformJob(
        job_prefix=prefix, model_name=model.attr("name"),
        input_bucket=buckets[t.input_zone], input_prefix=t.input_prefix,
        output_bucket=buckets[t.output_zone], output_prefix=t.output_prefix,
        content_type=t.content_type, accept=t.accept, instance_type=t.instance_type,
        instance_count=t.instance_count, max_payload_mb=t.max_payload_mb, output_key=key_arn,
        volume_key=None if has_local_storage(t.instance_type) else key_arn, tags=_tags(ctx, t, pin))
    workflow_role = iam.role(ctx, "batch_workflow", f"{t.name}-workflow", "states.amazonaws.com")
    workflow_policy = iam.inline_policy("batch_workflow", workflow_role, [
        iam.statement("RunTransformJobs", ["sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                                           "sagemaker:StopTransformJob", "sagemaker:AddTags", "sagemaker:ListTags"],
                      [iam.arn(ctx, "sagemaker", f"transform-job/{prefix}-*")]),
        iam.statement("WatchJobsForSync", ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                      [iam.arn(ctx, "events", f"rule/{SYNC_RULE}")]),
        *observability_statements(),
    ])
    logs = Resource("aws_cloudwatch_log_group", "state_machines", {
        # /aws/vendedlogs/ keeps the resource policy that log delivery writes small (state_machines.py).
        "name": f"/aws/vendedlogs/states/{ctx.name}-{t.name}",
        "retention_in_days": t.log_retention_days,
        "kms_key_id": key_arn,
    })
    ctx.stack.add(workflow_role, workflow_policy, logs)
    machine = state_machine(ctx, "batch", f"{ctx.name}-{t.name}", batch_definition(
        job, t.max_runtime_minutes * 60,
        f"Batch inference of {t.variant} version {pin.version} over {t.input_zone}/{t.input_prefix}"),
        workflow_role, workflow_policy, logs)
    failed_executions_alarm(ctx, machine, f"the batch inference {t.name}", topic)
    render_schedule(ctx, Schedule(
        prefix="", title=t.name, role="batch_scheduler", role_name=f"{t.name}-scheduler",
        description=f"Starts the batch inference {t.name} of {ctx.platform} in {ctx.namespace.name}",
        expression=t.schedule, target_arn=machine.attr("arn"),
        start=iam.statement("StartBatchInference", ["states:StartExecution"], [machine.attr("arn")]),
        what=f"the batch inference {t.name}", target_input="{}"), key_arn, topic)
    ctx.stack.add(
        Output("state_machine_arn", machine.attr("arn"), description="Starts one batch inference run"),
        Output("model_name", model.attr("name"), description="The SageMaker model the Transform jobs run"),
        Output("output_uri", interp("s3://", buckets[t.output_zone], f"/{t.output_prefix}"),
               description="Each run writes <output_uri><execution name>/"),
    )


def _container(image: Value, pin: Pin) -> Block:
    return Block({"image": image, "model_data_url": pin.artifact,
                  "environment": {"SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}})


def _tags(ctx: StackContext, t: BatchInference, pin: Pin) -> dict[str, str]:
    return {TAG_VARIANT: t.variant, TAG_PACKAGE: package_arn(ctx, pin), TAG_SHA256: pin.sha256}


def _job_statements(t: BatchInference, ctx: StackContext, pin: Pin, bucket_arns: Expr, key_arn: Expr,
                    security_group: Expr) -> list[dict[str, Any]]:
    """Read the input prefix and the pinned artifact, write the output prefix, pull the image, log."""
    statements = [
        iam.statement("ListInput", ["s3:ListBucket"], [bucket_arns[t.input_zone]],
                      {"StringLike": {"s3:prefix": [f"{t.input_prefix}*"]}}),
        iam.statement("ReadInput", ["s3:GetObject"], [interp("", bucket_arns[t.input_zone], f"/{t.input_prefix}*")]),
        iam.statement("ReadPinnedArtifact", ["s3:GetObject"], ["arn:aws:s3:::" + pin.artifact.removeprefix("s3://")]),
        iam.statement("WriteOutput", ["s3:PutObject", "s3:AbortMultipartUpload"],
                      [interp("", bucket_arns[t.output_zone], f"/{t.output_prefix}*")]),
        # Decrypt the input and the artifact, encrypt the output; the grant is how SageMaker uses the
        # key on the job's volume.
        iam.statement("PlatformKey", ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
                      [key_arn]),
        iam.statement("JobMetrics", ["cloudwatch:PutMetricData"], "*",
                      {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}}),
        iam.statement("JobLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                  "logs:DescribeLogStreams"],
                      [iam.arn(ctx, "logs", "log-group:/aws/sagemaker/TransformJobs"),
                       iam.arn(ctx, "logs", "log-group:/aws/sagemaker/TransformJobs:*")]),
        iam.statement("PullServingImage", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                           "ecr:BatchCheckLayerAvailability"],
                      [iam.arn(ctx, "ecr", "repository/" + repository_name(
                          ctx.platform, ctx.namespace.name, t.serving.image.repository))]),
        # GetAuthorizationToken acts on the registry, which has no ARN to scope it to.
        iam.statement("RegistryLogin", ["ecr:GetAuthorizationToken"], "*"),
        *network_statements(ctx, security_group),
    ]
    registry = ctx.namespace.registry_aws
    if not ctx.namespace.owns_registry and registry is not None:
        # The pinned artifact lives in the registry's models bucket, under the registry's key.
        statements.append(iam.statement(
            "DecryptRegistryArtifact", ["kms:Decrypt", "kms:DescribeKey"],
            [f"arn:{partition(registry.region)}:kms:{registry.region}:{registry.account_id}:key/*"],
            {"StringEquals": {"kms:ViaService": f"s3.{registry.region}.amazonaws.com"}}))
    return statements


__all__ = ["SYNC_RULE", "render"]
