"""The serving stacks' dashboards: the CloudWatch dashboard (aws/serving_dashboard.py) and the Azure
portal dashboard (azure/dashboard.py) draw every metric the alarms and alerts read, for every
served variant, with the alarms' names and dimensions; their bodies are valid JSON of the documented
shapes; no dashboard without a pinned variant."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_dsl import AutoScaling, ModelServing, Variant
from mlops_dsl.aws.serving_dashboard import DRIFT_METRICS, alarm_metrics, shown_metrics
from mlops_dsl.azure.alerts import METRICS
from mlops_dsl.azure.dashboard import CAPACITY, CPU, DEPLOYMENT_METRICS, MEMORY
from mlops_dsl.terraform import Expr, Interp
from mlops_dsl.terraform.hcl import expression
from mlops_dsl.terraform.values import Call

from . import test_aws_templates as aws
from . import test_azure as az

TWO = {"variants": [Variant("champion", 0.9, initial_instance_count=2), Variant("challenger", 0.1)],
       "autoscaling": AutoScaling(1, 6), "retrain_on_drift": True}
SHADOW = {"variants": [Variant("main")], "shadow": Variant("candidate"), "autoscaling": None}


def _aws_stack(serving: dict, pins: dict | None = None):
    return aws._stacks(aws._platform(serving_kwargs=serving), pins=pins)["serving"].stack


def _one(stack, kind: str):
    found = [r for r in stack.resources if r.type == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def _body(resource, key: str) -> dict[str, Any]:
    value = resource.body[key]
    assert isinstance(value, Call) and value.name == "jsonencode"
    return value.args[0]


def _plain(value: Any) -> Any:
    """The body as JSON would carry it once Terraform resolves references (references as ${...})."""
    if isinstance(value, Expr):
        return "${" + value.text + "}"
    if isinstance(value, Interp):
        return "".join(p if isinstance(p, str) else "${" + p.text + "}" for p in value.parts)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    assert value is None or isinstance(value, str | int | float | bool), value
    return value


def _missing_alarm_metrics(stack, widgets) -> list[str]:
    """Every metric an alarm of the stack reads, as the alarm names it, that no widget draws."""
    shown = shown_metrics(widgets)
    return [f"{a.body['alarm_name']}: {ns} {name} {dims}"
            for a in stack.resources if a.type == "aws_cloudwatch_metric_alarm"
            for ns, name, dims, _, _ in alarm_metrics(a)
            if (ns, name, tuple(sorted(dims.items()))) not in shown]


# --- AWS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("serving", [TWO, SHADOW, {"monitoring_schedule": None}], ids=["two", "shadow", "no-drift"])
def test_aws_dashboard_draws_every_alarm_metric_and_every_served_variant(serving: dict) -> None:
    stack = _aws_stack(serving)
    dashboard = _one(stack, "aws_cloudwatch_dashboard")
    assert dashboard.body["dashboard_name"] == "churn-prod-serving"
    widgets = _body(dashboard, "dashboard_body")["widgets"]
    alarms = [r for r in stack.resources if r.type == "aws_cloudwatch_metric_alarm"]
    template = ModelServing(aws._platform().templates[2], **serving)
    assert {f"latency_{template.variants[0].name}", "idle"} <= {a.name for a in alarms}
    assert _missing_alarm_metrics(stack, widgets) == []
    # The endpoint's and the drift job's alarms are drawn in the variants' own graphs; a graph built
    # from an alarm only for the others (schedules, state machines, retraining rules).
    fallback = {w["properties"]["title"] for w in widgets
                if w["properties"].get("annotations", {}).get("horizontal", [{}])[0].get("label") == "alarm threshold"}
    assert fallback == {a.body["alarm_name"] for a in alarms
                        if not {ns for ns, *_ in alarm_metrics(a)} <= {"AWS/SageMaker", "MLOps/Drift"}}
    status = next(w for w in widgets if w["type"] == "alarm")["properties"]["alarms"]
    assert status == [a.attr("arn") for a in sorted(alarms, key=lambda a: a.name)]

    served = [*template.variants, *([template.shadow] if template.shadow else [])]
    shown = shown_metrics(widgets)
    for v in served:
        dims = (("EndpointName", "churn-prod-serving"), ("VariantName", v.name))
        for ns, name in [("AWS/SageMaker", m) for m in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors",
                                                         "ModelLatency", "InvocationsPerInstance")] + \
                        [("/aws/sagemaker/Endpoints", m) for m in ("CPUUtilization", "MemoryUtilization")]:
            assert (ns, name, dims) in shown, (v.name, name)
        latency = next(w for w in widgets if w["properties"].get("title", "").startswith(v.name)
                       and "latency" in w["properties"]["title"])
        assert "microseconds" in latency["properties"]["title"]
        assert [m[-1]["stat"] for m in latency["properties"]["metrics"]] == ["p50", "p99"]
    drift = {(name, dims) for ns, name, dims in shown if ns == "MLOps/Drift"}
    expected = {(m, (("Endpoint", "churn-prod-serving"), ("Variant", v.name)))
                for v in template.variants for m, _ in DRIFT_METRICS} if template.monitoring_schedule else set()
    assert drift == expected  # production variants only: the drift job reads no shadow capture


def test_the_coverage_check_fails_when_an_alarm_metric_is_left_off() -> None:
    stack = _aws_stack(TWO)
    widgets = _body(_one(stack, "aws_cloudwatch_dashboard"), "dashboard_body")["widgets"]
    without_latency = [w for w in widgets if "latency" not in w["properties"].get("title", "")]
    assert any("champion-p99-latency" in m for m in _missing_alarm_metrics(stack, without_latency))
    without_drift = [w for w in widgets if "drift" not in w["properties"].get("title", "")]
    assert any("champion-drift" in m for m in _missing_alarm_metrics(stack, without_drift))


def test_aws_dashboard_body_is_valid_dashboard_json() -> None:
    """Dashboard Body Structure and Syntax: a widgets array (at most 500) on 24 columns; metric
    widgets carry metrics and region; a metric is strings then one optional options object."""
    for serving in (TWO, SHADOW):
        body = _plain(_body(_one(_aws_stack(serving), "aws_cloudwatch_dashboard"), "dashboard_body"))
        assert json.loads(json.dumps(body)) == body
        widgets = body["widgets"]
        assert 0 < len(widgets) <= 500
        cells = set()
        for w in widgets:
            assert w["type"] in {"metric", "text", "alarm"}
            assert w["x"] >= 0 and w["x"] + w["width"] <= 24 and w["y"] >= 0
            for x in range(w["x"], w["x"] + w["width"]):
                for y in range(w["y"], w["y"] + w["height"]):
                    assert (x, y) not in cells, f"{w['properties'].get('title')} overlaps"
                    cells.add((x, y))
            props = w["properties"]
            if w["type"] == "metric":
                assert props["region"] == "eu-west-1" and props["metrics"]
                for row in props["metrics"]:
                    *names, last = row
                    if isinstance(last, dict) and "expression" in last:
                        assert names == [] and set(last) <= {"expression", "id", "label"}
                        continue
                    names = names + ([] if isinstance(last, dict) else [last])
                    assert all(isinstance(n, str) for n in names) and len(names) % 2 == 0, row
                ids = {r[-1]["id"] for r in props["metrics"] if isinstance(r[-1], dict) and "id" in r[-1]}
                for row in props["metrics"]:
                    if "expression" in row[-1] if isinstance(row[-1], dict) else False:
                        used = {t for t in row[-1]["expression"].replace("(", " ").replace(")", " ").replace(
                            ",", " ").replace("[", " ").replace("]", " ").split() if t.isidentifier()
                            and t not in {"MAX", "MIN", "SUM"}}
                        assert used <= ids, (used, ids)
            elif w["type"] == "alarm":
                assert 0 < len(props["alarms"]) <= 100
            else:
                assert props["markdown"]
    text = "\n".join(expression(_one(_aws_stack(TWO), "aws_cloudwatch_dashboard").body["dashboard_body"], 0))
    assert text.startswith("jsonencode({")


def test_drift_widgets_use_the_drift_jobs_metric_names() -> None:
    from serving.drift.metrics import points

    report = {"drifted": True, "drifted_features": ["a"], "rows": 10, "unreadable_records": 0, "features": {}}
    assert {m for m, _ in DRIFT_METRICS} <= {name for name, _, _, _ in points(report)}


def test_no_aws_dashboard_without_a_pinned_variant() -> None:
    stack = _aws_stack(TWO, pins={})
    assert "aws_cloudwatch_dashboard" not in {r.type for r in stack.resources}


# --- Azure -------------------------------------------------------------------------------------


def _azure_stack(serving: dict | None = None, pins: dict | None = None):
    return az._stacks(az._platform(serving=serving), pins=pins)["serving"]


def _charts(properties: dict) -> list[dict]:
    parts = properties["lenses"]["0"]["parts"]
    return [p["metadata"]["settings"]["content"]["options"]["chart"] for p in parts.values()
            if p["metadata"]["type"].endswith("MonitorChartPart")]


def _drawn(properties: dict) -> set[tuple]:
    """(resource id, namespace, metric, deployment filter, split) of every chart's metrics."""
    out = set()
    for chart in _charts(properties):
        filters = chart.get("filterCollection", {}).get("filters", [])
        deployment = filters[0]["values"][0] if filters else None
        split = chart.get("grouping", {}).get("dimension")
        for m in chart["metrics"]:
            out.add((m["resourceMetadata"]["id"], m["namespace"], m["name"], deployment, split))
    return out


