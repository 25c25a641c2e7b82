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
from ..terraform import Block, Lifecycle, Output, Resource, interp
from .alerts import METRICS, alerts
from .common import ML_API, azapi, compact, location, vm_size
from .scaling import autoscale
from .training import environment

__all__ = ["METRICS", "percentages", "render"]

ENDPOINT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")
# "Traffic values need to sum to utmost 50" (OnlineEndpointProperties.mirrorTraffic, 2024-10-01; review A13).
MAX_MIRROR_PERCENT = 50
# Where a managed online deployment mounts its model: "a model registered with the name foo and
# version 1 would be located at ... /var/azureml-app/azureml-models/foo/1"
# (learn.microsoft.com/azure/machine-learning/how-to-deploy-custom-container), holding the
# registered directory by its name: the same page's TF Serving example registers `./half_plus_two`
# as tfserving-mounted:1 and serves MODEL_BASE_PATH=/var/azureml-app/azureml-models/tfserving-mounted/1
# with MODEL_NAME=half_plus_two.
MODEL_MOUNT = "/var/azureml-app/azureml-models"
MODEL_VERSION = "1"


def percentages(weights: dict[str, float]) -> dict[str, int]:
    """Weights as whole percentages summing to 100 (largest remainder), as Azure's traffic map takes them."""
    total = sum(weights.values())
    exact = {k: 100 * w / total for k, w in weights.items()}
    shares = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - shares[k], reverse=True)[: 100 - sum(shares.values())]:
        shares[k] += 1
    return shares


def model_directory(v: Variant) -> str:
    """The variant's MLflow model directory in the models zone: its key without `.tar.gz`."""
    return v.model_key.removesuffix(".tar.gz")


def _model(ctx: StackContext, v: Variant, workspace_id: object) -> list[Resource]:
    """The variant's model: an MLflow model directory (what the serving image loads), not a
    SageMaker tarball. Versions are immutable: a new one is created before the old one goes."""
    name = f"{ctx.platform}-{v.name}"
    container = azapi(ctx, f"model_{v.name.replace('-', '_')}", "workspaces/models", name, workspace_id,
                      {"properties": {"description": f"The {v.name} variant's model"}})
    version = azapi(ctx, f"model_{v.name.replace('-', '_')}_v1", "workspaces/models/versions", MODEL_VERSION,
                    container.attr("id"), {"properties": {
                        "modelType": "mlflow_model",
                        "modelUri": f"azureml://datastores/models/paths/{model_directory(v)}",
                    }}, lifecycle=Lifecycle(create_before_destroy=True))
    return [container, version]


def _deployment(ctx: StackContext, t: ModelServing, field: str, v: Variant, endpoint: Resource,
                env_version: Resource, model_version: Resource) -> Resource:
    model_dir = model_directory(v).rsplit("/", 1)[-1]
    # Payload logging of this container's requests and responses needs no code in the container:
    # "use the names request and response" (how-to-collect-production-data; review B9). The sampling
    # rate is a property of each collection: DataCollector has none (review A5).
    rate = t.data_capture_percent / 100
    collection = {"dataCollectionMode": "Enabled", "samplingRate": rate}
    return azapi(ctx, f"deployment_{v.name.replace('-', '_')}", "workspaces/onlineEndpoints/deployments", v.name,
                 endpoint.attr("id"), {
                     "sku": {"name": "Default", "capacity": v.initial_instance_count},
                     "properties": {
                         "endpointComputeType": "Managed",
                         "model": model_version.attr("id"),
                         "environmentId": env_version.attr("id"),
                         # The serving image loads MODEL_URI (default /opt/ml/model, SageMaker's).
                         "environmentVariables": {
                             "MODEL_URI": f"{MODEL_MOUNT}/{ctx.platform}-{v.name}/{MODEL_VERSION}/{model_dir}"},
                         "instanceType": vm_size(ctx, f"{field}.instance_type", v.instance_type),
                         "scaleSettings": {"scaleType": "Default"},
                         "requestSettings": {"requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 8},
                         "livenessProbe": {"initialDelay": "PT10S", "period": "PT10S"},
                         "readinessProbe": {"initialDelay": "PT10S", "period": "PT10S"},
                         "appInsightsEnabled": True,
                         "dataCollector": {"collections": {"request": collection, "response": collection}},
                     },
                 }, location=location(ctx),
                 # The instance count belongs to autoscale once the deployment exists: the next apply must
                 # not set it back (review B10).
                 lifecycle=Lifecycle(ignore_changes=("body.sku.capacity",)))


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
    if t.shadow is not None and t.data_capture_percent > MAX_MIRROR_PERCENT:
        raise ctx.error("data_capture_percent", f"the shadow variant gets data_capture_percent of the traffic as "
                                                f"mirror traffic, which Azure ML caps at {MAX_MIRROR_PERCENT}%; "
                                                f"got {t.data_capture_percent}")

    tag = ctx.image_tag(t.image)
    image = interp("", ctx.upstream_output(training, "registry_login_server"), "/",
                   ctx.upstream_output(training, "registry_repository"), f"/{t.image.repository}:", tag)
    routes = {"livenessRoute": {"path": "/ping", "port": 8080}, "readinessRoute": {"path": "/ping", "port": 8080},
              "scoringRoute": {"path": "/invocations", "port": 8080}}
    env = environment(ctx, "serving", workspace_id, image, tag, {"inferenceConfig": routes})
    endpoint = azapi(ctx, "endpoint", "workspaces/onlineEndpoints", name, workspace_id, {
        "properties": {"authMode": "AADToken", "publicNetworkAccess": "Disabled"},
    }, location=location(ctx), identity=Block({
        "type": "UserAssigned", "identity_ids": [ctx.upstream_output(data, "endpoint_identity_id")]}))
    ctx.stack.add(*env, endpoint)

    variants = [(f"variants[{i}]", v) for i, v in enumerate(t.variants)] + ([("shadow", t.shadow)] if t.shadow else [])
    deployments = {}
    for field, v in variants:
        container, version = _model(ctx, v, workspace_id)
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
    ctx.stack.add(*autoscale(t, ctx, name, rg, deployments), *alerts(t, ctx, name, rg, endpoint))
    ctx.stack.add(
        Output("endpoint_id", endpoint.attr("id"), description="The managed online endpoint"),
        Output("endpoint_name", name, description="Its name"),
        Output("deployment_ids", {n: d.attr("id") for n, d in deployments.items()},
               description="Deployment of each variant"),
    )
