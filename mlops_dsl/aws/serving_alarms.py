"""Where an endpoint's alarms go (an SNS topic on its own key, e-mail subscriptions) and the alarms:
p99 latency and 5xx rate per variant, which also roll a deployment back, and missing invocations."""

from __future__ import annotations

from ..context import StackContext
from ..templates.serving import ModelServing, Variant
from ..terraform import Block, Resource
from .alerts import alert_topic

# What the alarms read, shared with the dashboard (serving_dashboard.py).
SAGEMAKER_METRICS = "AWS/SageMaker"
INVOCATIONS = "Invocations"
ERRORS_5XX = "Invocation5XXErrors"
LATENCY = "ModelLatency"  # microseconds
LATENCY_STATISTIC = "p99"


def variant_dimensions(endpoint_name: str, variant: str) -> dict[str, str]:
    """The dimensions of a variant's AWS/SageMaker and /aws/sagemaker/Endpoints metrics."""
    return {"EndpointName": endpoint_name, "VariantName": variant}


def render_topic(ctx: StackContext, endpoint_name: str) -> Resource:
    """The alarm topic, with the namespace's e-mail subscriptions (confirmed once, before any alarm)."""
    return alert_topic(ctx, f"{endpoint_name}-alarms", "alarm",
                       {"CloudWatchAlarmsOfThisAccount": "cloudwatch.amazonaws.com"})


def render_alarms(t: ModelServing, ctx: StackContext, endpoint_name: str, topic: Resource,
                  variants: list[Variant]) -> list[Resource]:
    """The alarms of the served variants; returns those that roll a deployment back."""
    notify = {"alarm_actions": [topic.attr("arn")], "ok_actions": [topic.attr("arn")], "actions_enabled": True}
    rollback_alarms = []
    for v in variants:
        dims = variant_dimensions(endpoint_name, v.name)
        slug = v.name.replace("-", "_")
        latency = Resource("aws_cloudwatch_metric_alarm", f"latency_{slug}", {
            "alarm_name": f"{endpoint_name}-{v.name}-p99-latency",
            "alarm_description": f"p99 model latency of {v.name} above {t.alarms.p99_latency_ms} ms",
            "namespace": SAGEMAKER_METRICS,
            "metric_name": LATENCY,
            "extended_statistic": LATENCY_STATISTIC,
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
                    "namespace": SAGEMAKER_METRICS, "metric_name": metric, "dimensions": dims,
                    "period": 60, "stat": "Sum"})})
                  for qid, metric in (("errors", ERRORS_5XX), ("invocations", INVOCATIONS))],
            ],
            **notify,
        })
        rollback_alarms += [latency, errors]
    idle = Resource("aws_cloudwatch_metric_alarm", "idle", {
        "alarm_name": f"{endpoint_name}-no-invocations",
        "alarm_description": f"No invocation for {t.alarms.idle_hours} hours",
        "namespace": SAGEMAKER_METRICS,
        "metric_name": INVOCATIONS,
        "statistic": "Sum",
        "dimensions": variant_dimensions(endpoint_name, variants[0].name),
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

