"""TrainingInfrastructure on AWS: image repositories and the SageMaker execution role in every
namespace; in the namespace that owns the model registry, also the model package group (with
read access for the namespaces that serve from it), the training configuration, the training
pipeline and the schedule that starts it.

Only the registry's namespace trains: the other namespaces serve the versions it registered, so
one artifact moves from dev to staging to prod and is never retrained per namespace.
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.training import TrainingInfrastructure
from ..terraform import Expr, Interp, Lifecycle, Output, Resource, Value, interp, jsonencode
from . import iam, notebooks, tracking, training_config
from .alerts import alert_topic
from .feature_training_set import training_set_inputs
from .pipeline import PipelineInputs, definition
from .repositories import repositories
from .schedules import Schedule, render_schedule
from .training_role import execution_statements, hosting_statements, pipeline_statements, registry_group_name


def registry(account_id: str, region: str) -> str:
    suffix = ".com.cn" if region.startswith("cn-") else ".com"
    return f"{account_id}.dkr.ecr.{region}.amazonaws{suffix}"


def image_uri(repository_url: Value, tag: Expr | str) -> Interp:
    return interp("", repository_url, ":", tag)  # type: ignore[arg-type]


def render(t: TrainingInfrastructure, ctx: StackContext) -> None:
    data = t.data
    if t.dataset is None:
        raise ctx.error("dataset", "the training pipeline renders its jobs' configuration from the dataset "
                                   "(target, id_column, numeric and categorical columns): set "
                                   "dataset=Dataset(...)")
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    bucket_arns = ctx.upstream_output(data, "bucket_arns")
    security_group = ctx.upstream_output(data, "sagemaker_security_group_id")

    repos = repositories(t, ctx, key_arn)
    group_name = registry_group_name(ctx)
    if len(group_name) > 63:
        raise ctx.error("name", f"the model package group name {group_name!r} is over SageMaker's 63 characters")
    role = iam.role(ctx, "execution", "sagemaker-execution", "sagemaker.amazonaws.com")
    policy = iam.inline_policy("execution", role, execution_statements(t, ctx, repos, bucket_arns, key_arn,
                                                                       security_group))
    ctx.stack.add(role, policy)
    # The served models get their own role: a model cannot start jobs or pass roles.
    hosting = iam.role(ctx, "hosting", "sagemaker-hosting", "sagemaker.amazonaws.com")
    ctx.stack.add(hosting, iam.inline_policy("hosting", hosting, hosting_statements(
        t, ctx, repos, bucket_arns, key_arn, security_group)))
    training_image = image_uri(repos["training"].attr("repository_url"), ctx.image_tag(t.image))
    serving_image = image_uri(repos["serving"].attr("repository_url"), ctx.image_tag(t.serving_image))
    ctx.stack.add(
        Output("repository_urls", {n: r.attr("repository_url") for n, r in repos.items()},
               description="ECR repository URL of each image"),
        Output("training_image_uri", training_image, description="The training image, tagged by content hash"),
        Output("serving_image_uri", serving_image, description="The serving image, tagged by content hash"),
        Output("execution_role_arn", role.attr("arn"), description="Role of the pipeline's and monitoring's jobs"),
        Output("hosting_role_arn", hosting.attr("arn"), description="Role of the served SageMaker models"),
    )
    if ctx.namespace.owns_registry:
        _render_registry(t, ctx, repos, role, training_image, serving_image, group_name)
    notebooks.render_notebooks(t, ctx)  # where namespaces.yaml lists notebook users


def _render_registry(t: TrainingInfrastructure, ctx: StackContext, repos: dict[str, Resource], role: Resource,
                     training_image: Interp, serving_image: Interp, group_name: str) -> None:
    """The model package group, the training configuration, the pipeline with its own role, and its schedule."""
    data = t.data
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    bucket_names = ctx.upstream_output(data, "bucket_names")
    data_zone = "processed" if "processed" in data.zones else data.zones[0]
    models_zone = "models" if "models" in data.zones else data_zone
    # The pipeline orchestrates as its own role; its steps' jobs run as `role`, which it may pass.
    pipeline_role = iam.role(ctx, "pipeline", "sagemaker-pipeline", "sagemaker.amazonaws.com")
    policy = iam.inline_policy("pipeline", pipeline_role, pipeline_statements(
        ctx, repos, role, ctx.upstream_output(data, "bucket_arns")[models_zone], key_arn))
    ctx.stack.add(pipeline_role, policy)
    # Other namespaces serve this group's versions: destroying it would leave them nothing to
    # promote and their pins pointing at deleted packages, so it is protected like a feature group.
    group = Resource("aws_sagemaker_model_package_group", "models", {
        "model_package_group_name": group_name,
        "model_package_group_description": f"Models of {ctx.platform} trained in {ctx.namespace.name}",
    }, lifecycle=Lifecycle(prevent_destroy=bool(ctx.namespace.consumer_accounts)))
    ctx.stack.add(group)
    if ctx.namespace.consumer_accounts:
        ctx.stack.add(_group_policy(ctx, group))

    models_bucket = bucket_names[models_zone]
    server = tracking.render_tracking_server(ctx, models_bucket, ctx.upstream_output(data, "bucket_arns")[models_zone],
                                             key_arn)
    config = training_config.document(t, ctx.platform)
    config_object = Resource("aws_s3_object", "training_config", {
        "bucket": models_bucket,
        "key": training_config.object_key(config),
        "content": jsonencode(config),
        "content_type": "application/json",
        "server_side_encryption": "aws:kms",
        "kms_key_id": key_arn,
    })
    pipeline_name = f"{ctx.name}-training"
    pipeline = Resource("aws_sagemaker_pipeline", "training", {
        "pipeline_name": pipeline_name,
        "pipeline_display_name": pipeline_name,
        "pipeline_description": f"Split, train, evaluate on held-out entities, gate on {t.gate.metric} >= "
                                f"{t.gate.threshold}, register",
        "role_arn": pipeline_role.attr("arn"),
        "pipeline_definition": jsonencode(definition(t, PipelineInputs(
            role_arn=role.attr("arn"),
            training_image=training_image,
            serving_image=serving_image,
            data_bucket=bucket_names[data_zone],
            models_bucket=models_bucket,
            key_arn=key_arn,
            subnets=ctx.upstream_output(data, "private_subnet_ids"),
            security_group_ids=[ctx.upstream_output(data, "sagemaker_security_group_id")],
            model_package_group=group.attr("model_package_group_name"),
            config_uri=interp("s3://", config_object.attr("bucket"), "/", config_object.attr("key")),
            training_set=training_set_inputs(t, ctx),  # with labels: the point-in-time join first
            tracking_uri=server.attr("arn") if server else None,
        ))),
    }, depends_on=(policy,))
    ctx.stack.add(config_object, pipeline)
    topic = _render_alerts(ctx, pipeline)
    if t.schedule is not None:
        _render_schedule(t, ctx, pipeline, key_arn, topic)
    ctx.stack.add(
        Output("pipeline_arn", pipeline.attr("arn"), description="The training pipeline"),
        Output("pipeline_name", pipeline.attr("pipeline_name"), description="The training pipeline's name"),
        Output("model_package_group_name", group.attr("model_package_group_name"),
               description="Model registry group the pipeline registers into"),
    )


def _group_policy(ctx: StackContext, group: Resource) -> Resource:
    """The namespaces that serve from this registry, in other accounts, may read its packages."""
    consumers = [iam.account_root(ctx, account) for account in ctx.namespace.consumer_accounts]
    return Resource("aws_sagemaker_model_package_group_policy", "models", {
        "model_package_group_name": group.attr("model_package_group_name"),
        "resource_policy": jsonencode({"Version": "2012-10-17", "Statement": [{
            "Sid": "ServingNamespacesReadPackages",
            "Effect": "Allow",
            "Principal": {"AWS": consumers},
            "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages",
                       "sagemaker:DescribeModelPackageGroup"],
            "Resource": [group.attr("arn"),
                         iam.arn(ctx, "sagemaker", f"model-package/{group.body['model_package_group_name']}/*")],
        }]}),
    })


def _render_alerts(ctx: StackContext, pipeline: Resource) -> Resource:
    """The training alert topic, and a failed pipeline execution published to it (EventBridge)."""
    topic = alert_topic(ctx, f"{ctx.name}-training-alerts", "training alert", {
        "CloudWatchAlarmsOfThisAccount": "cloudwatch.amazonaws.com",
        "EventBridgeRulesOfThisAccount": "events.amazonaws.com",
    })
    rule = Resource("aws_cloudwatch_event_rule", "pipeline_failed", {
        "name": f"{ctx.name}-training-failed",
        "description": "A training pipeline execution failed (a step, or the quality gate)",
        # SageMaker's "Pipeline Execution Status Change" event (SageMaker's EventBridge events).
        "event_pattern": jsonencode({
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
            "detail": {"currentPipelineExecutionStatus": ["Failed"], "pipelineArn": [pipeline.attr("arn")]},
        }),
    })
    ctx.stack.add(rule, Resource("aws_cloudwatch_event_target", "pipeline_failed", {
        "rule": rule.attr("name"),
        "arn": topic.attr("arn"),
    }))
    return topic


def _render_schedule(t: TrainingInfrastructure, ctx: StackContext, pipeline: Resource, key_arn: Any,
                     topic: Resource) -> None:
    """The weekly schedule of the pipeline (schedules.py: its own group, role, retries, dead letters, alarms)."""
    assert t.schedule is not None
    render_schedule(ctx, Schedule(
        prefix="", title="training", role="scheduler", role_name="training-scheduler",
        description=f"Starts the {ctx.platform} training pipeline in {ctx.namespace.name}",
        expression=t.schedule, target_arn=pipeline.attr("arn"),
        start=iam.statement("StartTrainingPipeline", ["sagemaker:StartPipelineExecution"], [pipeline.attr("arn")]),
        what="the pipeline"), key_arn, topic)
