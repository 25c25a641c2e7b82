"""The ingestion of raw data into each feature group that declares `Ingestion`, on Azure.

The job is the AWS one's run (training/ingest_run.py: the ledger, the row checks, the quarantine),
on the lake's Blob endpoint: `python -m training.ingest_azure` in the training image's `azureml`
stage, as an Azure ML command job of the feature store workspace on a compute cluster of its own
(scales to zero) whose user-assigned identity is the job's. It writes the checked rows as Parquet
under `featuresets/<group>/source/` of the offline zone, the source path the group's feature set
specification reads; the feature set's materialization (features.py) then moves them into the
offline and online stores. The spec travels inline in the command (it holds no secret).

What starts it:
- the schedule (`Ingestion.schedule`): an Azure ML schedule (workspaces/schedules, CreateJob) of
  the same command job;
- new data (`Ingestion.on_new_data`): Azure ML cannot be an Event Grid handler. Of the documented
  ways, a Storage queue drained by the job on a short schedule would start (and pay for) a compute
  node every few minutes to find the queue empty; a Logic App calling the Azure ML jobs REST API
  with its managed identity ("Run batch endpoints from Event Grid events in storage") starts a job
  only when data arrives. So: an Event Grid system topic on the lake storage account (one per
  account: Azure allows one system topic per source), per group a subscription on
  `Microsoft.Storage.BlobCreated` whose subject begins with the group's raw prefix, only for the
  calls that commit a whole blob (`data.api`: PutBlob, PutBlockList, CopyBlob, and FlushWithClose
  on the Data Lake endpoint, whose CreateFile fires before any byte is written), delivered in
  batches to a Consumption Logic App's HTTP trigger; the workflow answers Event Grid's validation
  handshake and otherwise PUTs the command job (`jobs/ingest-<group>-<run id>`) with the
  workflow's user-assigned identity, which may create jobs in the feature store and nothing else.
  A batch starts one job; two deliveries close together (or a delivery and the schedule) may start
  two, and only one works: the run takes a lease on `ingestion-ledger/<group>/run.lock` and a run
  that finds it held ends at once, while the holder lists the prefix again until a listing brings
  nothing new before it lets go (training/run_lock.py). A lost event (Event Grid retries for a
  day) waits for the schedule, since every run lists the prefix against the ledger.

Access, one identity per job: Azure RBAC conditions on the blob path (ABAC, condition version
2.0) keep the ingestion role (a custom role with the blob read, write and add data actions only:
no container management, no delete) to reading and listing the raw prefix, writing
`quarantine/<group>/` of the raw zone, and reading, listing and writing `ingestion-ledger/<group>/`
and the source path in the offline zone. It may publish metrics on the feature store (Monitoring
Metrics Publisher: the job's RecordsWritten, QuarantinedRows and FailedObjects custom metrics)
and pull images from the platform's container registry (AcrPull on it; the data stack's, reached
through the feature store's managed-network rule `container-registry`, features.py).

Alerts, to a features action group (the namespace's alert e-mails): quarantined rows (the custom
metric, any in an hour), failed runs of the feature store workspace (Azure ML's `Failed Runs`
metric of the ingestion experiment) and failed Logic App runs (`RunsFailed`: the workflow answers
500 and ends Failed when Azure ML refuses the job, so Event Grid retries the delivery).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

from ..context import StackContext
from ..templates.features import FeatureGroup, FeatureStore, Ingestion
from ..terraform import Block, Expr, Output, Resource, Value, interp, jsonencode
from .common import ML_API, azapi, location, schedule_trigger, tagged, vm_size
from .job_alerts import email_group, failed_runs_alert

LEDGER_PREFIX = "ingestion-ledger"
DEFAULT_CONCURRENCY = Ingestion.__dataclass_fields__["concurrency"].default
QUARANTINE_PREFIX = "quarantine"
METRICS_NAMESPACE = "MLOps/Ingestion"  # training/ingest_azure.py sends its counts here
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
DATA_ACTIONS = (f"{BLOBS}/read", f"{BLOBS}/write", f"{BLOBS}/add/action")
# The Blob and Data Lake calls that leave a whole blob behind (Azure Storage events: "to ensure
# that the BlobCreated event is triggered only when a block blob is completely committed, filter
# the event for the CopyBlob, PutBlob, PutBlockList or FlushWithClose REST API calls").
COMMITTING_APIS = ["CopyBlob", "PutBlob", "PutBlockList", "FlushWithClose"]
JOBS_ACTIONS = ["Microsoft.MachineLearningServices/workspaces/read",
                "Microsoft.MachineLearningServices/workspaces/jobs/read",
                "Microsoft.MachineLearningServices/workspaces/jobs/write",
                "Microsoft.MachineLearningServices/workspaces/computes/read",
                "Microsoft.MachineLearningServices/workspaces/environments/read",
                "Microsoft.MachineLearningServices/workspaces/environments/versions/read"]


def experiment(ctx: StackContext) -> str:
    """The Azure ML experiment of the ingestion jobs: what the failed-runs alert filters on."""
    return f"{ctx.platform}-ingestion"


def source_prefix(g: FeatureGroup) -> str:
    """Where the group's checked rows land in the offline zone: the feature set's source path."""
    return f"featuresets/{g.name}/source/"


def cluster_name(ctx: StackContext, g: FeatureGroup) -> str:
    """AmlCompute names are 2 to 16 characters: `ing-` and 8 hex digits of platform, namespace, group."""
    return "ing-" + hashlib.blake2b(f"{ctx.name}/{g.name}".encode(), digest_size=4).hexdigest()


def spec_document(t: FeatureStore, g: FeatureGroup) -> dict[str, Any]:
    """What `python -m training.ingest_azure` reads (training/ingest.py IngestionSpec); containers
    are named after their zones (storage.py)."""
    assert g.ingestion is not None
    return {
        "feature_group": g.name,
        "record_id": g.record_id,
        "event_time": g.event_time,
        "features": [{"name": f.name, "type": f.type, "column": f.column} for f in g.features],
        "raw_bucket": t.raw_zone,
        "prefix": g.ingestion.prefix,
        "format": g.ingestion.format,
        "quarantine_prefix": f"{QUARANTINE_PREFIX}/{g.name}/",
        "ledger_bucket": t.offline_zone,
        "ledger_prefix": f"{LEDGER_PREFIX}/{g.name}/",
        "output_bucket": t.offline_zone,
        "output_prefix": source_prefix(g),
        "concurrency": g.ingestion.concurrency,
    }


def trigger(ctx: StackContext, field: str, expression: str) -> dict[str, Any]:
    """The schedule's trigger; a recurrence's frequency in the API's case (Minute, Hour, Day)."""
    out = schedule_trigger(ctx, field, expression)
    if out["triggerType"] == "Recurrence":
        out["frequency"] = out["frequency"].capitalize()
    return out


