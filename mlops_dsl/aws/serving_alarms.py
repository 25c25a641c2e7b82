"""Where an endpoint's alarms go (an SNS topic on its own key, e-mail subscriptions) and the alarms:
p99 latency and 5xx rate per variant, which also roll a deployment back, and missing invocations."""

from __future__ import annotations

from ..context import StackContext
from ..templates.serving import ModelServing, Variant
from ..terraform import Block, Resource, jsonencode
from . import iam


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




def render_topic(ctx: StackContext, endpoint_name: str) -> Resource:
    """The alarm topic, with the namespace's e-mail subscriptions (confirmed once, before any alarm)."""
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

    return topic


def render_alarms(t: ModelServing, ctx: StackContext, endpoint_name: str, topic: Resource,
                  variants: list[Variant]) -> list[Resource]:
    """The alarms of the served variants; returns those that roll a deployment back."""
    notify = {"alarm_actions": [topic.attr("arn")], "ok_actions": [topic.attr("arn")], "actions_enabled": True}
    rollback_alarms = []
    for v in variants:
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
        "dimensions": {"EndpointName": endpoint_name, "VariantName": variants[0].name},
        "period": 3600,
        "evaluation_periods": t.alarms.idle_hours,
        "comparison_operator": "LessThanThreshold",
        "threshold": 1,
        # No data at all is exactly what this alarm is about.
        "treat_missing_data": "breaching",
        **notify,
    })
    ctx.stack.add(*rollback_alarms, idle)
    return rollback_alarms

