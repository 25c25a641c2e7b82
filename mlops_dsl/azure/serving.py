"""ModelServing on Azure: a managed online endpoint with one deployment per variant.

azurerm 4.55 has no online endpoint, so endpoint, deployments and the traffic map are azapi
resources. Each pinned variant is a deployment of its registry version; the traffic map is moved
by the rollout step (rollout.py), never by Terraform, so a new version is smoke-tested and shifted
in steps under the alerts, and put back when anything fails.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from ..azureml.naming import ASSET_ID, registry_name
from ..context import StackContext
from ..pins import Pin, path_for
from ..serving_pins import Pinned, pinned
from ..templates.serving import ModelServing
from ..terraform import Block, Lifecycle, Output, Resource, interp
from .alerts import METRICS, alerts
from .common import azapi, compact, location, vm_size
from .dashboard import render_dashboard
from .registry import registry_reader
from .rollout import render_rollout
from .scaling import autoscale
from .serving_api import render_api
from .serving_online_features import online_features_environment
from .training import environment_versions

__all__ = ["METRICS", "check_pin", "deployment_name", "percentages", "render"]

ENDPOINT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")
# "Traffic values need to sum to utmost 50" (OnlineEndpointProperties.mirrorTraffic, 2024-10-01; review A13).
MAX_MIRROR_PERCENT = 50
def percentages(weights: dict[str, float]) -> dict[str, int]:
    """Weights as whole percentages summing to 100 (largest remainder), as Azure's traffic map takes them."""
    total = sum(weights.values())
    exact = {k: 100 * w / total for k, w in weights.items()}
    shares = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - shares[k], reverse=True)[: 100 - sum(shares.values())]:
        shares[k] += 1
    return shares


def deployment_name(p: Pinned) -> str:
    """`<variant>-v<version>-<image>`: a new version or image is a new deployment, rolled out beside the
    old one. Azure ML: 3 to 32 letters, digits and hyphens, starting with a letter."""
    suffix = f"-v{p.pin.version}-{p.pin.image[:6]}"
    return f"{p.variant.name[:32 - len(suffix)].rstrip('-')}{suffix}"


def _deployment(ctx: StackContext, t: ModelServing, p: Pinned, endpoint: Resource, env_version: Resource) -> Resource:
    v = p.variant
    # Payload logging of this container's requests and responses needs no code in the container:
    # "use the names request and response" (how-to-collect-production-data; review B9). The sampling
    # rate is a property of each collection: DataCollector has none (review A5).
    rate = t.data_capture_percent / 100
    collection = {"dataCollectionMode": "Enabled", "samplingRate": rate}
    environment = online_features_environment(t, ctx, p)  # serving_online_features.py
    return azapi(ctx, f"deployment_{v.name.replace('-', '_')}", "workspaces/onlineEndpoints/deployments",
                 deployment_name(p), endpoint.attr("id"), {
                     "sku": {"name": "Default", "capacity": v.initial_instance_count},
                     "properties": {
                         "endpointComputeType": "Managed",
                         # The pinned version in the platform's registry (mlops_dsl/azure/registry.py); Azure
                         # ML mounts it at AZUREML_MODEL_DIR, where the serving image looks for it.
                         "model": p.pin.artifact,
                         "environmentId": env_version.attr("id"),
                         "instanceType": vm_size(ctx, f"{p.field}.instance_type", v.instance_type),
                         "scaleSettings": {"scaleType": "Default"},
                         "requestSettings": {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 8},
                         "livenessProbe": {"initialDelay": "PT10S", "period": "PT10S"},
                         "readinessProbe": {"initialDelay": "PT10S", "period": "PT10S"},
                         "appInsightsEnabled": True,
                         "dataCollector": {"collections": {"request": collection, "response": collection}},
                         **({"environmentVariables": environment} if environment else {}),
                     },
                 }, location=location(ctx),
                 # A new version or image is a new deployment, created before the old one goes (its
                 # destroy waits for the traffic to move); the instance count belongs to autoscale once
                 # the deployment exists: the next apply must not set it back (review B10).
                 lifecycle=Lifecycle(create_before_destroy=True, ignore_changes=("body.sku.capacity",)))


def check_pin(ctx: StackContext, field: str, variant: str, pin: Pin) -> None:
    """An Azure pin names a version of this namespace's registry; anything else is the pin file's mistake."""
    match = ASSET_ID.fullmatch(pin.artifact)
    expected = registry_name(ctx.platform, ctx.namespace.registry)
    if match is None or match["registry"] != expected or int(match["version"]) != pin.version:
        source = path_for(Path(ctx.namespace.source), ctx.namespace.name)
        raise ctx.error(field, f"{source}: {ctx.platform}.{variant} names {pin.artifact!r}; an "
                               f"Azure pin names azureml://registries/{expected}/models/<model>/versions/"
                               f"{pin.version} (mlops models promote writes it)")