def validate(t: FeatureStore, ctx: StackContext) -> None:
    """Ingestion fields Azure cannot honour, as blueprint errors naming the field."""
    for index, g in enumerate(t.groups):
        ing = g.ingestion
        if ing is None:
            continue
        field = f"groups[{index}].ingestion"
        vm_size(ctx, f"{field}.instance_type", ing.instance_type)
        if ing.concurrency != DEFAULT_CONCURRENCY:
            raise ctx.error(f"{field}.concurrency", f"{ing.concurrency}: on Azure each object's rows are written as "
                                                    f"one Parquet file, there are no PutRecord calls to run at once; "
                                                    f"leave the default")
        # The default stage is the SageMaker image, without azure-storage-blob and azure-identity
        # (training/requirements-azureml.txt): `python -m training.ingest_azure` would not start.
        if ing.image.target != "azureml":
            given = "no target (the Dockerfile's last stage, the SageMaker image)" if ing.image.target is None \
                else f"target {ing.image.target!r}"
            raise ctx.error(f"{field}.image", f"{given}: the Azure ML job runs the image's azureml stage, which "
                                              f"has the Azure SDKs: give Image({ing.image.repository!r}, "
                                              f"target='azureml')")
        if ing.schedule is not None:
            schedule_trigger(ctx, f"{field}.schedule", ing.schedule)


