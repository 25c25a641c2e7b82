"""ModelServing on Azure: a managed online endpoint with one deployment per variant.

azurerm 4.55 has no online endpoint, so endpoint, deployments and the traffic map are azapi
resources. The traffic map is applied after the deployments exist. Azure has no automatic
rollback: a traffic change is reverted by changing the variant weights back in the blueprint and
applying again (or, in an emergency, `az ml online-endpoint update --traffic "champion=100"`
followed by the same blueprint change, so the next apply does not undo it).
"""

from __future__ import annotations

import re
from typing import Any

from ..context import StackContext
from ..templates.serving import ModelServing, Variant
from ..terraform import Block, Output, Resource, interp
from .common import ML_API, azapi, compact, location, tagged, vm_size
from .training import environment

ENDPOINT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")
METRICS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"


def percentages(weights: dict[str, float]) -> dict[str, int]:
    """Weights as whole percentages summing to 100 (largest remainder), as Azure's traffic map takes them."""
    total = sum(weights.values())
    exact = {k: 100 * w / total for k, w in weights.items()}
    shares = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - shares[k], reverse=True)[: 100 - sum(shares.values())]:
        shares[k] += 1
    return shares


def _deployment(ctx: StackContext, t: ModelServing, field: str, v: Variant, endpoint: Resource,
                env_version: Resource, model_version: Resource) -> Resource:
    return azapi(ctx, f"deployment_{v.name.replace('-', '_')}", "workspaces/onlineEndpoints/deployments", v.name,
                 endpoint.attr("id"), {
                     "sku": {"name": "Default", "capacity": v.initial_instance_count},
                     "properties": {
                         "endpointComputeType": "Managed",
                         "model": model_version.attr("id"),
                         "environmentId": env_version.attr("id"),
                         "instanceType": vm_size(ctx, f"{field}.instance_type", v.instance_type),
                         "scaleSettings": {"scaleType": "Default"},
                         "requestSettings": {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 8},
                         "livenessProbe": {"initialDelay": "PT10S", "period": "PT10S"},
                         "readinessProbe": {"initialDelay": "PT10S", "period": "PT10S"},
                         "egressPublicNetworkAccess": "Disabled",
                         "appInsightsEnabled": True,
                         "dataCollector": {
                             "collections": {"model_inputs": {"dataCollectionMode": "Enabled"},
                                             "model_outputs": {"dataCollectionMode": "Enabled"}},
                             "samplingRate": t.data_capture_percent / 100,
                         },
                     },
                 }, location=location(ctx))


