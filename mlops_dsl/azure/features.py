"""FeatureStore on Azure: an Azure ML workspace of kind FeatureStore, its offline store on the lake.

azurerm creates the workspace; the offline-store connection and one feature-store entity per
declared group (keyed by the group's record id) go through azapi, which azurerm cannot express.
Feature sets themselves are registered with their transformation code (`az ml feature-set`).
"""

from __future__ import annotations

from ..context import StackContext
from ..templates.features import FeatureStore
from ..terraform import Block, Output, interp
from .common import azapi
from .workspace import application_insights, workspace

DATA_TYPES = {"integral": "long", "fractional": "double", "string": "string"}
OFFLINE_CONNECTION = "offline-store"


def render(t: FeatureStore, ctx: StackContext) -> None:
    for i, g in enumerate(t.groups):
        if g.online:
            raise ctx.error(f"groups[{i}].online", "the Azure feature store has no online store in this version "
                                                   "(it needs a managed Redis); declare the group with online=False")
    insights = application_insights(ctx, t.data, "features")
    resources = workspace(ctx, t.data, "features", "FeatureStore", insights, {
        "feature_store": Block({
            "computer_spark_runtime_version": "3.4",  # sic: the provider's argument name
            "offline_connection_name": OFFLINE_CONNECTION,
        }),
    }, protect=t.protect_from_destroy)
    store = resources[0]
    ctx.stack.add(insights, *resources)
    account = ctx.upstream_output(t.data, "storage_account_name")
    connection = azapi(ctx, "offline_store", "workspaces/connections", OFFLINE_CONNECTION, store.attr("id"), {
        "properties": {
            "category": "ADLSGen2",
            "authType": "ManagedIdentity",
            "target": interp("https://", account, f".dfs.core.windows.net/{t.offline_zone}"),
            "credentials": {
                "clientId": ctx.upstream_output(t.data, "workload_identity_client_id"),
                "resourceId": ctx.upstream_output(t.data, "workload_identity_id"),
            },
        },
    })
    ctx.stack.add(connection)
    entities = {}
    for g in t.groups:
        types = {f.name: f.type for f in g.features}
        entity = azapi(ctx, f"entity_{g.name.replace('-', '_')}", "workspaces/featurestoreEntities", g.name,
                       store.attr("id"), {"properties": {"description": g.description or f"{g.name} records"}})
        version = azapi(ctx, f"entity_{g.name.replace('-', '_')}_v1", "workspaces/featurestoreEntities/versions",
                        "1", entity.attr("id"), {"properties": {
                            "indexColumns": [{"columnName": g.record_id, "dataType": DATA_TYPES[types[g.record_id]]}],
                        }})
        entities[g.name] = entity
        ctx.stack.add(entity, version)
    ctx.stack.add(
        Output("feature_store_id", store.attr("id"), description="The feature store workspace"),
        Output("feature_store_name", store.attr("name"), description="The feature store workspace's name"),
        Output("entity_ids", {n: e.attr("id") for n, e in entities.items()},
               description="Feature-store entity of each declared group"),
    )
