"""ModelServing on AWS: a SageMaker real-time endpoint that deploys safely and watches itself.

Models run the serving image (by content-hash tag) with network isolation inside the private
subnets. The endpoint configuration is replaced before it is destroyed (`name_prefix` +
`create_before_destroy`), so a change rolls out as a blue/green or rolling update that the
latency and error alarms roll back. Model Monitor compares captured traffic with the training
baseline; when it reports violations, EventBridge starts the training pipeline.
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.serving import BlueGreen, ModelServing, Variant
from ..terraform import Block, CheckovSkip, DataSource, Expr, Lifecycle, Output, Resource, interp, jsonencode
from . import iam
from .instances import has_local_storage
from .network import sagemaker_vpc_config
from .training import image_uri

SAGEMAKER_NAME_LIMIT = 63
ENDPOINT_CONFIG_PREFIX_LIMIT = 37


def _check_name(ctx: StackContext, field: str, name: str, limit: int = SAGEMAKER_NAME_LIMIT) -> str:
    if len(name) > limit:
        raise ctx.error(field, f"the SageMaker name {name!r} is {len(name)} characters; the limit is {limit} "
                               f"(shorten the platform, namespace or variant name)")
    return name


def _variant_block(v: Variant, model: Resource) -> dict[str, Any]:
    return {
        "variant_name": v.name,
        "model_name": model.attr("name"),
        "instance_type": v.instance_type,
        "initial_instance_count": v.initial_instance_count,
        "initial_variant_weight": v.weight,
    }


def _deployment(t: ModelServing, alarms: list[Resource]) -> Block:
    d = t.deployment
    rollback = Block({"alarms": [Block({"alarm_name": a.attr("alarm_name")}) for a in alarms]})
    if isinstance(d, BlueGreen):
        routing: dict[str, Any] = {"type": d.traffic, "wait_interval_in_seconds": d.wait_seconds}
        if d.traffic == "CANARY":
            routing["canary_size"] = Block({"type": "CAPACITY_PERCENT", "value": d.canary_percent})
        elif d.traffic == "LINEAR":
            routing["linear_step_size"] = Block({"type": "CAPACITY_PERCENT", "value": d.linear_step_percent})
        return Block({
            "blue_green_update_policy": Block({
                "traffic_routing_configuration": Block(routing),
                "termination_wait_in_seconds": d.termination_wait_seconds,
                "maximum_execution_timeout_in_seconds": d.max_execution_timeout_seconds,
            }),
            "auto_rollback_configuration": rollback,
        })
    return Block({
        "rolling_update_policy": Block({
            "maximum_batch_size": Block({"type": "CAPACITY_PERCENT", "value": d.batch_percent}),
            "wait_interval_in_seconds": d.wait_seconds,
            "maximum_execution_timeout_in_seconds": d.max_execution_timeout_seconds,
            "rollback_maximum_batch_size": Block({"type": "CAPACITY_PERCENT", "value": d.rollback_batch_percent}),
        }),
        "auto_rollback_configuration": rollback,
    })


def _alarm_key(ctx: StackContext) -> Resource:
    """A key CloudWatch may use: alarms cannot publish to a topic on the AWS-managed SNS key."""
    aws = ctx.namespace.aws
    assert aws is not None
    return Resource("aws_kms_key", "alarms", {
        "description": f"Encrypts the {ctx.platform} alarm topic in {ctx.namespace.name}",
        "enable_key_rotation": True,
        "deletion_window_in_days": 30,
        "is_enabled": True,
        "policy": jsonencode({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AccountAdministration", "Effect": "Allow",
                 "Principal": {"AWS": iam.arn(ctx, "iam", "root", region=False)},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "CloudWatchAlarmsOfThisAccount", "Effect": "Allow",
                 "Principal": {"Service": "cloudwatch.amazonaws.com"},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": aws.account_id}}},
            ],
        }),
    })


def render(t: ModelServing, ctx: StackContext) -> None:
    training, data = t.training, t.training.data
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    buckets = ctx.upstream_output(data, "bucket_names")
    role_arn = ctx.upstream_output(training, "execution_role_arn")
    tag = ctx.image_tag(t.image)
    image = image_uri(ctx.upstream_output(training, "repository_urls")["serving"], tag)
    endpoint_name = _check_name(ctx, "name", f"{ctx.name}-{t.name}")
    _check_name(ctx, "name", f"{ctx.name}-{t.name}-", ENDPOINT_CONFIG_PREFIX_LIMIT)

    # --- models and the endpoint configuration ----------------------------------------------------
    models: dict[str, Resource] = {}
    for field, v in [*((f"variants[{i}]", v) for i, v in enumerate(t.variants)),
                     *([("shadow", t.shadow)] if t.shadow else [])]:
        # The image tag is part of the name: a new image is a new model, rolled out by the endpoint.
        _check_name(ctx, f"{field}.name", f"{ctx.name}-{v.name}-{'x' * 8}")
        models[v.name] = Resource("aws_sagemaker_model", f"variant_{v.name.replace('-', '_')}", {
            "name": interp(f"{ctx.name}-{v.name}-", Expr(f"substr({tag.text}, 0, 8)", tag.refs)),
            "execution_role_arn": role_arn,
            "enable_network_isolation": True,
            "primary_container": Block({
                "image": image,
                "model_data_url": interp("s3://", buckets["models"], f"/{v.model_key}"),
                "environment": {"SAGEMAKER_CONTAINER_LOG_LEVEL": "20"},
            }),
            "vpc_config": sagemaker_vpc_config(ctx, data),
        })
    ctx.stack.add(*models.values())

    instance_types = [v.instance_type for v in t.variants] + ([t.shadow.instance_type] if t.shadow else [])
    nvme = any(has_local_storage(it) for it in instance_types)
    config_body: dict[str, Any] = {
        "name_prefix": f"{endpoint_name}-",
        "kms_key_arn": None if nvme else key_arn,
        "production_variants": [Block(_variant_block(v, models[v.name])) for v in t.variants],
        "shadow_production_variants": Block(_variant_block(t.shadow, models[t.shadow.name])) if t.shadow else None,
        "data_capture_config": Block({
            "enable_capture": True,
            "initial_sampling_percentage": t.data_capture_percent,
            "destination_s3_uri": interp("s3://", buckets[t.capture_zone], f"/data-capture/{endpoint_name}"),
            "kms_key_id": key_arn,
            "capture_options": [Block({"capture_mode": "Input"}), Block({"capture_mode": "Output"})],
            "capture_content_type_header": Block({
                "csv_content_types": ["text/csv"],
                "json_content_types": ["application/json"],
            }),
        }),
    }
    skips = (CheckovSkip("CKV_AWS_98", "NVMe instance storage cannot be encrypted with KMS; SageMaker rejects "
                                      "kms_key_arn for these instance types"),) if nvme else ()
    config = Resource("aws_sagemaker_endpoint_configuration", "main", config_body,
                      lifecycle=Lifecycle(create_before_destroy=True), skips=skips)
    ctx.stack.add(config)

    # --- alarms and where they go ---------------------------------------------------------------
    alarm_key = _alarm_key(ctx)
    topic = Resource("aws_sns_topic", "alarms", {
        "name": f"{endpoint_name}-alarms",
        "kms_master_key_id": alarm_key.attr("arn"),
    })
    topic_policy = Resource("aws_sns_topic_policy", "alarms", {
        "arn": topic.attr("arn"),
        "policy": jsonencode({"Version": "2012-10-17", "Statement": [{
            "Sid": "CloudWatchAlarmsOfThisAccount", "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish", "Resource": topic.attr("arn"),
            "Condition": {"StringEquals": {"aws:SourceAccount": ctx.namespace.aws.account_id}},  # type: ignore[union-attr]
        }]}),
    })
    ctx.stack.add(alarm_key, Resource("aws_kms_alias", "alarms", {
        "name": f"alias/{endpoint_name}-alarms", "target_key_id": alarm_key.attr("key_id")}), topic, topic_policy)
    for i, email in enumerate(ctx.namespace.alert_emails):
        ctx.stack.add(Resource("aws_sns_topic_subscription", f"email_{i}", {
            "topic_arn": topic.attr("arn"), "protocol": "email", "endpoint": email}))

    notify = {"alarm_actions": [topic.attr("arn")], "ok_actions": [topic.attr("arn")], "actions_enabled": True}
    rollback_alarms = []
    for v in t.variants:
        dims = {"EndpointName": endpoint_name, "VariantName": v.name}
        slug = v.name.replace("-", "_")
        latency = Resource("aws_cloudwatch_metric_alarm", f"latency_{slug}", {
            "alarm_name": f"{endpoint_name}-{v.name}-p99-latency",
            "alarm_description": f"p99 model latency of {v.name} above {t.alarms.p99_latency_ms} ms",
            "namespace": "AWS/SageMaker",
            "metric_name": "ModelLatency",
            "extended_statistic": "p99",
            "dimensions": dims,
            "period": 60,
            "evaluation_periods": 3,
            "datapoints_to_alarm": 2,
            "comparison_operator": "GreaterThanThreshold",
            "threshold": t.alarms.p99_latency_ms * 1000,  # ModelLatency is in microseconds
            # An idle endpoint is not an unhealthy one: no data must not roll a deployment back.
            "treat_missing_data": "notBreaching",
            **notify,
        })
        errors = Resource("aws_cloudwatch_metric_alarm", f"errors_{slug}", {
            "alarm_name": f"{endpoint_name}-{v.name}-5xx-rate",
            "alarm_description": f"5xx answers of {v.name} above {t.alarms.error_rate_percent}% of invocations",
            "evaluation_periods": 3,
            "datapoints_to_alarm": 2,
            "comparison_operator": "GreaterThanThreshold",
            "threshold": t.alarms.error_rate_percent,
            "treat_missing_data": "notBreaching",
            "metric_query": [
                Block({"id": "rate", "expression": "100 * errors / MAX([invocations, 1])",
                       "label": "5xx rate (%)", "return_data": True}),
                *[Block({"id": qid, "metric": Block({
                    "namespace": "AWS/SageMaker", "metric_name": metric, "dimensions": dims,
                    "period": 60, "stat": "Sum"})})
                  for qid, metric in (("errors", "Invocation5XXErrors"), ("invocations", "Invocations"))],
            ],
            **notify,
        })
        rollback_alarms += [latency, errors]
    idle = Resource("aws_cloudwatch_metric_alarm", "idle", {
        "alarm_name": f"{endpoint_name}-no-invocations",
        "alarm_description": f"No invocation for {t.alarms.idle_hours} hours",
        "namespace": "AWS/SageMaker",
        "metric_name": "Invocations",
        "statistic": "Sum",
        "dimensions": {"EndpointName": endpoint_name, "VariantName": t.variants[0].name},
        "period": 3600,
        "evaluation_periods": t.alarms.idle_hours,
        "comparison_operator": "LessThanThreshold",
        "threshold": 1,
        # No data at all is exactly what this alarm is about.
        "treat_missing_data": "breaching",
        **notify,
    })
    ctx.stack.add(*rollback_alarms, idle)

    # --- the endpoint and its scaling -------------------------------------------------------------
    log_group = Resource("aws_cloudwatch_log_group", "endpoint", {
        "name": f"/aws/sagemaker/Endpoints/{endpoint_name}",
        "retention_in_days": t.log_retention_days,
        "kms_key_id": key_arn,
    })
    endpoint = Resource("aws_sagemaker_endpoint", "main", {
        "name": endpoint_name,
        "endpoint_config_name": config.attr("name"),
        "deployment_config": _deployment(t, rollback_alarms),
    }, depends_on=(log_group, *rollback_alarms))
    ctx.stack.add(log_group, endpoint)
    a = t.autoscaling
    for v in t.variants if a is not None else ():
        slug = v.name.replace("-", "_")
        target = Resource("aws_appautoscaling_target", f"variant_{slug}", {
            "service_namespace": "sagemaker",
            "resource_id": interp("endpoint/", endpoint.attr("name"), f"/variant/{v.name}"),
            "scalable_dimension": "sagemaker:variant:DesiredInstanceCount",
            "min_capacity": a.min_capacity,
            "max_capacity": a.max_capacity,
        })
        ctx.stack.add(target, Resource("aws_appautoscaling_policy", f"variant_{slug}", {
            "name": f"{endpoint_name}-{v.name}-invocations",
            "policy_type": "TargetTrackingScaling",
            "service_namespace": target.attr("service_namespace"),
            "resource_id": target.attr("resource_id"),
            "scalable_dimension": target.attr("scalable_dimension"),
            "target_tracking_scaling_policy_configuration": Block({
                "target_value": a.target_invocations_per_instance,
                "scale_in_cooldown": a.scale_in_cooldown_seconds,
                "scale_out_cooldown": a.scale_out_cooldown_seconds,
                "predefined_metric_specification": Block({
                    "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"}),
            }),
        }))

    if t.monitoring_schedule is not None:
        _render_monitoring(t, ctx, endpoint, endpoint_name, role_arn, key_arn, buckets, data, training)

    ctx.stack.add(
        Output("endpoint_name", endpoint.attr("name"), description="The SageMaker endpoint"),
        Output("endpoint_config_name", config.attr("name"), description="The endpoint's current configuration"),
        Output("alarm_topic_arn", topic.attr("arn"), description="SNS topic the alarms notify"),
        Output("model_names", {n: m.attr("name") for n, m in models.items()},
               description="SageMaker model of each variant"),
    )


def _render_monitoring(t: ModelServing, ctx: StackContext, endpoint: Resource, endpoint_name: str, role_arn: Any,
                       key_arn: Any, buckets: Any, data: Any, training: Any) -> None:
    """Model Monitor's data-quality job on a schedule, and retraining when it finds violations."""
    monitor_name = _check_name(ctx, "name", f"{endpoint_name}-data-quality")
    analyzer = DataSource("aws_sagemaker_prebuilt_ecr_image", "model_monitor", {
        "repository_name": "sagemaker-model-monitor-analyzer"})
    reports = interp("s3://", buckets[t.capture_zone], f"/monitoring/{endpoint_name}")
    job = Resource("aws_sagemaker_data_quality_job_definition", "main", {
        "name": monitor_name,
        "role_arn": role_arn,
        "data_quality_app_specification": Block({"image_uri": analyzer.attr("registry_path")}),
        "data_quality_baseline_config": Block({
            "constraints_resource": Block({"s3_uri": interp("s3://", buckets["models"], "/baseline/constraints.json")}),
            "statistics_resource": Block({"s3_uri": interp("s3://", buckets["models"], "/baseline/statistics.json")}),
        }),
        "data_quality_job_input": Block({"endpoint_input": Block({
            "endpoint_name": endpoint.attr("name"),
            "local_path": "/opt/ml/processing/input/endpoint",
        })}),
        "data_quality_job_output_config": Block({
            "kms_key_id": key_arn,
            "monitoring_outputs": Block({"s3_output": Block({
                "s3_uri": reports, "local_path": "/opt/ml/processing/output"})}),
        }),
        "job_resources": Block({"cluster_config": Block({
            "instance_count": 1, "instance_type": "ml.m5.large", "volume_size_in_gb": 20,
            "volume_kms_key_id": key_arn})}),
        "network_config": Block({
            "enable_inter_container_traffic_encryption": True,
            "enable_network_isolation": True,
            "vpc_config": sagemaker_vpc_config(ctx, data),
        }),
        "stopping_condition": Block({"max_runtime_in_seconds": 1800}),
    })
    schedule = Resource("aws_sagemaker_monitoring_schedule", "main", {
        "name": monitor_name,
        "monitoring_schedule_config": Block({
            "monitoring_job_definition_name": job.attr("name"),
            "monitoring_type": "DataQuality",
            "schedule_config": Block({"schedule_expression": t.monitoring_schedule}),
        }),
    })
    ctx.stack.add(analyzer, job, schedule)

    if t.retrain_on_drift:
        pipeline_arn = ctx.upstream_output(training, "pipeline_arn")
        rule = Resource("aws_cloudwatch_event_rule", "drift", {
            "name": f"{endpoint_name}-drift",
            "description": "Model Monitor found violations of the training baseline: retrain",
            "event_pattern": jsonencode({
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Processing Job State Change"],
                # The event carries DescribeProcessingJob's fields; a monitoring run names its schedule
                # by ARN, and reports violations in its exit message.
                "detail": {
                    "ProcessingJobStatus": ["Completed"],
                    "ExitMessage": [{"prefix": "CompletedWithViolations"}],
                    "MonitoringScheduleArn": [schedule.attr("arn")],
                },
            }),
        })
        events_role = iam.role(ctx, "retrain", "retrain-on-drift", "events.amazonaws.com")
        ctx.stack.add(rule, events_role, iam.inline_policy("retrain", events_role, [
            iam.statement("StartTrainingPipeline", ["sagemaker:StartPipelineExecution"], [pipeline_arn]),
        ]), Resource("aws_cloudwatch_event_target", "retrain", {
            "rule": rule.attr("name"),
            "arn": pipeline_arn,
            "role_arn": events_role.attr("arn"),
            "sagemaker_pipeline_target": Block({"pipeline_parameter_list": [Block({
                "name": "ModelApprovalStatus", "value": "PendingManualApproval"})]}),
        }))


__all__ = ["render"]