def render(t: ModelServing, ctx: StackContext) -> None:
    training, data = t.training, t.training.data
    rg = ctx.upstream_output(data, "resource_group_name")
    workspace_id = ctx.upstream_output(training, "workspace_id")
    name = f"{ctx.name}-{t.name}"
    if len(name) > 32:  # endpoint names take 32 characters: cut platform and namespace to fit
        name = f"{compact(ctx.platform)[:12]}-{compact(ctx.namespace.name)[:8]}-{t.name[:10]}"
    if not ENDPOINT_NAME.fullmatch(name):
        raise ctx.error("name", f"the online endpoint name {name!r} must be 3 to 32 letters, digits and hyphens "
                                f"(Azure ML); it is {len(name)} characters")

    tag = ctx.image_tag(t.image)
    image = interp("", ctx.upstream_output(training, "registry_login_server"), "/",
                   ctx.upstream_output(training, "registry_repository"), f"/{t.image.repository}:", tag)
    routes = {"livenessRoute": {"path": "/ping", "port": 8080}, "readinessRoute": {"path": "/ping", "port": 8080},
              "scoringRoute": {"path": "/invocations", "port": 8080}}
    env = environment(ctx, "serving", workspace_id, image, tag, {"inferenceConfig": routes})
    endpoint = azapi(ctx, "endpoint", "workspaces/onlineEndpoints", name, workspace_id, {
        "properties": {"authMode": "AADToken", "publicNetworkAccess": "Disabled"},
    }, location=location(ctx), identity=Block({
        "type": "UserAssigned", "identity_ids": [ctx.upstream_output(data, "workload_identity_id")]}))
    ctx.stack.add(*env, endpoint)

    variants = [(f"variants[{i}]", v) for i, v in enumerate(t.variants)] + ([("shadow", t.shadow)] if t.shadow else [])
    deployments = {}
    for field, v in variants:
        container = azapi(ctx, f"model_{v.name.replace('-', '_')}", "workspaces/models", f"{ctx.platform}-{v.name}",
                          workspace_id, {"properties": {"description": f"The {v.name} variant's model"}})
        version = azapi(ctx, f"model_{v.name.replace('-', '_')}_v1", "workspaces/models/versions", "1",
                        container.attr("id"), {"properties": {
                            "modelType": "custom_model",
                            "modelUri": f"azureml://datastores/models/paths/{v.model_key}",
                        }})
        deployment = _deployment(ctx, t, field, v, endpoint, env[1], version)
        deployments[v.name] = deployment
        ctx.stack.add(container, version, deployment)
    traffic: dict[str, Any] = {"traffic": percentages({v.name: v.weight for v in t.variants})}
    if t.shadow is not None:
        traffic["mirrorTraffic"] = {t.shadow.name: t.data_capture_percent}
    ctx.stack.add(Resource("azapi_update_resource", "traffic", {
        "type": f"Microsoft.MachineLearningServices/workspaces/onlineEndpoints@{ML_API}",
        "resource_id": endpoint.attr("id"),
        "body": {"properties": traffic},
    }, depends_on=tuple(deployments.values())))

    a = t.autoscaling
    for v in t.variants if a is not None else ():
        target = deployments[v.name].attr("id")

        def rule(operator: str, threshold: int, direction: str, target: Any = target) -> Block:
            return Block({
                "metric_trigger": Block({
                    "metric_name": "CpuUtilizationPercentage",
                    "metric_resource_id": target,
                    "metric_namespace": f"{METRICS}/deployments",
                    "time_grain": "PT1M", "statistic": "Average", "time_window": "PT5M",
                    "time_aggregation": "Average", "operator": operator, "threshold": threshold,
                }),
                "scale_action": Block({"direction": direction, "type": "ChangeCount", "value": 1,
                                       "cooldown": "PT5M"}),
            })

        ctx.stack.add(Resource("azurerm_monitor_autoscale_setting", v.name.replace("-", "_"), tagged(ctx, {
            "name": f"autoscale-{name}-{v.name}",
            "location": location(ctx),
            "resource_group_name": rg,
            "target_resource_id": target,
            "profile": Block({
                "name": "default",
                "capacity": Block({"default": v.initial_instance_count, "minimum": a.min_capacity,
                                   "maximum": a.max_capacity}),
                "rule": [rule("GreaterThan", 70, "Increase"), rule("LessThan", 25, "Decrease")],
            }),
        })))

    group = Resource("azurerm_monitor_action_group", "alerts", tagged(ctx, {
        "name": f"ag-{name}",
        "resource_group_name": rg,
        "short_name": compact(name)[:12],
        "email_receiver": [Block({"name": f"email-{i}", "email_address": e, "use_common_alert_schema": True})
                           for i, e in enumerate(ctx.namespace.alert_emails)],
    }))
    ctx.stack.add(group)
    for alert, description, criteria in (
        ("latency", f"p99 request latency above {t.alarms.p99_latency_ms} ms", {
            "metric_name": "RequestLatency_P99", "aggregation": "Average", "operator": "GreaterThan",
            "threshold": t.alarms.p99_latency_ms}),
        # A static Azure metric criterion cannot divide by the request count: any 5xx in the window alerts.
        ("errors", "requests answered with a 5xx", {
            "metric_name": "RequestsPerMinute", "aggregation": "Total", "operator": "GreaterThan", "threshold": 0,
            "dimension": Block({"name": "statusCodeClass", "operator": "Include", "values": ["5xx"]})}),
    ):
        ctx.stack.add(Resource("azurerm_monitor_metric_alert", alert, tagged(ctx, {
            "name": f"{name}-{alert}",
            "resource_group_name": rg,
            "scopes": [endpoint.attr("id")],
            "description": description,
            "severity": 2,
            "frequency": "PT1M",
            "window_size": "PT5M",
            "criteria": Block({"metric_namespace": METRICS, "skip_metric_validation": True, **criteria}),
            "action": Block({"action_group_id": group.attr("id")}),
        })))
    ctx.stack.add(
        Output("endpoint_id", endpoint.attr("id"), description="The managed online endpoint"),
        Output("endpoint_name", name, description="Its name"),
        Output("deployment_ids", {n: d.attr("id") for n, d in deployments.items()},
               description="Deployment of each variant"),
    )