def _check_modes(t: ModelServing, ctx: StackContext) -> None:
    """Azure ML's managed online endpoints have no serverless mode (its serverless API endpoints serve
    catalog models, not ours) and no multi-model deployment (one model per deployment): say so."""
    for i, v in enumerate(t.variants):
        if v.serverless is not None:
            raise ctx.error(f"variants[{i}].serverless", "Azure ML has no serverless hosting for this platform's "
                                                         "models (a managed online deployment runs on instances); "
                                                         "remove serverless= or serve this platform on AWS")
        if v.multi_model is not None:
            raise ctx.error(f"variants[{i}].multi_model", "an Azure ML online deployment serves one model; declare "
                                                          "one variant per model instead of multi_model=")


def render(t: ModelServing, ctx: StackContext) -> None:
    _check_modes(t, ctx)
    training, data = t.training, t.training.data
    rg = ctx.upstream_output(data, "resource_group_name")
    workspace_id = ctx.upstream_output(training, "workspace_id")
    name = f"{ctx.name}-{t.name}"
    if len(name) > 32:  # endpoint names take 32 characters: cut platform and namespace to fit
        name = f"{compact(ctx.platform)[:12]}-{compact(ctx.namespace.name)[:8]}-{t.name[:10]}"
    if not ENDPOINT_NAME.fullmatch(name):
        raise ctx.error("name", f"the online endpoint name {name!r} must be 3 to 32 letters, digits and hyphens "
                                f"(Azure ML); it is {len(name)} characters")
    if t.shadow is not None and t.data_capture_percent > MAX_MIRROR_PERCENT:
        raise ctx.error("data_capture_percent", f"the shadow variant gets data_capture_percent of the traffic as "
                                                f"mirror traffic, which Azure ML caps at {MAX_MIRROR_PERCENT}%; "
                                                f"got {t.data_capture_percent}")

    routes = {"livenessRoute": {"path": "/ping", "port": 8080}, "readinessRoute": {"path": "/ping", "port": 8080},
              "scoringRoute": {"path": "/invocations", "port": 8080}}
    images = sorted({p.image for p in ctx.namespace.pins.get(ctx.platform, {}).values()})
    env_resources, env_versions = environment_versions(ctx, "serving", workspace_id, {
        pin_tag: interp("", ctx.upstream_output(training, "registry_login_server"), "/",
                        ctx.upstream_output(training, "registry_repository"), f"/{t.image.repository}:{pin_tag}")
        for pin_tag in images}, {"inferenceConfig": routes})
    endpoint = azapi(ctx, "endpoint", "workspaces/onlineEndpoints", name, workspace_id, {
        "properties": {"authMode": "AADToken", "publicNetworkAccess": "Disabled"},
    }, location=location(ctx), identity=Block({
        "type": "UserAssigned", "identity_ids": [ctx.upstream_output(data, "endpoint_identity_id")]}))
    ctx.stack.add(*env_resources, endpoint)

    production, shadow = pinned(t, ctx)
    reader = registry_reader(ctx, data) if production else None
    deployments: dict[str, Resource] = {}
    for p in [*production, *([shadow] if shadow else [])]:
        check_pin(ctx, p.field, p.variant.name, p.pin)
        deployment = _deployment(ctx, t, p, endpoint, env_versions[p.pin.image])
        deployment.depends_on = (*deployment.depends_on, *((reader,) if reader else ()))
        deployments[p.variant.name] = deployment
        ctx.stack.add(deployment)
    alert_resources = alerts(t, ctx, name, rg, endpoint)
    if production:
        weights = percentages({p.variant.name: p.variant.weight for p in production})
        render_rollout(t, ctx, endpoint, deployments,
                       {deployment_name(p): weights[p.variant.name] for p in production},
                       {deployment_name(shadow): t.data_capture_percent} if shadow is not None else {},
                       [a for a in alert_resources if a.type == "azurerm_monitor_metric_alert"])
    served = replace(t, variants=[p.variant for p in production]) if production else None
    ctx.stack.add(*(autoscale(served, ctx, name, rg, deployments) if served else ()), *alert_resources)
    render_dashboard(t, ctx, name, rg, endpoint, deployments, production, shadow)
    render_api(t, ctx, endpoint)  # ModelServing(api=...): serving_api.py
    ctx.stack.add(
        Output("endpoint_id", endpoint.attr("id"), description="The managed online endpoint"),
        Output("endpoint_name", name, description="Its name"),
        Output("deployment_ids", {n: d.attr("id") for n, d in deployments.items()},
               description="Deployment of each variant"),
    )
