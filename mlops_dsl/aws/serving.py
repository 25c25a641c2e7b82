"""ModelServing on AWS: a SageMaker real-time endpoint serving the pinned model versions.

Each pinned variant gets a model (serving_models.py); the endpoint configuration weighs them and is
replaced before it is destroyed, so a new pin rolls out as a blue/green or rolling update
(serving_deployment.py: the update step keeps autoscaled counts and fails on a rollback) that the
latency and error alarms (serving_alarms.py) roll back; each variant scales on its invocations
(serving_scaling.py); our drift job compares each variant's captured traffic with the baseline of
the package it serves, on a schedule, and opt-in retraining is bounded (serving_monitoring.py:
serving_drift.py, serving_retraining.py; Model Monitor only as an opt-in). A variant without a pin
is left out of the endpoint configuration, and with no variant pinned there is no endpoint at all:
only the alarm topic, ready for the first one.
"""

from __future__ import annotations

from ..context import StackContext
from ..serving_pins import pinned
from ..templates.serving import ModelServing
from ..terraform import Output, Resource
from .naming import ENDPOINT_CONFIG_PREFIX_LIMIT, sagemaker_name
from .naming import endpoint_name as served_endpoint_name
from .serving_alarms import render_alarms, render_topic
from .serving_dashboard import render_dashboard
from .serving_deployment import render_endpoint
from .serving_models import endpoint_configuration, model
from .serving_monitoring import render_monitoring
from .serving_scaling import render_scaling


def render(t: ModelServing, ctx: StackContext) -> None:
    endpoint_name = sagemaker_name(ctx, "name", served_endpoint_name(ctx.platform, ctx.namespace.name, t.name))
    sagemaker_name(ctx, "name", f"{ctx.name}-{t.name}-", ENDPOINT_CONFIG_PREFIX_LIMIT)
    topic = render_topic(ctx, endpoint_name)
    ctx.stack.add(Output("alarm_topic_arn", topic.attr("arn"), description="SNS topic the alarms notify"))
    production, shadow = pinned(t, ctx)
    if not production:
        return  # nothing pinned: no model to serve, so no endpoint (README: the model lifecycle)

    models = {p.variant.name: model(t, ctx, p) for p in [*production, *([shadow] if shadow else [])]}
    config = endpoint_configuration(t, ctx, endpoint_name, production, shadow, models)
    ctx.stack.add(*models.values(), config)
    variants = [p.variant for p in production]
    rollback_alarms = render_alarms(t, ctx, endpoint_name, topic, variants)

    key_arn = ctx.upstream_output(t.training.data, "kms_key_arn")
    log_group = Resource("aws_cloudwatch_log_group", "endpoint", {
        "name": f"/aws/sagemaker/Endpoints/{endpoint_name}",
        "retention_in_days": t.log_retention_days,
        "kms_key_id": key_arn,
    })
    ctx.stack.add(log_group)
    endpoint, update = render_endpoint(t, ctx, endpoint_name, config, log_group, rollback_alarms)
    render_scaling(t, ctx, endpoint, endpoint_name, variants, after=update)
    render_monitoring(t, ctx, endpoint, endpoint_name, production, topic)
    render_dashboard(t, ctx, endpoint_name, production, shadow)  # after every alarm: it shows them all
    ctx.stack.add(
        Output("endpoint_name", endpoint.attr("name"), description="The SageMaker endpoint"),
        Output("endpoint_config_name", config.attr("name"), description="The endpoint's current configuration"),
        Output("model_names", {n: m.attr("name") for n, m in models.items()},
               description="SageMaker model of each pinned variant"),
    )


__all__ = ["render"]
