"""BatchInference on Azure: a scheduled Azure ML command job that scores the pinned version.

Azure ML's batch endpoints cannot run here: "Batch deployments aren't supported in workspaces with
customer-managed encryption keys (CMK)" (Microsoft Learn, "Network isolation in batch endpoints",
Limitations), and every workspace of this platform is encrypted with its key (workspace.py); a
private workspace's batch endpoints are private, invocable on a schedule only by a Standard Logic
App with private networking; and the schedule action `InvokeBatchEndpoint` has no documented body
in API 2024-10-01. So the batch runs the way training and ingestion already do: an Azure ML
schedule (workspaces/schedules, CreateJob) of the training workspace creates a command job that runs
`python -m serving score` (serving/batch_score.py: the server's own parsing, checks, model and
answer formats) in the serving image at the pinned tag, over

- the pinned registry version, mounted as an `mlflow_model` input (the asset id the pin records),
- the input prefix of the input zone, mounted through the zone's datastore (`uri_folder`),
- and `<output prefix><job name>/` of the output zone as its `uri_folder` output, uploaded by
  Azure ML when the job ends: unique per run.

It runs on a cluster of its own (0 to `instance_count` nodes, no public IP, no SSH, no local auth)
whose user-assigned identity holds a custom blob role narrowed by ABAC conditions to reading and
listing the input prefix and writing the output prefix, may pull images and read the registry's
models, and nothing else. A failed run (a file that could not be scored fails it: batch_score.py)
raises an alert on the workspace's `Failed Runs` of this job's experiment to the platform's alert
emails. With no version pinned for the variant there is no job: a stack note says so.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ..context import StackContext
from ..pins import Pin, path_for
from ..templates.batch import BatchInference
from ..terraform import Block, Output, Resource, interp
from .common import azapi, compact, grant, location, schedule_trigger, tagged, vm_size
from .feature_ingestion import DATA_ACTIONS, blob_condition
from .job_alerts import email_group, failed_runs_alert
from .registry import REGISTRY_READER, consumed_registry_id
from .serving import check_pin
from .training import environment


def experiment(ctx: StackContext, t: BatchInference) -> str:
    return f"{ctx.platform}-{t.name}"


def cluster_name(ctx: StackContext, t: BatchInference) -> str:
    """Compute names take 3 to 24 characters and must be unique in the workspace's region."""
    return f"bat-{compact(ctx.namespace.name)[:6]}-{compact(t.name)[:12]}"


def _validate(t: BatchInference, ctx: StackContext) -> None:
    if t.instance_count != 1:
        raise ctx.error("instance_count", f"the Azure batch job scores on one node (python -m serving score); "
                                          f"got {t.instance_count}: give 1, or split the input across templates")


def command(t: BatchInference) -> str:
    return ("python -m serving score --model ${{inputs.model}} --input ${{inputs.data}} "
            "--output ${{outputs.predictions}} "
            f"--content-type {shlex.quote(t.content_type)} --accept {shlex.quote(t.accept)} "
            f"--max-payload-mb {t.max_payload_mb}")


def job_definition(ctx: StackContext, t: BatchInference, pin: Pin, cluster: Resource, env: Resource) -> dict[str, Any]:
    """The command job (CommandJob of the Azure ML REST API) the schedule creates on each run."""
    return {
        "jobType": "Command",
        "displayName": f"{t.name}-v{pin.version}",
        "experimentName": experiment(ctx, t),
        "computeId": cluster.attr("id"),
        "environmentId": env.attr("id"),
        "command": command(t),
        "environmentVariables": {
            "PYTHONPATH": "/opt/program",  # the image's package, not Azure ML's working directory (training.py)
        },
        "identity": {"identityType": "Managed"},  # the cluster's identity reads and writes the zones
        "inputs": {
            "model": {"jobInputType": "mlflow_model", "uri": pin.artifact, "mode": "ReadOnlyMount"},
            "data": {"jobInputType": "uri_folder", "mode": "ReadOnlyMount",
                     "uri": f"azureml://datastores/{t.input_zone.replace('-', '_')}/paths/{t.input_prefix}"},
        },
        "outputs": {
            "predictions": {"jobOutputType": "uri_folder", "mode": "Upload",
                            "uri": f"azureml://datastores/{t.output_zone.replace('-', '_')}/paths/"
                                   f"{t.output_prefix}${{{{name}}}}/"},
        },
        "limits": {"jobLimitsType": "Command", "timeout": f"PT{t.max_runtime_minutes}M"},
    }


