"""An Azure portal dashboard per serving stack (`azurerm_portal_dashboard`): how each deployment is
doing, from the metric names the alerts (alerts.py) and the autoscale rules (scaling.py) read.

`dashboard_properties` is the dashboard's `properties` object as "The structure of Azure dashboards"
(learn.microsoft.com/azure/azure-portal/azure-portal-dashboards-structure) and the
Microsoft.Portal/dashboards template reference describe it: `lenses` ("0": `order`, `parts`), each
part a `position` (x, y, colSpan, rowSpan on the portal's grid) and `metadata`; `metadata.model`
holds the time range. Charts are `Extension/HubsExtension/PartType/MonitorChartPart` parts whose
`settings.content.options.chart` names each metric by `resourceMetadata.id`, `namespace`, `name`
and `aggregationType` (1 Total, 2 Minimum, 3 Maximum, 4 Average), optionally filtered
(`filterCollection`) and split (`grouping`) by a dimension: the form the portal exports.

Per served deployment (the shadow too):

- RequestLatency_P99 (milliseconds) of the endpoint, filtered on the deployment, with the alert's
  threshold in the title;
- RequestsPerMinute of the endpoint, filtered on the deployment and split by statusCodeClass (the
  5xx alert's dimension), so 2xx, 4xx and 5xx are drawn apart;
- DeploymentCapacity (instances), CpuUtilizationPercentage (the autoscale rules' metric) and
  CpuMemoryUtilizationPercentage of the deployment (Microsoft.MachineLearningServices/workspaces/
  onlineEndpoints/deployments, Azure Monitor supported metrics).

Drift: no Azure stack runs the drift job yet, so nothing publishes DriftDetected to Azure Monitor
(the job's azure-monitor sink posts to whatever resource `AZURE_MONITOR_ENDPOINT` names); the
dashboard says so rather than draw an empty chart.
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..serving_pins import Pinned
from ..templates.serving import ModelServing
from ..terraform import Resource, Value, jsonencode
from .alerts import LATENCY_P99, METRICS, REQUESTS, STATUS_CLASS
from .common import location, tagged

DEPLOYMENT_METRICS = f"{METRICS}/deployments"
CPU = "CpuUtilizationPercentage"
MEMORY = "CpuMemoryUtilizationPercentage"
CAPACITY = "DeploymentCapacity"
DEPLOYMENT_DIMENSION = "deployment"  # the endpoint metrics' dimension naming the deployment
AVERAGE, MAXIMUM = 4, 3  # the portal's aggregationType
CHART = "Extension/HubsExtension/PartType/MonitorChartPart"
MARKDOWN = "Extension/HubsExtension/PartType/MarkdownPart"
COLUMNS, ROWS = 6, 4  # one chart: a quarter of a 24-column row


def _chart(title: str, resource_id: Value, namespace: str, metrics: list[tuple[str, int, str]],
           deployment: str | None = None, split: str | None = None) -> dict[str, Value]:
    chart: dict[str, Value] = {
        "metrics": [{"resourceMetadata": {"id": resource_id}, "name": name, "aggregationType": aggregation,
                     "namespace": namespace.lower(), "metricVisualization": {"displayName": label}}
                    for name, aggregation, label in metrics],
        "title": title, "titleKind": 2,
        "visualization": {"chartType": 2, "legendVisualization": {"isVisible": True, "position": 2},
                          "axisVisualization": {"x": {"isVisible": True, "axisType": 2},
                                                "y": {"isVisible": True, "axisType": 1}}},
        "timespan": {"relative": {"duration": 86400000}, "showUTCTime": False, "grain": 1},
    }
    if deployment is not None:
        chart["filterCollection"] = {"filters": [{"key": DEPLOYMENT_DIMENSION, "operator": 0,
                                                  "values": [deployment]}]}
    if split is not None:
        chart["grouping"] = {"dimension": split, "sort": 2, "top": 10}
    return {"metadata": {
        "inputs": [{"name": "options", "isOptional": True}, {"name": "sharedTimeRange", "isOptional": True}],
        "type": CHART, "settings": {"content": {"options": {"chart": chart}}}}}


def _markdown(text: str) -> dict[str, Value]:
    return {"metadata": {"inputs": [], "type": MARKDOWN, "settings": {"content": {"settings": {
        "content": text, "title": "", "subtitle": "", "markdownSource": 1}}}}}


def _rows(t: ModelServing, endpoint_id: Value, variant: str, deployment: str, deployment_id: Value,
          shadow: bool) -> list[dict[str, Value]]:
    what = f"{variant} (shadow)" if shadow else variant
    alert = "" if shadow else f"; alert above {t.alarms.p99_latency_ms} ms"
    return [
        _chart(f"{what}: p99 request latency (ms{alert})", endpoint_id, METRICS,
               [(LATENCY_P99, AVERAGE, "p99 latency (ms)")], deployment=deployment),
        _chart(f"{what}: requests per minute by status class", endpoint_id, METRICS,
               [(REQUESTS, AVERAGE, "requests per minute")], deployment=deployment, split=STATUS_CLASS),
        _chart(f"{what}: instances", deployment_id, DEPLOYMENT_METRICS, [(CAPACITY, MAXIMUM, "instances")]),
        _chart(f"{what}: CPU and memory (%)", deployment_id, DEPLOYMENT_METRICS,
               [(CPU, AVERAGE, "CPU %"), (MEMORY, AVERAGE, "memory %")]),
    ]


def dashboard_properties(t: ModelServing, name: str, endpoint: Resource, deployments: dict[str, Resource],
                         production: list[Pinned], shadow: Pinned | None) -> dict[str, Value]:
    parts: list[dict[str, Value]] = [_markdown(
        f"## {name}\nPer deployment: p99 request latency (milliseconds), requests per minute by status "
        f"class, instances, CPU and memory. Generated by mlops-dsl from the alerts' metric names. Drift: no "
        f"Azure stack publishes the drift job's metrics to Azure Monitor yet.")]
    for p, is_shadow in [*((p, False) for p in production), *([(shadow, True)] if shadow else [])]:
        d = deployments[p.variant.name]
        parts += _rows(t, endpoint.attr("id"), p.variant.name, d.body["name"], d.attr("id"),  # type: ignore[arg-type]
                       is_shadow)
    placed: dict[str, Value] = {}
    for i, part in enumerate(parts):
        position = {"x": 0, "y": 0, "colSpan": 24, "rowSpan": 2} if i == 0 else {
            "x": ((i - 1) % 4) * COLUMNS, "y": 2 + ((i - 1) // 4) * ROWS, "colSpan": COLUMNS, "rowSpan": ROWS}
        placed[str(i)] = {"position": position, **part}
    return {"lenses": {"0": {"order": 0, "parts": placed}}, "metadata": {"model": {"timeRange": {
        "value": {"relative": {"duration": 24, "timeUnit": 1}},
        "type": "MsPortalFx.Composition.Configuration.ValueTypes.TimeRange"}}}}


def render_dashboard(t: ModelServing, ctx: StackContext, name: str, rg: Any, endpoint: Resource,
                     deployments: dict[str, Resource], production: list[Pinned],
                     shadow: Pinned | None) -> Resource | None:
    """The dashboard; none without a pinned variant (no deployment to show)."""
    if not production:
        return None
    dashboard = Resource("azurerm_portal_dashboard", "endpoint", tagged(ctx, {
        "name": f"dash-{name}",
        "resource_group_name": rg,
        "location": location(ctx),
        "dashboard_properties": jsonencode(dashboard_properties(t, name, endpoint, deployments, production,
                                                                shadow)),
    }))
    ctx.stack.add(dashboard)
    return dashboard


__all__ = ["CAPACITY", "CPU", "DEPLOYMENT_METRICS", "MEMORY", "dashboard_properties", "render_dashboard"]
