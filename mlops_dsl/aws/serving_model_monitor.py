"""SageMaker Model Monitor's data-quality job over the captured traffic: an opt-in
(`ModelServing.model_monitor`) for accounts that already use Model Monitor, which is closed to new
customers since 2026-07-30 (Model Monitor availability change, SageMaker Developer Guide).

Its baseline is Model Monitor's own statistics.json and constraints.json, under
`model_monitor_baseline` (e.g. from its suggest-baseline job): the training pipeline writes the
drift job's baseline.json into each package, not those files, so the blueprint must name them.
Violations are in its reports; it starts nothing (retraining hangs off the drift job's alarm).
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.serving import ModelServing
from ..terraform import Block, DataSource, Resource, interp
from .naming import sagemaker_name
from .network import sagemaker_vpc_config


def render_model_monitor(t: ModelServing, ctx: StackContext, endpoint: Resource, endpoint_name: str) -> None:
    assert t.monitoring_schedule is not None and t.model_monitor_baseline is not None
    data = t.training.data
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    buckets = ctx.upstream_output(data, "bucket_names")
    baseline = t.model_monitor_baseline.rstrip("/")
    monitor_name = sagemaker_name(ctx, "name", f"{endpoint_name}-data-quality")
    # The data source tags the image `:1` unless told; AWS documents the analyzer untagged
    # (`<account>.dkr.ecr.<region>.amazonaws.com/sagemaker-model-monitor-analyzer`), and its SDK's
    # image_uris.retrieve("model-monitor") builds it without a tag: the latest image.
    analyzer = DataSource("aws_sagemaker_prebuilt_ecr_image", "model_monitor", {
        "repository_name": "sagemaker-model-monitor-analyzer", "image_tag": "latest"})
    reports = interp("s3://", buckets[t.capture_zone], f"/monitoring/{endpoint_name}")
    cluster: dict[str, Any] = {"instance_count": 1, "instance_type": "ml.m5.large", "volume_size_in_gb": 20,
                               "volume_kms_key_id": key_arn}
    job = Resource("aws_sagemaker_data_quality_job_definition", "main", {
        "name": monitor_name,
        # The training stack's execution role: in a serving-only namespace it runs monitoring jobs only.
        "role_arn": ctx.upstream_output(t.training, "execution_role_arn"),
        "data_quality_app_specification": Block({"image_uri": analyzer.attr("registry_path")}),
        "data_quality_baseline_config": Block({
            "constraints_resource": Block({"s3_uri": f"{baseline}/constraints.json"}),
            "statistics_resource": Block({"s3_uri": f"{baseline}/statistics.json"}),
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
        "job_resources": Block({"cluster_config": Block(cluster)}),
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


__all__ = ["render_model_monitor"]