def blob_condition(reads: list[str], lists: list[str], writes: list[str]) -> str:
    """An ABAC condition (version 2.0) over DATA_ACTIONS (a custom role of read, write and add): each allowed only
    under the given path prefixes; a list of blobs only for those prefixes."""
    def starts(attribute: str, prefixes: list[str]) -> str:
        if not prefixes:
            return "false"  # the action is not allowed at all under this assignment
        return " OR ".join(f"{attribute} StringStartsWith '{p}'" for p in prefixes)

    path = f"@Resource[{BLOBS}:path]"
    prefix = f"@Request[{BLOBS}:prefix]"
    return " AND ".join([
        f"((!(ActionMatches{{'{BLOBS}/read'}} AND NOT SubOperationMatches{{'Blob.List'}})) OR ({starts(path, reads)}))",
        f"((!(ActionMatches{{'{BLOBS}/read'}} AND SubOperationMatches{{'Blob.List'}})) OR ({starts(prefix, lists)}))",
        f"((!(ActionMatches{{'{BLOBS}/write'}}) AND !(ActionMatches{{'{BLOBS}/add/action'}})) OR "
        f"({starts(path, writes)}))",
    ])


def _assignment(name: str, scope: Value, role: Value, principal: Value, condition: str | None = None) -> Resource:
    body: dict[str, Value] = {"scope": scope, "role_definition_id": role, "principal_id": principal,
                              "principal_type": "ServicePrincipal", "skip_service_principal_aad_check": True}
    if condition:
        body |= {"condition": condition, "condition_version": "2.0"}
    return Resource("azurerm_role_assignment", name, body)


def job_definition(ctx: StackContext, t: FeatureStore, g: FeatureGroup, cluster: Resource, environment: Resource,
                   identity: Resource, store: Resource, account: Expr) -> dict[str, Any]:
    """The command job (CommandJob of the Azure ML REST API), shared by the schedule and the Logic App."""
    spec = json.dumps(spec_document(t, g), sort_keys=True, separators=(",", ":"))
    command = (f"printf '%s' {shlex.quote(spec)} > spec.json && python -m training.ingest_azure --spec spec.json "
               f"--account-url \"$LAKE_BLOB_URL\" --metrics-resource \"$METRICS_RESOURCE\" --metrics-region "
               f"{location(ctx)} --metrics-namespace {METRICS_NAMESPACE}")
    return {
        "jobType": "Command",
        "displayName": f"ingest-{g.name}",
        "experimentName": experiment(ctx),
        "computeId": cluster.attr("id"),
        "environmentId": environment.attr("id"),
        "command": command,
        "environmentVariables": {
            "PYTHONPATH": "/opt/program",  # the image's package, not Azure ML's working directory (training.py)
            "AZURE_CLIENT_ID": identity.attr("client_id"),  # DefaultAzureCredential: which identity of the node
            "LAKE_BLOB_URL": interp("https://", account, ".blob.core.windows.net"),
            "METRICS_RESOURCE": store.attr("id"),
        },
        "identity": {"identityType": "Managed"},
        "limits": {"jobLimitsType": "Command", "timeout": "PT1H"},
    }


