"""An Azure ML workspace as this platform builds it: private, on the customer-managed key, with a
managed network, acting as its own identity. Used by the feature store (kind FeatureStore) and
training.

The workspace is an azapi resource at WORKSPACE_API (2025-06-01), not azurerm's
`azurerm_machine_learning_workspace`: its default storage has no shared keys, so its system
datastores must be created identity-based, and that is a creation-time property
(`systemDatastoresAuthMode`) which azurerm 4.x cannot set and which the 2024-10-01 API does not
have, so an `azapi_update_resource` at that version was silently stripped to nothing
(azapi internal/azure/types/object_type.go `GetWriteOnly`; learn.microsoft.com/azure/
machine-learning/how-to-disable-local-auth-storage: "When you create your workspace ... set
system_datastores_auth_mode"; review A4).
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.base import Template
from ..terraform import Block, Lifecycle, Resource, Value
from .common import WORKSPACE_API, azapi, compact, grant, location, private_endpoint, tagged


def application_insights(ctx: StackContext, data: Template, name: str) -> Resource:
    return Resource("azurerm_application_insights", name, tagged(ctx, {
        "name": f"appi-{ctx.name}-{name}",
        "location": location(ctx),
        "resource_group_name": ctx.upstream_output(data, "resource_group_name"),
        "workspace_id": ctx.upstream_output(data, "log_analytics_workspace_id"),
        "application_type": "other",
        "local_authentication_disabled": True,
    }))


def outbound_rule(target: Value, subresource: str, spark: bool = False) -> dict[str, Any]:
    """A managed-network private-endpoint rule (ARM's PrivateEndpointOutboundRule)."""
    return {"type": "PrivateEndpoint", "destination": {
        "serviceResourceId": target, "subresourceTarget": subresource, "sparkEnabled": spark}}


def workspace(ctx: StackContext, data: Template, name: str, kind: str, insights: Resource,
              properties: dict[str, Value], isolation: str, outbound: dict[str, Any],
              extra_identities: tuple[Value, ...] = (), protect: bool = False) -> list[Resource]:
    """The workspace, its identity's roles on what the workspace creates here, and its private endpoint.

    `outbound`: the managed network's own outbound rules (the default storage, vault and registry
    get theirs automatically). The network is provisioned when the workspace is created
    (`provisionNetworkNow`), so online deployments find it ready: "To create an online deployment,
    you must manually provision the managed network, or create a compute instance first"
    (how-to-managed-network; review B7).
    """
    rg = ctx.upstream_output(data, "resource_group_name")
    identity = ctx.upstream_output(data, "workspace_identity_id")
    cmk_identity = ctx.upstream_output(data, "cmk_identity_id")
    # Workspace names take 33 characters: platform and namespace are cut to fit.
    workspace_name = f"mlw-{compact(ctx.platform)[:11]}-{compact(ctx.namespace.name)[:8]}-{name[:8]}"
    if len(workspace_name) > 33:
        raise ctx.error("name", f"the Azure ML workspace name {workspace_name!r} is {len(workspace_name)} "
                                f"characters; Azure allows 33")
    managed_network: dict[str, Any] = {"isolationMode": isolation}
    if outbound:
        managed_network["outboundRules"] = outbound
    resource = azapi(ctx, name, "workspaces", workspace_name, ctx.upstream_output(data, "resource_group_id"), {
        "kind": kind,
        "sku": {"name": "Basic", "tier": "Basic"},
        "properties": {
            "friendlyName": workspace_name,
            "applicationInsights": insights.attr("id"),
            "keyVault": ctx.upstream_output(data, "key_vault_id"),
            # Its own StorageV2 account: Azure ML refuses the HNS lake as default storage (storage.py).
            "storageAccount": ctx.upstream_output(data, "workspace_storage_account_id"),
            "systemDatastoresAuthMode": "Identity",
            "primaryUserAssignedIdentity": identity,
            "publicNetworkAccess": "Disabled",
            "hbiWorkspace": True,
            "v1LegacyMode": False,
            "managedNetwork": managed_network,
            "provisionNetworkNow": True,
            # The key's own identity, distinct from the workspace's ("can be the same or different as
            # the workspace primary user assigned managed identity", how-to-setup-customer-managed-keys).
            # A versioned key URL, as every Microsoft example passes it (review B2).
            "encryption": {
                "status": "Enabled",
                "identity": {"userAssignedIdentity": cmk_identity},
                "keyVaultProperties": {"keyVaultArmId": ctx.upstream_output(data, "key_vault_id"),
                                       "keyIdentifier": ctx.upstream_output(data, "key_version_id")},
            },
            **properties,
        },
    }, api=WORKSPACE_API, location=location(ctx), tags=ctx.tags("-"),
        identity=Block({"type": "UserAssigned", "identity_ids": [identity, cmk_identity, *extra_identities]}),
        lifecycle=Lifecycle(prevent_destroy=protect))
    principal = ctx.upstream_output(data, "workspace_identity_principal_id")
    roles = [grant(f"{name}_workspace_insights", insights.attr("id"), "Contributor", principal),
             grant(f"{name}_workspace_self", resource.attr("id"), "Contributor", principal)]
    resource.depends_on = (roles[0],)
    zones = ctx.upstream_output(data, "private_dns_zone_ids")
    endpoint = private_endpoint(ctx, f"{name}_workspace", rg, resource.attr("id"), "amlworkspace",
                                ctx.upstream_output(data, "endpoints_subnet_id"), zones["amlworkspace"],
                                zones["notebooks"])
    return [resource, *roles, endpoint]