@pytest.mark.parametrize("serving", [None, {"variants": [Variant("blue")], "shadow": Variant("c"),
                                            "data_capture_percent": 10}], ids=["two", "shadow"])
def test_azure_dashboard_draws_every_alert_and_autoscale_metric_per_deployment(serving: dict | None) -> None:
    stack = _azure_stack(serving)
    dashboard = _one(stack, "azurerm_portal_dashboard")
    properties = _body(dashboard, "dashboard_properties")
    drawn = _drawn(properties)
    deployments = {r.name: r for r in stack.resources
                   if r.type == "azapi_resource" and "onlineEndpoints/deployments" in r.body["type"]}
    assert deployments
    alerts = [r for r in stack.resources if r.type == "azurerm_monitor_metric_alert"]
    assert {a.name for a in alerts} == {"latency", "errors"}
    endpoint_id = next(r for r in stack.resources if r.type == "azapi_resource"
                       and r.body["type"].startswith(f"{METRICS.split('/')[0]}/workspaces/onlineEndpoints@")).attr("id")
    for d in deployments.values():
        name = d.body["name"]
        for alert in alerts:
            c = alert.body["criteria"].body
            split = c["dimension"].body["name"] if "dimension" in c else None
            assert alert.body["scopes"] == [endpoint_id]
            key = (endpoint_id, c["metric_namespace"].lower(), c["metric_name"], name, split)
            assert key in drawn, (name, alert.name)
        for metric in (CPU, MEMORY, CAPACITY):
            assert (d.attr("id"), DEPLOYMENT_METRICS.lower(), metric, None, None) in drawn, (name, metric)
    for rule in (r for r in stack.resources if r.type == "azurerm_monitor_autoscale_setting"):
        for trigger in (x.body["metric_trigger"].body for x in rule.body["profile"].body["rule"]):
            assert (trigger["metric_resource_id"], trigger["metric_namespace"].lower(), trigger["metric_name"],
                    None, None) in drawn


