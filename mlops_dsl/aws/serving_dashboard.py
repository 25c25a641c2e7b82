"""A CloudWatch dashboard per serving stack: how each served variant is doing, from the metrics the
alarms read (serving_alarms.py, serving_drift.py: the same constants), and the state of every alarm.

Body: the DashboardBody JSON of "Dashboard Body Structure and Syntax" (CloudWatch API Reference):
a `widgets` array of `metric`, `alarm` and `text` widgets on a 24-column grid; each metric is
`[namespace, name, dimension name, value, ..., {options}]`, a metric-math entry `{"expression", "id"}`.

Per served variant (the shadow too: SageMaker publishes its metrics under its own VariantName):

- Invocations and Invocation4XXErrors / Invocation5XXErrors (Sum per minute; the 5xx rate alarm
  divides the second by the first);
- ModelLatency p50 and p99, in microseconds as SageMaker publishes it, with the alarm's threshold;
- instances: SageMaker publishes no instance-count metric for an endpoint variant, and Application
  Auto Scaling none for its scalable targets; `InvocationsPerInstance` is each invocation divided
  by the variant's instance count (its definition in the SageMaker metrics reference), so
  Invocations / InvocationsPerInstance is the count of instances while traffic flows (no value when
  idle), drawn between the autoscaling limits;
- CPUUtilization (summed over cores, so up to 100% x vCPUs) and MemoryUtilization, namespace
  /aws/sagemaker/Endpoints.

Per production variant with a drift job: DriftDetected, DriftedFeatures and RowsAnalysed (MLOps/Drift,
dimensions Endpoint and Variant; serving/drift/metrics.py), one point per run.

Every other alarm of the stack (the drift schedule's and state machine's, retraining's) gets a graph of
its own metrics, built from the alarm itself, so each alarm's metric is on the dashboard.
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..serving_pins import Pinned
from ..templates.serving import ModelServing, Variant, schedule_interval_hours
from ..terraform import Block, Resource, Value, jsonencode
from .serving_alarms import (
    ERRORS_5XX,
    INVOCATIONS,
    LATENCY,
    LATENCY_STATISTIC,
    SAGEMAKER_METRICS,
    variant_dimensions,
)
from .serving_drift import DRIFT_DETECTED, METRICS_NAMESPACE, drift_dimensions

ERRORS_4XX = "Invocation4XXErrors"
INVOCATIONS_PER_INSTANCE = "InvocationsPerInstance"
ENDPOINT_METRICS = "/aws/sagemaker/Endpoints"  # instance metrics of an endpoint's variants
CPU, MEMORY = "CPUUtilization", "MemoryUtilization"
# The drift job's metrics of a run (serving/drift/metrics.py `points`), with the statistic shown.
DRIFT_METRICS = ((DRIFT_DETECTED, "Maximum"), ("DriftedFeatures", "Maximum"), ("RowsAnalysed", "Sum"))
WIDTH, HEIGHT = 6, 6  # four graphs per row of CloudWatch's 24 columns


def _metric(namespace: str, name: str, dimensions: dict[str, Value], **options: Value) -> list[Value]:
    row: list[Value] = [namespace, name]
    for key, value in dimensions.items():
        row += [key, value]
    return [*row, options] if options else row


def _graph(ctx: StackContext, title: str, metrics: list[list[Value]], period: int, stat: str,
           label: str, **properties: Value) -> dict[str, Value]:
    return {"type": "metric", "width": WIDTH, "height": HEIGHT, "properties": {
        "title": title, "view": "timeSeries", "stacked": False, "metrics": metrics, "period": period,
        "stat": stat, "region": ctx.namespace.aws.region,  # type: ignore[union-attr]
        "yAxis": {"left": {"label": label, "showUnits": False, "min": 0}}, **properties}}


def _variant_row(t: ModelServing, ctx: StackContext, endpoint_name: str, v: Variant,
                 production: bool) -> list[dict[str, Value]]:
    dims = variant_dimensions(endpoint_name, v.name)
    what = v.name if production else f"{v.name} (shadow)"
    latency_lines = {"horizontal": [{"label": f"alarm: p99 above {t.alarms.p99_latency_ms} ms",
                                     "value": t.alarms.p99_latency_ms * 1000}]} if production else {}
    a = t.autoscaling
    low, high = (a.min_capacity, a.max_capacity) if a is not None and production else \
        (v.initial_instance_count, v.initial_instance_count)
    capacity = [{"label": "autoscaling minimum", "value": low}, {"label": "autoscaling maximum", "value": high}] \
        if low != high else [{"label": "fixed capacity", "value": low}]
    return [
        _graph(ctx, f"{what}: invocations and errors", [
            _metric(SAGEMAKER_METRICS, INVOCATIONS, dims, label="Invocations"),
            _metric(SAGEMAKER_METRICS, ERRORS_4XX, dims, label="4xx"),
            _metric(SAGEMAKER_METRICS, ERRORS_5XX, dims, label="5xx"),
        ], 60, "Sum", "requests per minute"),
        _graph(ctx, f"{what}: model latency (microseconds)", [
            _metric(SAGEMAKER_METRICS, LATENCY, dims, stat="p50", label="p50 (µs)"),
            _metric(SAGEMAKER_METRICS, LATENCY, dims, stat=LATENCY_STATISTIC, label="p99 (µs)"),
        ], 60, LATENCY_STATISTIC, "microseconds", **({"annotations": latency_lines} if latency_lines else {})),
        _graph(ctx, f"{what}: instances", [
            [{"expression": "invocations / per_instance", "id": "instances",
              "label": "instances serving (Invocations / InvocationsPerInstance; none when idle)"}],
            _metric(SAGEMAKER_METRICS, INVOCATIONS, dims, id="invocations", visible=False),
            _metric(SAGEMAKER_METRICS, INVOCATIONS_PER_INSTANCE, dims, id="per_instance", visible=False),
        ], 60, "Sum", "instances", annotations={"horizontal": capacity}),
        _graph(ctx, f"{what}: CPU and memory", [
            _metric(ENDPOINT_METRICS, CPU, dims, label="CPU % (summed over vCPUs)"),
            _metric(ENDPOINT_METRICS, MEMORY, dims, label="memory %"),
        ], 60, "Average", "percent"),
    ]


def _drift_row(ctx: StackContext, endpoint_name: str, variant: str, hours: int) -> list[dict[str, Value]]:
    dims = drift_dimensions(endpoint_name, variant)
    return [_graph(ctx, f"{variant}: drift, {name}", [_metric(METRICS_NAMESPACE, name, dims, label=name)],
                   hours * 3600, stat, "1 = drifted" if name == DRIFT_DETECTED else "count")
            for name, stat in DRIFT_METRICS]


def alarm_metrics(alarm: Resource) -> list[tuple[str, str, dict[str, Value], str, int]]:
    """(namespace, metric, dimensions, statistic, period) of each metric an alarm reads."""
    body = alarm.body
    if "metric_query" not in body:
        return [(body["namespace"], body["metric_name"], body.get("dimensions") or {},  # type: ignore[list-item]
                 body.get("extended_statistic") or body["statistic"], body["period"])]  # type: ignore[list-item]
    out = []
    for query in body["metric_query"]:  # type: ignore[union-attr]
        assert isinstance(query, Block)
        if "metric" in query.body:
            m = query.body["metric"].body  # type: ignore[union-attr]
            out.append((m["namespace"], m["metric_name"], m.get("dimensions") or {}, m["stat"], m["period"]))
    return out  # type: ignore[return-value]


def _key(namespace: Any, name: Any, dimensions: Any) -> tuple[Any, ...]:
    return namespace, name, tuple(sorted(dimensions.items()))


def shown_metrics(widgets: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """(namespace, metric, dimension pairs) of every metric the widgets draw."""
    out = set()
    for w in widgets:
        for row in w["properties"].get("metrics", []) if w["type"] == "metric" else ():
            names = [x for x in row if not isinstance(x, dict)]
            if len(names) >= 2:
                out.add(_key(names[0], names[1], dict(zip(names[2::2], names[3::2], strict=True))))
    return out


def _alarm_graph(ctx: StackContext, alarm: Resource) -> dict[str, Value]:
    """The alarm's metrics as it reads them: its metric math drawn, the metrics under it hidden."""
    body = alarm.body
    metrics: list[list[Value]] = []
    for query in body.get("metric_query") or [body]:  # type: ignore[union-attr]
        q = query.body if isinstance(query, Block) else query
        if "expression" in q:
            metrics.append([{"expression": q["expression"], "id": q["id"], "label": q.get("label", q["id"])}])
            continue
        m = q["metric"].body if "metric" in q else q  # type: ignore[union-attr]
        options: dict[str, Value] = {"stat": m.get("stat") or m.get("extended_statistic") or m["statistic"],
                                     "period": m["period"], "label": m["metric_name"]}
        if "metric" in q:
            options.update(id=q["id"], visible=False)
        metrics.append(_metric(m["namespace"], m["metric_name"], m.get("dimensions") or {}, **options))  # type: ignore[arg-type]
    _, _, _, stat, period = alarm_metrics(alarm)[0]
    return _graph(ctx, body["alarm_name"], metrics, period, stat, "value",  # type: ignore[arg-type]
                  annotations={"horizontal": [{"label": "alarm threshold", "value": body["threshold"]}]})