def render_ingestion(t: FeatureStore, ctx: StackContext, store: Resource) -> None:
    """Everything above, for each group with `ingestion`; nothing when none has."""
    ingested = [(i, g) for i, g in enumerate(t.groups) if g.ingestion is not None]
    if not ingested:
        return
    validate(t, ctx)
    azure = ctx.namespace.azure
    assert azure is not None
    data = t.data
    rg = ctx.upstream_output(data, "resource_group_name")
    registry = ctx.upstream_output(data, "container_registry_id")
    lake = ctx.upstream_output(data, "storage_account_id")
    account = ctx.upstream_output(data, "storage_account_name")
    containers = ctx.upstream_output(data, "container_ids")
    role = Resource("azurerm_role_definition", "ingestion_blobs", {
        "name": f"{ctx.name} feature ingestion (blobs)",
        "scope": lake,
        "description": "Read, write and add blobs, no delete and no container management; each assignment "
                       "narrows it to its paths with a condition",
        "permissions": Block({"actions": [], "data_actions": list(DATA_ACTIONS)}),
        "assignable_scopes": [lake],
    })
    jobs_role = Resource("azurerm_role_definition", "ingestion_jobs", {
        "name": f"{ctx.name} feature ingestion (start jobs)",
        "scope": store.attr("id"),
        "description": "Create and read jobs of the feature store workspace, to start the ingestion",
        "permissions": Block({"actions": JOBS_ACTIONS, "data_actions": []}),
        "assignable_scopes": [store.attr("id")],
    })
    group = email_group(ctx, "ingestion", f"ag-{ctx.name}-features", f"{ctx.name}feat", rg)
    ctx.stack.add(role, group)
    topic = None
    if any(g.ingestion.on_new_data for _, g in ingested if g.ingestion is not None):
        topic = Resource("azurerm_eventgrid_system_topic", "lake", tagged(ctx, {
            "name": f"egst-{ctx.name}-lake",
            "resource_group_name": rg,
            "location": location(ctx),
            "source_resource_id": lake,
            "topic_type": "Microsoft.Storage.StorageAccounts",
        }))
        ctx.stack.add(topic, jobs_role)
    registry_host = ctx.upstream_output(data, "registry_login_server")
    jobs: dict[str, Any] = {}
    for index, g in ingested:
        ing = g.ingestion
        assert ing is not None
        address = g.name.replace("-", "_")
        jobs[g.name] = _render_group(ctx, t, g, ing, index, address, store, role, jobs_role, group, topic, rg,
                                     registry, account, containers, registry_host)
    _failed_runs_alert(ctx, store, rg, group)
    ctx.stack.add(Output("ingestion_specs", {g.name: json.dumps(spec_document(t, g), sort_keys=True)
                                             for _, g in ingested},
                         description="Each ingested group's spec: python -m training.ingest_azure --spec <it as a "
                                     "file> runs the ingestion anywhere"),
                  Output("ingestion_clusters", jobs, description="Compute cluster of each group's ingestion job"))


def _render_group(ctx: StackContext, t: FeatureStore, g: FeatureGroup, ing: Ingestion, index: int, address: str,
                  store: Resource, role: Resource, jobs_role: Resource, group: Resource, topic: Resource | None,
                  rg: Expr, registry: Expr, account: Expr, containers: Expr, registry_host: Expr) -> Expr:
    identity = Resource("azurerm_user_assigned_identity", f"ingestion_{address}", tagged(ctx, {
        "name": f"id-{ctx.name}-ingest-{g.name}",
        "resource_group_name": rg,
        "location": location(ctx),
    }))
    principal = identity.attr("principal_id")
    role_id = role.attr("role_definition_resource_id")
    quarantine, ledger = f"{QUARANTINE_PREFIX}/{g.name}/", f"{LEDGER_PREFIX}/{g.name}/"
    ctx.stack.add(
        identity,
        _assignment(f"ingestion_{address}_raw", containers[t.raw_zone], role_id, principal,
                    blob_condition(reads=[ing.prefix], lists=[ing.prefix], writes=[quarantine])),
        _assignment(f"ingestion_{address}_offline", containers[t.offline_zone], role_id, principal,
                    blob_condition(reads=[ledger], lists=[ledger], writes=[ledger, source_prefix(g)])),
        Resource("azurerm_role_assignment", f"ingestion_{address}_metrics", {
            "scope": store.attr("id"), "role_definition_name": "Monitoring Metrics Publisher",
            "principal_id": principal, "principal_type": "ServicePrincipal",
            "skip_service_principal_aad_check": True}),
        Resource("azurerm_role_assignment", f"ingestion_{address}_pull", {
            "scope": registry, "role_definition_name": "AcrPull", "principal_id": principal,
            "principal_type": "ServicePrincipal", "skip_service_principal_aad_check": True}),
    )
    cluster = Resource("azurerm_machine_learning_compute_cluster", f"ingestion_{address}", tagged(ctx, {
        "name": cluster_name(ctx, g),
        "location": location(ctx),
        "machine_learning_workspace_id": store.attr("id"),
        "vm_priority": "Dedicated",
        "vm_size": vm_size(ctx, f"groups[{index}].ingestion.instance_type", ing.instance_type),
        "scale_settings": Block({"min_node_count": 0, "max_node_count": 1,
                                 "scale_down_nodes_after_idle_duration": "PT5M"}),
        "identity": Block({"type": "UserAssigned", "identity_ids": [identity.attr("id")]}),
        "local_auth_enabled": False,
        "node_public_ip_enabled": False,
        "ssh_public_access_enabled": False,
    }))
    tag = ctx.image_tag(ing.image)
    container = azapi(ctx, f"ingestion_{address}_environment", "workspaces/environments", f"ingest-{g.name}",
                      store.attr("id"), {"properties": {"description": f"The {ing.image.repository} image, azureml "
                                                                       f"stage, for the ingestion of {g.name}"}})
    environment = azapi(ctx, f"ingestion_{address}_environment_version", "workspaces/environments/versions", tag,
                        container.attr("id"), {"properties": {
                            "image": interp("", registry_host, f"/{ctx.platform}-{ctx.namespace.name}/"
                                                               f"{ing.image.repository}:", tag),
                            "osType": "Linux"}})
    ctx.stack.add(cluster, container, environment)
    job = job_definition(ctx, t, g, cluster, environment, identity, store, account)
    if ing.schedule is not None:
        ctx.stack.add(azapi(ctx, f"ingestion_{address}_schedule", "workspaces/schedules", f"ingest-{g.name}",
                            store.attr("id"), {"properties": {
                                "displayName": f"Ingest {g.name} ({ctx.namespace.name})",
                                "isEnabled": True,
                                "trigger": trigger(ctx, f"groups[{index}].ingestion.schedule", ing.schedule),
                                "action": {"actionType": "CreateJob", "jobDefinition": job},
                            }}))
    _quarantine_alert(ctx, g, store, rg, group)
    if ing.on_new_data:
        assert topic is not None
        _render_on_new_data(ctx, t, g, ing, address, store, jobs_role, group, topic, rg, job)
    return cluster.attr("id")


