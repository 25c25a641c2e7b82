"""Model Monitor's data-quality job over the captured traffic, and retraining when it finds violations."""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.serving import ModelServing
from ..terraform import Block, DataSource, Resource, interp, jsonencode
from . import iam
from .naming import sagemaker_name
from .network import sagemaker_vpc_config


def render_monitoring(t: ModelServing, ctx: StackContext, endpoint: Resource, endpoint_name: str, role_arn: Any,
                       key_arn: Any, buckets: Any, data: Any, training: Any) -> None:
    """Model Monitor's data-quality job on a schedule, and retraining when it finds violations."""
    monitor_name = sagemaker_name(ctx, "name", f"{endpoint_name}-data-quality")
    # The data source tags the image `:1` unless told; AWS documents the analyzer untagged
    # (`<account>.dkr.ecr.<region>.amazonaws.com/sagemaker-model-monitor-analyzer`), and its SDK's
    # image_uris.retrieve("model-monitor") builds it without a tag: the latest image.
    analyzer = DataSource("aws_sagemaker_prebuilt_ecr_image", "model_monitor", {
        "repository_name": "sagemaker-model-monitor-analyzer", "image_tag": "latest"})
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

    # Only the registry's namespace trains; elsewhere drift notifies through the alarms only.
    if t.retrain_on_drift and ctx.namespace.owns_registry:
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


