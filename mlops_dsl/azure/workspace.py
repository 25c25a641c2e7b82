"""An Azure ML workspace as this platform builds it: private, on the customer-managed key, with
approved outbound traffic only. Used by the feature store (kind FeatureStore) and training."""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.base import Template
from ..terraform import Block, CheckovSkip, Lifecycle, Resource, Value
from .common import ML_API, compact, location, private_endpoint, tagged, use_azapi


def application_insights(ctx: StackContext, data: Template, name: str) -> Resource:
    return Resource("azurerm_application_insights", name, tagged(ctx, {
        "name": f"appi-{ctx.name}-{name}",
        "location": location(ctx),
        "resource_group_name": ctx.upstream_output(data, "resource_group_name"),
        "workspace_id": ctx.upstream_output(data, "log_analytics_workspace_id"),
        "application_type": "other",
        "local_authentication_disabled": True,
    }))


def workspace(ctx: StackContext, data: Template, name: str, kind: str, insights: Resource,
              extra: dict[str, Value], protect: bool = False) -> list[Resource]:
    """The workspace, its identity-based system datastores and its private endpoint."""
    rg = ctx.upstream_output(data, "resource_group_name")
    cmk_identity = ctx.upstream_output(data, "cmk_identity_id")
    # Workspace names take 33 characters: platform and namespace are cut to fit.
    workspace_name = f"mlw-{compact(ctx.platform)[:11]}-{compact(ctx.namespace.name)[:8]}-{name[:8]}"
    if len(workspace_name) > 33:
        raise ctx.error("name", f"the Azure ML workspace name {workspace_name!r} is {len(workspace_name)} "
                                f"characters; Azure allows 33")
    body: dict[str, Any] = {
        "name": workspace_name,
        "location": location(ctx),
        "resource_group_name": rg,
        "kind": kind,
        "application_insights_id": insights.attr("id"),
        "key_vault_id": ctx.upstream_output(data, "key_vault_id"),
        "storage_account_id": ctx.upstream_output(data, "storage_account_id"),
        "identity": Block({"type": "UserAssigned", "identity_ids": [cmk_identity]}),
        "primary_user_assigned_identity": cmk_identity,
        "public_network_access_enabled": False,
        "high_business_impact": True,
        "v1_legacy_mode_enabled": False,
        "managed_network": Block({"isolation_mode": "AllowOnlyApprovedOutbound"}),
        "encryption": Block({
            "key_vault_id": ctx.upstream_output(data, "key_vault_id"),
            "key_id": ctx.upstream_output(data, "key_id"),
            "user_assigned_identity_id": cmk_identity,
        }),
        **extra,
    }
    resource = Resource("azurerm_machine_learning_workspace", name, tagged(ctx, body),
                        lifecycle=Lifecycle(prevent_destroy=protect), skips=(CheckovSkip(
                            "CKV2_AZURE_50", "its storage account is the data lake of the data stack (read through "
                                             "remote state), which disables public network access; the graph "
                                             "check cannot follow remote state"),))
    use_azapi(ctx)
    # The lake disables shared keys; the workspace's own datastores must then use identities
    # (azurerm 4.55 cannot say so; the ARM property can).
    identity_datastores = Resource("azapi_update_resource", f"{name}_identity_datastores", {
        "type": f"Microsoft.MachineLearningServices/workspaces@{ML_API}",
        "resource_id": resource.attr("id"),
        "body": {"properties": {"systemDatastoresAuthMode": "identity"}},
    })
    zones = ctx.upstream_output(data, "private_dns_zone_ids")
    endpoint = private_endpoint(ctx, f"{name}_workspace", rg, resource.attr("id"), "amlworkspace",
                                ctx.upstream_output(data, "endpoints_subnet_id"), zones["amlworkspace"])
    return [resource, identity_datastores, endpoint]