def _render_on_new_data(ctx: StackContext, t: FeatureStore, g: FeatureGroup, ing: Ingestion, address: str,
                        store: Resource, jobs_role: Resource, group: Resource, topic: Resource, rg: Expr,
                        job: dict[str, Any]) -> None:
    starter = Resource("azurerm_user_assigned_identity", f"ingestion_{address}_starter", tagged(ctx, {
        "name": f"id-{ctx.name}-ingest-{g.name}-start",
        "resource_group_name": rg,
        "location": location(ctx),
    }))
    workflow = Resource("azurerm_logic_app_workflow", f"ingestion_{address}", tagged(ctx, {
        "name": f"logic-{ctx.name}-ingest-{g.name}",
        "resource_group_name": rg,
        "location": location(ctx),
        "identity": Block({"type": "UserAssigned", "identity_ids": [starter.attr("id")]}),
    }))
    trigger = Resource("azurerm_logic_app_trigger_http_request", f"ingestion_{address}", {
        "name": "events",
        "logic_app_id": workflow.attr("id"),
        "method": "POST",
        "schema": json.dumps({"type": "array", "items": {"type": "object"}}),
    })
    start = {
        "type": "Http",
        "inputs": {
            "method": "PUT",
            # A job name of this run: a retried delivery is another run and another (harmless) job.
            "uri": interp("https://management.azure.com", store.attr("id"),
                          f"/jobs/ingest-{g.name}-@{{workflow()['run']['name']}}?api-version={ML_API}"),
            "body": {"properties": job},
            "authentication": {"type": "ManagedServiceIdentity", "identity": starter.attr("id"),
                               "audience": "https://management.azure.com/"},
        },
    }
    # A workflow with a Response action answers every call through one: 202 once the job is created,
    # 500 when Azure ML refused it (Event Grid then retries the delivery with backoff), and the run is
    # then terminated as Failed so that the failed-runs alert sees it.
    created = {
        "create-job": start,
        "accepted": {"type": "Response", "runAfter": {"create-job": ["Succeeded"]},
                     "inputs": {"statusCode": 202, "body": {"job": f"ingest-{g.name}-@{{workflow()['run']['name']}}"}}},
        "refused": {"type": "Response", "runAfter": {"create-job": ["Failed", "TimedOut"]},
                    "inputs": {"statusCode": 500, "body": {"error": "@{outputs('create-job')?['body']}"}}},
        "failed": {"type": "Terminate", "runAfter": {"refused": ["Succeeded"]},
                   "inputs": {"runStatus": "Failed", "runError": {"code": "JobNotCreated",
                                                                  "message": "Azure ML refused the ingestion job"}}},
    }
    action = Resource("azurerm_logic_app_action_custom", f"ingestion_{address}", {
        "name": "start-ingestion",
        "logic_app_id": workflow.attr("id"),
        "body": jsonencode({
            "type": "If",
            "runAfter": {},
            # Event Grid's synchronous handshake, in case the subscription's creation sends it here.
            "expression": {"and": [{"equals": ["@triggerBody()?[0]?['eventType']",
                                               "Microsoft.EventGrid.SubscriptionValidationEvent"]}]},
            "actions": {"validation-response": {"type": "Response", "inputs": {
                "statusCode": 200, "body": {"validationResponse": "@{triggerBody()[0]['data']['validationCode']}"}}}},
            "else": {"actions": created},
        }),
    })
    subscription = Resource("azurerm_eventgrid_system_topic_event_subscription", f"ingestion_{address}", {
        "name": f"ingest-{g.name}",
        "system_topic": topic.attr("name"),
        "resource_group_name": rg,
        "event_delivery_schema": "EventGridSchema",
        "included_event_types": ["Microsoft.Storage.BlobCreated"],
        "subject_filter": Block({"subject_begins_with": f"/blobServices/default/containers/{t.raw_zone}/blobs/"
                                                        f"{ing.prefix}", "case_sensitive": True}),
        "advanced_filter": Block({"string_in": Block({"key": "data.api", "values": COMMITTING_APIS})}),
        "webhook_endpoint": Block({"url": trigger.attr("callback_url"), "max_events_per_batch": 100,
                                   "preferred_batch_size_in_kilobytes": 64}),
        "retry_policy": Block({"max_delivery_attempts": 30, "event_time_to_live": 1440}),
    }, depends_on=(action,))
    ctx.stack.add(starter, workflow, trigger, action, subscription,
                  _assignment(f"ingestion_{address}_starter", store.attr("id"),
                              jobs_role.attr("role_definition_resource_id"), starter.attr("principal_id")))
    ctx.stack.add(Resource("azurerm_monitor_metric_alert", f"ingestion_{address}_workflow_failed", tagged(ctx, {
        "name": f"{ctx.name}-ingest-{g.name}-start-failed",
        "resource_group_name": rg,
        "scopes": [workflow.attr("id")],
        "description": f"The Logic App that starts the ingestion of {g.name} on new data failed a run",
        "severity": 2,
        "frequency": "PT5M",
        "window_size": "PT15M",
        "criteria": Block({"metric_namespace": "Microsoft.Logic/workflows", "metric_name": "RunsFailed",
                           "aggregation": "Total", "operator": "GreaterThan", "threshold": 0}),
        "action": Block({"action_group_id": group.attr("id")}),
    })))