def dashboard_body(t: ModelServing, ctx: StackContext, endpoint_name: str, production: list[Pinned],
                   shadow: Pinned | None) -> dict[str, Value]:
    alarms = sorted((r for r in ctx.stack.resources if r.type == "aws_cloudwatch_metric_alarm"),
                    key=lambda r: r.name)
    widgets: list[dict[str, Value]] = [
        {"type": "text", "width": 24, "height": 2, "properties": {"markdown": (
            f"## {endpoint_name}\nPer variant: invocations and errors per minute, model latency in "
            f"**microseconds** (SageMaker's unit), instances, CPU and memory; the drift job's metrics; "
            f"every alarm of the stack. Generated by mlops-dsl from the alarms' metric names.")}},
        {"type": "alarm", "width": 24, "height": 4, "properties": {
            "title": "Alarms of this stack", "alarms": [a.attr("arn") for a in alarms][:100]}},
    ]
    for p in production:
        widgets += _variant_row(t, ctx, endpoint_name, p.variant, production=True)
    if shadow is not None:
        widgets += _variant_row(t, ctx, endpoint_name, shadow.variant, production=False)
    hours = schedule_interval_hours(t.monitoring_schedule) if t.monitoring_schedule is not None else None
    for p in production if hours else ():
        assert hours is not None
        widgets += _drift_row(ctx, endpoint_name, p.variant.name, hours)
    shown = shown_metrics(widgets)  # type: ignore[arg-type]
    for alarm in alarms:
        if any(_key(ns, name, dims) not in shown for ns, name, dims, _, _ in alarm_metrics(alarm)):
            widgets.append(_alarm_graph(ctx, alarm))
    return {"start": "-PT12H", "periodOverride": "inherit", "widgets": _placed(widgets)}


def _placed(widgets: list[dict[str, Value]]) -> list[dict[str, Value]]:
    """Left to right, top to bottom on the 24-column grid (a widget that does not fit starts a row)."""
    x = y = row_height = 0
    out = []
    for w in widgets:
        width, height = w["width"], w["height"]
        assert isinstance(width, int) and isinstance(height, int)
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        out.append({**w, "x": x, "y": y})
        x, row_height = x + width, max(row_height, height)
    return out


def render_dashboard(t: ModelServing, ctx: StackContext, endpoint_name: str, production: list[Pinned],
                     shadow: Pinned | None) -> Resource | None:
    """The dashboard, after every alarm of the stack; none without a pinned variant (no endpoint)."""
    if not production:
        return None
    dashboard = Resource("aws_cloudwatch_dashboard", "endpoint", {
        "dashboard_name": endpoint_name,
        "dashboard_body": jsonencode(dashboard_body(t, ctx, endpoint_name, production, shadow)),
    })
    ctx.stack.add(dashboard)
    return dashboard


__all__ = ["DRIFT_METRICS", "alarm_metrics", "dashboard_body", "render_dashboard", "shown_metrics"]
