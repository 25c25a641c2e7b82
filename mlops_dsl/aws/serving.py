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

Two other modes (README: Inference modes): a serverless variant (serving_serverless.py) has no
instances, capture, drift job or guarded update (Terraform updates the endpoint in place); a
multi-model variant (serving_multi_model.py) serves several pinned models from copies of their
artifacts under one prefix.
"""

from __future__ import annotations

from pathlib import Path

from ..context import StackContext
from ..pins import path_for
from ..serving_pins import Pinned, pinned
from ..templates.serving import ModelServing
from ..terraform import Output, Resource
from .naming import ENDPOINT_CONFIG_PREFIX_LIMIT, sagemaker_name
from .naming import endpoint_name as served_endpoint_name
from .serving_alarms import render_alarms, render_topic
from .serving_api import render_api
from .serving_dashboard import render_dashboard
from .serving_deployment import render_endpoint
from .serving_models import endpoint_configuration, model
from .serving_monitoring import render_monitoring
from .serving_multi_model import artifact_copies, served_models, target_model
from .serving_multi_model import model as multi_model
from .serving_online_features import render_online_features
from .serving_scaling import render_scaling


def render(t: ModelServing, ctx: StackContext) -> None:
    endpoint_name = sagemaker_name(ctx, "name", served_endpoint_name(ctx.platform, ctx.namespace.name, t.name))
    sagemaker_name(ctx, "name", f"{ctx.name}-{t.name}-", ENDPOINT_CONFIG_PREFIX_LIMIT)
    topic = render_topic(ctx, endpoint_name)
    ctx.stack.add(Output("alarm_topic_arn", topic.attr("arn"), description="SNS topic the alarms notify"))
    if t.multi_model:
        render_multi_model(t, ctx, endpoint_name, topic)
        return
    production, shadow = pinned_mode(t, ctx) if t.serverless else pinned(t, ctx)
    if not production:
        return  # nothing pinned: no model to serve, so no endpoint (README: the model lifecycle)

    models = {p.variant.name: model(t, ctx, p) for p in [*production, *([shadow] if shadow else [])]}
    render_online_features(t, ctx, models, [*production, *([shadow] if shadow else [])])
    _render_endpoint(t, ctx, endpoint_name, topic, production, shadow, models)


def pinned_mode(t: ModelServing, ctx: StackContext) -> tuple[list[Pinned], Pinned | None]:
    """The pinned variants of a serverless endpoint. Pins are the platform's model slots, shared by its
    ModelServing templates (a serverless copy serves the version its namespace pins for `champion`),
    so a pin this template does not declare belongs to another, not to a typo: `mlops models promote`
    checks the name against the platform's first ModelServing."""
    pins = ctx.namespace.pins.get(ctx.platform, {})
    for v in t.variants:
        if v.name not in pins:
            ctx.stack.notes.append(f"{v.name}: no model version pinned "
                                   f"({path_for(Path(ctx.namespace.source), ctx.namespace.name)}), so it is not served")
    return [Pinned(f"variants[{i}]", v, pins[v.name]) for i, v in enumerate(t.variants) if v.name in pins], None


def render_multi_model(t: ModelServing, ctx: StackContext, endpoint_name: str, topic: Resource) -> None:
    """One variant serving the pinned versions of several models (serving_multi_model.py)."""
    served = served_models(t, ctx, 0, t.variants[0])
    if served is None:
        return
    copies = artifact_copies(t, ctx, endpoint_name, served)
    fleet = multi_model(t, ctx, endpoint_name, served, copies)
    ctx.stack.add(*copies)
    _render_endpoint(t, ctx, endpoint_name, topic, [served.variant], None, {served.variant.variant.name: fleet})
    ctx.stack.add(Output("target_models", {name: target_model(name, pin) for name, pin in served.models.items()},
                         description="TargetModel of each pinned model: InvokeEndpoint --target-model NAME"))


def _render_endpoint(t: ModelServing, ctx: StackContext, endpoint_name: str, topic: Resource,
                     production: list[Pinned], shadow: Pinned | None, models: dict[str, Resource]) -> None:
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
    if t.deployment is None:  # serverless: Terraform's UpdateEndpoint, no guarded update step
        endpoint = Resource("aws_sagemaker_endpoint", "main", {
            "name": endpoint_name, "endpoint_config_name": config.attr("name")}, depends_on=(log_group,))
        ctx.stack.add(endpoint)
    else:
        endpoint, update = render_endpoint(t, ctx, endpoint_name, config, log_group, rollback_alarms)
        render_scaling(t, ctx, endpoint, endpoint_name, variants, after=update)
    render_monitoring(t, ctx, endpoint, endpoint_name, production, topic)
    render_dashboard(t, ctx, endpoint_name, production, shadow)  # after every alarm: it shows them all
    render_api(t, ctx, endpoint)  # ModelServing(api=...): API Gateway in front (serving_api.py)
    ctx.stack.add(
        Output("endpoint_name", endpoint.attr("name"), description="The SageMaker endpoint"),
        Output("endpoint_config_name", config.attr("name"), description="The endpoint's current configuration"),
        Output("model_names", {n: m.attr("name") for n, m in models.items()},
               description="SageMaker model of each pinned variant"),
    )


__all__ = ["render"]