def _quarantine_alert(ctx: StackContext, g: FeatureGroup, store: Resource, rg: Expr, group: Resource) -> None:
    """Rows quarantined by a run: someone should read why (each row with its reason, in quarantine/)."""
    ctx.stack.add(Resource("azurerm_monitor_metric_alert", f"ingestion_{g.name.replace('-', '_')}_quarantined",
                           tagged(ctx, {
        "name": f"{ctx.name}-ingest-{g.name}-quarantined",
        "resource_group_name": rg,
        "scopes": [store.attr("id")],
        "description": f"The ingestion of {g.name} quarantined rows: see quarantine/{g.name}/ in the raw zone",
        "severity": 3,
        "frequency": "PT15M",
        "window_size": "PT1H",
        "criteria": Block({
            "metric_namespace": METRICS_NAMESPACE, "metric_name": "QuarantinedRows", "aggregation": "Total",
            "operator": "GreaterThan", "threshold": 0,
            # The job publishes the metric at its first run: before that there is nothing to validate.
            "skip_metric_validation": True,
            "dimension": Block({"name": "FeatureGroup", "operator": "Include", "values": [g.name]}),
        }),
        "action": Block({"action_group_id": group.attr("id")}),
    })))


def _failed_runs_alert(ctx: StackContext, store: Resource, rg: Expr, group: Resource) -> None:
    # The ingestion jobs' experiment, not the feature store's materializations.
    ctx.stack.add(failed_runs_alert(ctx, "ingestion_failed_runs", f"{ctx.name}-features-failed-runs", store.attr("id"),
                                    rg, group, experiment(ctx), "An ingestion job failed: its log names the object "
                                                                "(the next run retries it)"))
