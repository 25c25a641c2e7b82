"""FeatureStore on Azure: an Azure ML workspace of kind FeatureStore, its offline store on the lake
and, when a group is online, an online store on Azure Cache for Redis.

azurerm creates the workspace and the cache; the store connections, one entity per group (keyed
by its record id) and one feature set per group go through azapi, which azurerm cannot express.
A feature set's specification (FeatureSetSpec.yaml, rendered from the group: featureset_spec.py)
is written beside the stack and lives at `featuresets/<group>/spec/` in the offline zone, where
`mlops featuresets` uploads it before the stack's first apply.

A group with `ingestion` is materialized on its schedule: Azure ML's recurrence trigger on the
feature set version (`materializationSettings.schedule`), on serverless Spark. What it
materializes is the source its specification reads: `featuresets/<group>/source/` of the offline
zone is where the ingestion (feature_ingestion.py: the row checks, the quarantine and the ledger
of the AWS job, on a schedule and on new data through Event Grid) writes the checked rows as
Parquet. README, "Features: from raw data to the store and to training".
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.features import FeatureGroup, FeatureStore
from ..terraform import Block, Expr, Output, Resource, Value, interp
from . import featureset_spec
from .common import WORKSPACE_API, azapi, grant, location, private_endpoint, schedule_trigger, tagged
from .feature_ingestion import render_ingestion
from .featureset_spec import DATA_TYPES
from .workspace import application_insights, outbound_rule, workspace

# Serverless Spark runs on memory-optimised E-series sizes only (Azure ML, "Serverless Spark compute":
# supported instance types standard_e4s_v3 to standard_e64s_v3); the smallest is enough for one group.
SPARK_INSTANCE = "standard_e4s_v3"


def materialization_settings(ctx: StackContext, g: FeatureGroup, index: int) -> dict[str, Any]:
    """The feature set version's materializationSettings: the stores, and with ingestion its
    recurrence (the only trigger the API takes here: RecurrenceTrigger) and Spark compute."""
    settings: dict[str, Any] = {"storeType": "OnlineAndOffline" if g.online else "Offline"}
    if g.ingestion is None or g.ingestion.schedule is None:
        return settings
    field = f"groups[{index}].ingestion.schedule"
    trigger = schedule_trigger(ctx, field, g.ingestion.schedule)
    if trigger["triggerType"] != "Recurrence":
        raise ctx.error(field, f"{g.ingestion.schedule!r}: Azure ML materializes feature sets on a recurrence "
                               f"only; use rate(N minutes|hours|days)")
    trigger["frequency"] = trigger["frequency"].capitalize()  # the API's Minute, Hour, Day
    return {**settings, "schedule": trigger, "resource": {"instanceType": SPARK_INSTANCE},
            "sparkConfiguration": {"spark.driver.cores": "4", "spark.driver.memory": "28g",
                                   "spark.executor.cores": "4", "spark.executor.memory": "28g",
                                   "spark.executor.instances": "1"}}
OFFLINE_CONNECTION = "offline-store"
CACHE_KEY_ACTIONS = ("Microsoft.Cache/redis/read", "Microsoft.Cache/redis/listKeys/action")
FEATURE_SET_READ_ACTIONS = ("Microsoft.MachineLearningServices/workspaces/read",
                            "Microsoft.MachineLearningServices/workspaces/featuresets/read")
ONLINE_CONNECTION = "online-store"


def _connection(ctx: StackContext, t: FeatureStore, name: str, category: str, target: object,
                store: Resource) -> Resource:
    """A store connection that authenticates as the materialization identity, as the SDK
    creates them (azure-ai-ml `_feature_store_operations.py`: `credentials=materialization_identity`)."""
    return azapi(ctx, name.replace("-", "_"), "workspaces/connections", name, store.attr("id"), {
        "properties": {
            "category": category,
            "authType": "ManagedIdentity",
            "target": target,
            "credentials": {
                "clientId": ctx.upstream_output(t.data, "materialization_identity_client_id"),
                "resourceId": ctx.upstream_output(t.data, "materialization_identity_id"),
            },
        },
    })


def _online_store(ctx: StackContext, t: FeatureStore) -> list[Resource]:
    """A Premium cache reachable only privately, written with its access key, read with Entra ID.

    Azure ML's online materialization reaches Redis only with the cache's access key: the
    azureml-featurestore SDK it runs (1.0.0 to 1.2.2, `online/_redis_client_pool.py`) calls the
    management plane's `listKeys` as the materialization identity and connects with
    `rediss://:<primary key>@<host>:6380`; the SDK's own setup grants that identity Contributor on
    the cache for it (azure-ai-ml `feature_store_role_assignments.json`). So access keys stay on,
    and the identity gets a custom role with the two actions the SDK calls (read and listKeys)
    instead of Contributor. The endpoints read with their identity's Entra ID token: with Entra ID
    authentication, Azure RBAC roles do not reach the data, a data access policy assignment does
    (azurerm_redis_cache_access_policy_assignment; review A11), Data Reader here.
    """
    rg = ctx.upstream_output(t.data, "resource_group_name")
    cache = Resource("azurerm_redis_cache", "online", tagged(ctx, {
        "name": f"redis-{ctx.name}",
        "location": location(ctx),
        "resource_group_name": rg,
        "sku_name": "Premium",
        "family": "P",
        "capacity": 1,
        "replicas_per_primary": 1,
        "minimum_tls_version": "1.2",
        "non_ssl_port_enabled": False,
        "public_network_access_enabled": False,
        "access_keys_authentication_enabled": True,  # materialization's only way in (docstring)
        "redis_configuration": Block({"active_directory_authentication_enabled": True}),
    }))
    zones = ctx.upstream_output(t.data, "private_dns_zone_ids")
    endpoint = private_endpoint(ctx, "online_store", rg, cache.attr("id"), "redisCache",
                                ctx.upstream_output(t.data, "endpoints_subnet_id"), zones["redisCache"])
    keys = _custom_role(ctx, "online_store_keys", "materialization_online_keys", cache.attr("id"),
                        "online store materialization (keys)",
                        "Read the cache and list its access keys, what Azure ML's online materialization calls",
                        CACHE_KEY_ACTIONS, ctx.upstream_output(t.data, "materialization_identity_principal_id"))
    return [cache, endpoint, *keys]


def _custom_role(ctx: StackContext, name: str, assignment: str, scope: Value, title: str, description: str,
                 actions: tuple[str, ...], principal: Value) -> list[Resource]:
    """A role of exactly `actions` on `scope`, assigned there to a managed identity (see common.grant)."""
    role = Resource("azurerm_role_definition", name, {
        "name": f"{ctx.name} {title}",
        "scope": scope,
        "description": description,
        "permissions": Block({"actions": list(actions), "data_actions": []}),
        "assignable_scopes": [scope],
    })
    return [role, Resource("azurerm_role_assignment", assignment, {
        "scope": scope, "role_definition_id": role.attr("role_definition_resource_id"),
        "principal_id": principal, "principal_type": "ServicePrincipal", "skip_service_principal_aad_check": True})]


def _online_reader(ctx: StackContext, t: FeatureStore, cache: Resource, store: Resource) -> list[Resource]:
    """The endpoints' Redis user: HMGET on this feature store's keys and the connection commands, no
    other command and no other key (a custom data access policy: Redis ACL syntax, `~` a key pattern;
    every key of the store begins with its lower-cased guid, serving/online_store_azureml.py)."""
    raw = store.attr("output.properties.workspaceId")
    guid = Expr(f"lower({raw.text})", raw.refs)
    policy = Resource("azurerm_redis_cache_access_policy", "endpoint_read", {
        "name": "online-features-read",
        "redis_cache_id": cache.attr("id"),
        "permissions": interp("+@connection +hmget ~featurestore:", guid, ":*"),
    })
    return [policy, Resource("azurerm_redis_cache_access_policy_assignment", "endpoint_redis", {
        "name": "endpoint",
        "redis_cache_id": cache.attr("id"),
        "access_policy_name": policy.attr("name"),
        "object_id": ctx.upstream_output(t.data, "endpoint_identity_principal_id"),
        "object_id_alias": "endpoint",
    })]


def _feature_set_reader(ctx: StackContext, t: FeatureStore, store: Resource) -> list[Resource]:
    """The endpoints' identity may read the feature sets (their online materialization version,
    serving/online_store_azureml.py) and the workspace, nothing else: the individual actions
    Microsoft lists for a feature store consumer (how-to-setup-access-control-feature-store)."""
    return _custom_role(ctx, "feature_set_reader", "endpoint_feature_sets", store.attr("id"), "feature set reader",
                        "Read the feature store and its feature sets (online features at inference)",
                        FEATURE_SET_READ_ACTIONS, ctx.upstream_output(t.data, "endpoint_identity_principal_id"))


def render(t: FeatureStore, ctx: StackContext) -> None:
    online = any(g.online for g in t.groups)
    insights = application_insights(ctx, t.data, "features")
    settings: dict[str, Any] = {
        "computeRuntime": {"sparkRuntimeVersion": "3.4"},
        "offlineStoreConnectionName": OFFLINE_CONNECTION,
    }
    online_store = _online_store(ctx, t) if online else []
    if online:
        settings["onlineStoreConnectionName"] = ONLINE_CONNECTION
    containers = ctx.upstream_output(t.data, "container_ids")
    lake = ctx.upstream_output(t.data, "storage_account_id")
    # Materialization runs on serverless Spark inside the managed network: it needs private endpoints
    # to the offline store (dfs and blob) and to Redis, with Spark enabled. Microsoft's feature-store
    # network tutorial: "set the isolation_mode to allow_internet_outbound. This is the only supported
    # network isolation mode" (tutorial-network-isolation-for-feature-store; review B6).
    outbound = {"lake-dfs": outbound_rule(lake, "dfs", spark=True),
                "lake-blob": outbound_rule(lake, "blob", spark=True)}
    if online:
        outbound["online-store"] = outbound_rule(online_store[0].attr("id"), "redisCache", spark=True)
    if any(g.ingestion is not None for g in t.groups):
        # The ingestion clusters pull the training image from the platform's registry, which takes no
        # public traffic: through a private endpoint of this managed network (feature_ingestion.py).
        outbound["container-registry"] = outbound_rule(ctx.upstream_output(t.data, "container_registry_id"),
                                                       "registry")
    materialization = ctx.upstream_output(t.data, "materialization_identity_id")
    # The materialization identity is attached to the feature store, as the SDK expects it
    # (`feature_store.materialization_identity = identity.user_assigned_identities[...]`; review B5).
    resources = workspace(ctx, t.data, "features", "FeatureStore", insights, {"featureStoreSettings": settings},
                          "AllowInternetOutbound", outbound, extra_identities=(materialization,),
                          protect=t.protect_from_destroy)
    store = resources[0]
    # The immutable workspace id is the feature store guid of every online-store key.
    store.body["response_export_values"] = ["properties.workspaceId"]
    ctx.stack.add(insights, *resources, *online_store)
    if online:
        ctx.stack.add(*_online_reader(ctx, t, online_store[0], store), *_feature_set_reader(ctx, t, store))
    # The SDK's feature_store_role_assignments.json and how-to-setup-access-control-feature-store: the
    # materialization identity has AzureML Data Scientist on the feature store and Storage Blob Data
    # Contributor on the offline store, nothing else.
    principal = ctx.upstream_output(t.data, "materialization_identity_principal_id")
    ctx.stack.add(grant("materialization_store", store.attr("id"), "AzureML Data Scientist", principal),
                  grant("materialization_offline", containers[t.offline_zone], "Storage Blob Data Contributor",
                        principal))
    # Spark provisioning is not part of `provisionNetworkNow` ("If you plan to submit serverless
    # Spark jobs, you must manually start provisioning", how-to-managed-network).
    ctx.stack.add(Resource("azapi_resource_action", "provision_spark_network", {
        "type": f"Microsoft.MachineLearningServices/workspaces@{WORKSPACE_API}",
        "resource_id": store.attr("id"),
        "action": "provisionManagedNetwork",
        "method": "POST",
        "body": {"includeSpark": True},
    }))
    # The offline store's target is the container's ARM id: the SDK uses it as a role-assignment
    # scope, and reference-yaml-feature-store documents `/subscriptions/.../containers/<container>`
    # (review B4).
    ctx.stack.add(_connection(ctx, t, OFFLINE_CONNECTION, "ADLSGen2", containers[t.offline_zone], store))
    if online:
        ctx.stack.add(_connection(ctx, t, ONLINE_CONNECTION, "Redis", online_store[0].attr("id"), store))
    datastore = Resource("azurerm_machine_learning_datastore_datalake_gen2", "offline", {
        "name": t.offline_zone.replace("-", "_"),
        "workspace_id": store.attr("id"),
        "storage_container_id": containers[t.offline_zone],
        "service_data_identity": "WorkspaceUserAssignedIdentity",
    })
    ctx.stack.add(datastore)
    entities, versions = {}, {}
    for index, g in enumerate(t.groups):
        types = {f.name: f.type for f in g.features}
        entity = azapi(ctx, f"entity_{g.name.replace('-', '_')}", "workspaces/featurestoreEntities", g.name,
                       store.attr("id"), {"properties": {"description": g.description or f"{g.name} records"}})
        version = azapi(ctx, f"entity_{g.name.replace('-', '_')}_v1", "workspaces/featurestoreEntities/versions",
                        "1", entity.attr("id"), {"properties": {
                            "indexColumns": [{"columnName": g.record_id, "dataType": DATA_TYPES[types[g.record_id]]}],
                        }})
        entities[g.name] = entity
        feature_set = azapi(ctx, f"featureset_{g.name.replace('-', '_')}", "workspaces/featuresets", g.name,
                            store.attr("id"), {"properties": {"description": g.description or f"{g.name} features"}})
        spec = f"azureml://datastores/{datastore.body['name']}/paths/{featureset_spec.spec_folder(g.name)}"
        feature_set_version = azapi(
            ctx, f"featureset_{g.name.replace('-', '_')}_v1", "workspaces/featuresets/versions", "1",
            feature_set.attr("id"), {"properties": {
                "entities": [f"azureml:{g.name}:1"],
                "specification": {"path": spec},
                "stage": "Development",
                "materializationSettings": materialization_settings(ctx, g, index),
            }})
        feature_set_version.depends_on = (version, datastore)
        ctx.stack.files[featureset_spec.tree_path(g.name)] = featureset_spec.text(t, g, ctx.platform,
                                                                                  ctx.namespace.name)
        versions[g.name] = feature_set_version
        ctx.stack.add(entity, version, feature_set, feature_set_version)
    render_ingestion(t, ctx, store)
    ctx.stack.add(
        Output("feature_store_id", store.attr("id"), description="The feature store workspace"),
        Output("feature_store_name", store.attr("name"), description="The feature store workspace's name"),
        Output("entity_ids", {n: e.attr("id") for n, e in entities.items()},
               description="Feature-store entity of each declared group"),
        Output("feature_set_version_ids", {n: v.attr("id") for n, v in versions.items()},
               description="The feature set version of each group (its materialization state)"),
        Output("feature_store_guid", store.attr("output.properties.workspaceId"),
               description="The feature store's immutable id, the first part of every online-store key"),
    )
    if online:
        ctx.stack.add(
            Output("online_store_id", online_store[0].attr("id"), description="The online store (Redis)"),
            Output("online_store_hostname", online_store[0].attr("hostname"), description="Its host name"),
            Output("online_store_ssl_port", online_store[0].attr("ssl_port"), description="Its TLS port"))
