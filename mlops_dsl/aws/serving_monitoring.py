"""Monitoring of a served endpoint, one concern per module:

- serving_drift.py: the drift job on a schedule (Processing job per variant, Step Functions,
  EventBridge Scheduler), its roles and its alarms: notify the endpoint's alarm topic;
- serving_retraining.py: opt-in retraining after N drifted runs, with a cooldown, never while the
  pipeline runs (only in the namespace that owns the registry, the one with a pipeline);
- serving_model_monitor.py: opt-in SageMaker Model Monitor, for accounts that already use it;
- serving_workflows.py: the state machines' definitions as plain data; state_machines.py: how a
  state machine is deployed (logs, tracing, failure alarm).
"""

from __future__ import annotations

from ..context import StackContext
from ..serving_pins import Pinned
from ..templates.serving import ModelServing
from ..terraform import Resource
from .serving_drift import render_drift
from .serving_model_monitor import render_model_monitor
from .serving_retraining import render_retraining
from .state_machines import log_group


def render_monitoring(t: ModelServing, ctx: StackContext, endpoint: Resource, endpoint_name: str,
                      production: list[Pinned], topic: Resource) -> None:
    """The drift job and its alarms; retraining and Model Monitor where the blueprint opts in."""
    if t.monitoring_schedule is None:
        return
    for p in production:
        if p.variant.online_features is not None:
            ctx.stack.notes.append(f"{p.variant.name}: no drift job: it reads online_features, so its captured "
                                   f"requests carry record ids, not the features the baseline holds")
    production = [p for p in production if p.variant.online_features is None]
    if not production:
        return
    logs = log_group(ctx, ctx.upstream_output(t.training.data, "kms_key_arn"), t.log_retention_days)
    drift = render_drift(t, ctx, endpoint_name, production, topic, logs)
    if t.retrain_on_drift:
        if ctx.namespace.owns_registry:
            render_retraining(t, ctx, drift, topic, logs)
        else:
            ctx.stack.notes.append(f"retrain_on_drift: only {ctx.namespace.registry}, which owns the registry, "
                                   f"trains; here drift notifies the alarm topic")
    if t.model_monitor:
        render_model_monitor(t, ctx, endpoint, endpoint_name)


__all__ = ["render_monitoring"]
