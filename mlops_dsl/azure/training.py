"""TrainingInfrastructure on Azure: workspace, compute that scales to zero, and the scheduled
training job, which runs the same training image as SageMaker does, from the data stack's
container registry (container_registry.py).

The job runs `python -m training train --config <this platform's configuration>`: the document
the AWS pipeline reads too (training_config.py), rendered from the blueprint's dataset, gate and
search, so the job trains this platform's columns and its gates decide registration (in the
workspace's MLflow registry), never the example configuration inside the image (review A9).
"""

from __future__ import annotations

import json
import shlex

# The configuration document is cloud-agnostic; it lives with the AWS renderer, which came first.
from ..aws.training_config import document
from ..context import StackContext
from ..templates.training import TrainingInfrastructure
from ..terraform import Block, Expr, Lifecycle, Output, Resource, interp
from .common import azapi, grant, location, schedule_trigger, tagged, vm_size
from .notebooks import render_notebooks
from .registry import consumed_registry_id, render_registry
from .workspace import application_insights, outbound_rule, workspace

CLUSTER = "train-cluster"


def environment(ctx: StackContext, name: str, workspace_id: object, image: object, tag: Expr,
                extra: dict[str, object] | None = None) -> list[Resource]:
    """An Azure ML environment whose versions are the image's content-hash tags.

    Versions are immutable ("Environment ... is already registered and cannot be changed"): a new
    tag is a new version, created before the old one goes, so a deployment is never left without
    one (review B13).
    """
    container = azapi(ctx, f"{name}_environment", "workspaces/environments", name, workspace_id,
                      {"properties": {"description": f"The {name} image"}})
    version = azapi(ctx, f"{name}_environment_version", "workspaces/environments/versions", tag,
                    container.attr("id"), {"properties": {"image": image, "osType": "Linux", **(extra or {})}},
                    lifecycle=Lifecycle(create_before_destroy=True))
    return [container, version]


def environment_versions(ctx: StackContext, name: str, workspace_id: object, images: dict[str, object],
                         extra: dict[str, object] | None = None) -> tuple[list[Resource], dict[str, Resource]]:
    """One environment and a version per image tag (the serving images the pins name): the resources
    to declare, and the version of each tag. Nothing when no tag is given."""
    if not images:
        return [], {}
    container = azapi(ctx, f"{name}_environment", "workspaces/environments", name, workspace_id,
                      {"properties": {"description": f"The {name} image"}})
    versions = {tag: azapi(ctx, f"{name}_environment_{tag}", "workspaces/environments/versions", tag,
                           container.attr("id"), {"properties": {"image": image, "osType": "Linux", **(extra or {})}},
                           lifecycle=Lifecycle(create_before_destroy=True))
                for tag, image in images.items()}
    return [container, *versions.values()], versions


