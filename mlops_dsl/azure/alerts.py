"""The serving endpoint's alerts: p99 latency and 5xx answers, to the namespace's action group."""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.serving import ModelServing
from ..terraform import Block, Resource
from .common import compact, tagged

METRICS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
# What the alerts read, shared with the dashboard (dashboard.py).
LATENCY_P99 = "RequestLatency_P99"  # milliseconds
REQUESTS = "RequestsPerMinute"
STATUS_CLASS = "statusCodeClass"


def alerts(t: ModelServing, ctx: StackContext, name: str, rg: Any, endpoint: Resource) -> list[Resource]:
    group_body: dict[str, Any] = {
        "name": f"ag-{name}",
        "resource_group_name": rg,
        "short_name": compact(name)[:12],
    }
    # `email_receiver` is a nested block: with no e-mails there is no block at all, never
    # `email_receiver = []`, which Terraform rejects ("An argument named "email_receiver" is not
    # expected here"; review A6).
    receivers = [Block({"name": f"email-{i}", "email_address": e, "use_common_alert_schema": True})
                 for i, e in enumerate(ctx.namespace.alert_emails)]
    if receivers:
        group_body["email_receiver"] = receivers
    group = Resource("azurerm_monitor_action_group", "alerts", tagged(ctx, group_body))
    out = [group]
    for alert, description, criteria in (
        ("latency", f"p99 request latency above {t.alarms.p99_latency_ms} ms", {
            "metric_name": LATENCY_P99, "aggregation": "Average", "operator": "GreaterThan",
            "threshold": t.alarms.p99_latency_ms}),
        # A static Azure metric criterion cannot divide by the request count: any 5xx in the window
        # alerts. `RequestsPerMinute` supports the Average aggregation only (Azure Monitor supported
        # metrics, Microsoft.MachineLearningServices/workspaces/onlineEndpoints; review B8), and the
        # metric is validated: the endpoint exists before the alert.
        ("errors", "requests answered with a 5xx", {
            "metric_name": REQUESTS, "aggregation": "Average", "operator": "GreaterThan", "threshold": 0,
            "dimension": Block({"name": STATUS_CLASS, "operator": "Include", "values": ["5xx"]})}),
    ):
        out.append(Resource("azurerm_monitor_metric_alert", alert, tagged(ctx, {
            "name": f"{name}-{alert}",
            "resource_group_name": rg,
            "scopes": [endpoint.attr("id")],
            "description": description,
            "severity": 2,
            "frequency": "PT1M",
            "window_size": "PT5M",
            "criteria": Block({"metric_namespace": METRICS, **criteria}),
            "action": Block({"action_group_id": group.attr("id")}),
        })))
    return out