def render(t: BatchInference, ctx: StackContext) -> None:
    _validate(t, ctx)
    training, data = t.serving.training, t.serving.training.data
    pin = ctx.namespace.pins.get(ctx.platform, {}).get(t.variant)
    if pin is None:
        source = path_for(Path(ctx.namespace.source), ctx.namespace.name)
        ctx.stack.notes.append(f"{t.variant}: no model version pinned ({source}), so no batch job runs")
        return
    check_pin(ctx, "variant", t.variant, pin)
    trigger = schedule_trigger(ctx, "schedule", t.schedule)  # one Azure ML cannot take fails before any resource
    rg = ctx.upstream_output(data, "resource_group_name")
    lake = ctx.upstream_output(data, "storage_account_id")
    containers = ctx.upstream_output(data, "container_ids")
    workspace = ctx.upstream_output(training, "workspace_id")
    address = t.name.replace("-", "_")

    identity = Resource("azurerm_user_assigned_identity", address, tagged(ctx, {
        "name": f"id-{ctx.name}-{t.name}", "resource_group_name": rg, "location": location(ctx)}))
    principal = identity.attr("principal_id")
    role = Resource("azurerm_role_definition", f"{address}_blobs", {
        "name": f"{ctx.name} {t.name} scoring (blobs)",
        "scope": lake,
        "description": "Read, write and add blobs, no delete and no container management; each assignment "
                       "narrows it to its paths with a condition",
        "permissions": Block({"actions": [], "data_actions": list(DATA_ACTIONS)}),
        "assignable_scopes": [lake],
    })
    role_id = role.attr("role_definition_resource_id")
    assignments = []
    for zone in sorted({t.input_zone, t.output_zone}):  # one container when both prefixes share a zone
        reads = [t.input_prefix] if zone == t.input_zone else []
        writes = [t.output_prefix] if zone == t.output_zone else []
        assignments.append(Resource("azurerm_role_assignment", f"{address}_{zone.replace('-', '_')}", {
            "scope": containers[zone], "role_definition_id": role_id, "principal_id": principal,
            "principal_type": "ServicePrincipal", "skip_service_principal_aad_check": True,
            "condition": blob_condition(reads=reads, lists=reads, writes=writes), "condition_version": "2.0"}))
    cluster = Resource("azurerm_machine_learning_compute_cluster", address, tagged(ctx, {
        "name": cluster_name(ctx, t),
        "location": location(ctx),
        "machine_learning_workspace_id": workspace,
        "vm_priority": "Dedicated",
        "vm_size": vm_size(ctx, "instance_type", t.instance_type),
        "scale_settings": Block({"min_node_count": 0, "max_node_count": t.instance_count,
                                 "scale_down_nodes_after_idle_duration": "PT5M"}),
        "identity": Block({"type": "UserAssigned", "identity_ids": [identity.attr("id")]}),
        "local_auth_enabled": False,
        "node_public_ip_enabled": False,
        "ssh_public_access_enabled": False,
    }))
    image = interp("", ctx.upstream_output(training, "registry_login_server"), "/",
                   ctx.upstream_output(training, "registry_repository"),
                   f"/{t.serving.image.repository}:{pin.image}")
    env = environment(ctx, f"{address}_scoring", workspace, image, pin.image)
    job = job_definition(ctx, t, pin, cluster, env[1])
    schedule = azapi(ctx, f"{address}_schedule", "workspaces/schedules", f"{ctx.name}-{t.name}", workspace, {
        "properties": {
            "displayName": f"Score {t.variant} v{pin.version} ({ctx.namespace.name})",
            "isEnabled": True,
            "trigger": trigger,
            "action": {"actionType": "CreateJob", "jobDefinition": job},
        }})
    group = email_group(ctx, address, f"ag-{ctx.name}-{t.name}", f"{t.name}{ctx.namespace.name}", rg)
    alert = failed_runs_alert(ctx, f"{address}_failed_runs", f"{ctx.name}-{t.name}-failed-runs", workspace, rg, group,
                              experiment(ctx, t), "A batch scoring job failed: its log and <file>.error outputs "
                                                  "name what was not scored")
    ctx.stack.add(identity, role, *assignments,
                  grant(f"{address}_pull", ctx.upstream_output(data, "container_registry_id"), "AcrPull", principal),
                  grant(f"{address}_models", consumed_registry_id(ctx), REGISTRY_READER, principal),
                  cluster, *env, schedule, group, alert,
                  Output("job_experiment", experiment(ctx, t), description="Experiment of the scheduled scoring jobs"),
                  Output("output_uri", f"azureml://datastores/{t.output_zone.replace('-', '_')}/paths/"
                                       f"{t.output_prefix}", description="Each run writes <this><job name>/"))


__all__ = ["command", "job_definition", "render"]