def render(t: TrainingInfrastructure, ctx: StackContext) -> None:
    data = t.data
    if t.schedule is not None and t.dataset is None:
        raise ctx.error("dataset", "the scheduled training job trains on this platform's configuration, "
                                   "rendered from the dataset (target, id_column, numeric and categorical "
                                   "columns): set dataset=Dataset(...)")

    registry_id = ctx.upstream_output(data, "container_registry_id")
    login_server = ctx.upstream_output(data, "registry_login_server")

    insights = application_insights(ctx, data, "training")
    # The managed network reaches the lake's dfs endpoint (the ADLS Gen2 datastores) and the feature
    # store; the default storage, vault and registry get their rules automatically (review B7).
    outbound = {"lake-dfs": outbound_rule(ctx.upstream_output(data, "storage_account_id"), "dfs")}
    # The online deployments of this workspace pull their models from the platform's private
    # registry (how-to-registry-network-isolation): created here in the registry's own namespace.
    models = render_registry(ctx, data) if ctx.namespace.owns_registry else None
    outbound["model-registry"] = outbound_rule(models.attr("id") if models else consumed_registry_id(ctx),
                                               "amlregistry")
    if t.features is not None:
        outbound["feature-store"] = outbound_rule(ctx.upstream_output(t.features, "feature_store_id"),
                                                  "amlworkspace")
        if any(g.online for g in t.features.groups):
            # The online deployments of this workspace that read online features reach the online
            # store's Redis (serving/online_store_azureml.py) through the managed network.
            outbound["online-store"] = outbound_rule(ctx.upstream_output(t.features, "online_store_id"),
                                                     "redisCache")
    resources = workspace(ctx, data, "training", "Default", insights, {
        "containerRegistry": registry_id,
        # The registry is private: images are built on the workspace's own compute.
        "imageBuildCompute": CLUSTER,
    }, "AllowOnlyApprovedOutbound", outbound)
    ml = resources[0]
    ctx.stack.add(insights, *resources,
                  grant("endpoint_metrics", ml.attr("id"), "AzureML Metrics Writer (preview)",
                        ctx.upstream_output(data, "endpoint_identity_principal_id")))
    workload = ctx.upstream_output(data, "workload_identity_id")
    cluster = Resource("azurerm_machine_learning_compute_cluster", "training", tagged(ctx, {
        "name": CLUSTER,
        "location": location(ctx),
        "machine_learning_workspace_id": ml.attr("id"),
        "vm_size": vm_size(ctx, "instance_type", t.instance_type),
        "vm_priority": "LowPriority" if t.spot else "Dedicated",
        "scale_settings": Block({
            "min_node_count": 0,  # nothing runs, nothing is paid for
            "max_node_count": max(t.instance_count, 1),
            "scale_down_nodes_after_idle_duration": "PT10M",
        }),
        "identity": Block({"type": "UserAssigned", "identity_ids": [workload]}),
        "local_auth_enabled": False,
        "node_public_ip_enabled": False,
        "ssh_public_access_enabled": False,
    }))
    ctx.stack.add(cluster)
    render_notebooks(ctx, ml.attr("id"))  # one personal compute instance per namespaces.yaml notebook user
    containers = ctx.upstream_output(data, "container_ids")
    for zone in data.zones:
        ctx.stack.add(Resource("azurerm_machine_learning_datastore_datalake_gen2", zone.replace("-", "_"), {
            "name": zone.replace("-", "_"),
            "workspace_id": ml.attr("id"),
            "storage_container_id": containers[zone],
            "service_data_identity": "WorkspaceUserAssignedIdentity",
        }))

    repository = f"{ctx.platform}-{ctx.namespace.name}"
    tag = ctx.image_tag(t.image)
    training_image = interp("", login_server, f"/{repository}/{t.image.repository}:", tag)
    env = environment(ctx, "training", ml.attr("id"), training_image, tag)
    ctx.stack.add(*env)
    data_zone = "processed" if "processed" in data.zones else data.zones[0]
    if t.schedule is not None:
        config = json.dumps(document(t, ctx.platform), sort_keys=True, separators=(",", ":"))
        command = (f"printf '%s' {shlex.quote(config)} > config.json && "
                   "python -m training train --config config.json --data ${{inputs.data}}/train.csv")
        ctx.stack.add(azapi(ctx, "schedule", "workspaces/schedules", f"{ctx.name}-training", ml.attr("id"), {
            "properties": {
                "displayName": f"Train {ctx.platform} ({ctx.namespace.name})",
                "isEnabled": True,
                "trigger": schedule_trigger(ctx, "schedule", t.schedule),
                "action": {
                    "actionType": "CreateJob",
                    "jobDefinition": {
                        "jobType": "Command",
                        "displayName": f"{ctx.platform}-training",
                        "experimentName": ctx.platform,
                        "computeId": cluster.attr("id"),
                        "environmentId": env[1].attr("id"),
                        "command": command,
                        # Azure ML runs the command in its own working directory, not the image's
                        # WORKDIR: the package is found through PYTHONPATH (review B11).
                        "environmentVariables": {"PYTHONPATH": "/opt/program"},
                        "identity": {"identityType": "Managed"},
                        "inputs": {"data": {"jobInputType": "uri_folder",
                                            "uri": f"azureml://datastores/{data_zone}/paths/training/"}},
                    },
                },
            },
        }))
    ctx.stack.add(
        Output("workspace_id", ml.attr("id"), description="The training workspace"),
        Output("registry_login_server", login_server, description="Container registry host (the data stack's)"),
        Output("registry_repository", repository, description="Repository prefix of this namespace's images"),
        Output("cluster_id", cluster.attr("id"), description="Training compute (scales to zero)"),
    )
