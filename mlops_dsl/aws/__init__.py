"""How each template becomes resources on AWS (hashicorp/aws >= 5.100, < 7.0)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..templates import BatchInference, DataInfrastructure, FeatureStore, ModelServing, TrainingInfrastructure
from . import batch, data, features, serving, training
from .provider import remote_state, settings

NAME = "aws"
RENDERERS: Mapping[type, Callable[[Any, Any], None]] = {
    DataInfrastructure: data.render,
    FeatureStore: features.render,
    TrainingInfrastructure: training.render,
    ModelServing: serving.render,
    BatchInference: batch.render,
}

# Resource types whose name the account and region hold once, by the argument that sets it
# (mlops_dsl/unique_names.py checks no two stacks of a namespace render the same one).
UNIQUE_NAMES: Mapping[str, str] = {
    "aws_sagemaker_model": "name",
    "aws_sagemaker_endpoint": "name",
    "aws_sagemaker_pipeline": "pipeline_name",
    "aws_sagemaker_feature_group": "feature_group_name",
    "aws_sagemaker_model_package_group": "model_package_group_name",
    "aws_sagemaker_mlflow_tracking_server": "tracking_server_name",
    "aws_iam_role": "name",
    "aws_sfn_state_machine": "name",
    "aws_cloudwatch_event_rule": "name",
    "aws_cloudwatch_metric_alarm": "alarm_name",
    "aws_cloudwatch_dashboard": "dashboard_name",
    "aws_cloudwatch_log_group": "name",
    "aws_sns_topic": "name",
    "aws_sqs_queue": "name",
    "aws_kms_alias": "name",
    "aws_ecr_repository": "name",
    "aws_s3_bucket": "bucket",
    "aws_scheduler_schedule_group": "name",
    "aws_budgets_budget": "name",
}

__all__ = ["NAME", "RENDERERS", "UNIQUE_NAMES", "remote_state", "settings"]