def test_azure_dashboard_properties_are_the_portals_dashboard_json() -> None:
    """The structure of Azure dashboards: lenses -> parts with position and metadata; charts name
    each metric by resource id, namespace, name and aggregation; parts do not overlap."""
    properties = _plain(_body(_one(_azure_stack(), "azurerm_portal_dashboard"), "dashboard_properties"))
    assert json.loads(json.dumps(properties)) == properties
    assert properties["metadata"]["model"]["timeRange"]["type"] == \
        "MsPortalFx.Composition.Configuration.ValueTypes.TimeRange"
    lens = properties["lenses"]["0"]
    assert lens["order"] == 0
    cells = set()
    for part in lens["parts"].values():
        pos = part["position"]
        for x in range(pos["x"], pos["x"] + pos["colSpan"]):
            for y in range(pos["y"], pos["y"] + pos["rowSpan"]):
                assert (x, y) not in cells
                cells.add((x, y))
        assert part["metadata"]["type"].startswith("Extension/HubsExtension/PartType/")
    for chart in _charts(properties):
        assert chart["title"] and chart["metrics"]
        for m in chart["metrics"]:
            assert m["resourceMetadata"]["id"].startswith("${azapi_resource.")
            assert m["aggregationType"] in {1, 2, 3, 4}


def test_no_azure_dashboard_without_a_pinned_variant() -> None:
    stack = _azure_stack(pins={})
    assert "azurerm_portal_dashboard" not in {r.type for r in stack.resources}


def test_dashboards_leave_the_alarms_as_they_were() -> None:
    """The shared constants changed no alarm: the rendered alarm bodies name the same metrics."""
    stack = _aws_stack(TWO)
    latency = next(r for r in stack.resources if r.name == "latency_champion")
    assert (latency.body["namespace"], latency.body["metric_name"], latency.body["extended_statistic"]) == \
        ("AWS/SageMaker", "ModelLatency", "p99")
    assert latency.body["dimensions"] == {"EndpointName": "churn-prod-serving", "VariantName": "champion"}
    drift = next(r for r in stack.resources if r.name == "drift_champion")
    assert (drift.body["namespace"], drift.body["metric_name"], drift.body["dimensions"]) == \
        ("MLOps/Drift", "DriftDetected", {"Endpoint": "churn-prod-serving", "Variant": "champion"})
    criteria = {a.name: a.body["criteria"].body for a in _azure_stack().resources
                if a.type == "azurerm_monitor_metric_alert"}
    assert criteria["latency"]["metric_name"] == "RequestLatency_P99"
    assert criteria["errors"]["metric_name"] == "RequestsPerMinute"
    assert criteria["errors"]["dimension"].body["name"] == "statusCodeClass"
