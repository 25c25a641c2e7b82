"""DataInfrastructure on Azure: a private data lake encrypted with the platform's own key, the
workspaces' default storage, the identities of the platform, its VNet and private DNS zones, and
its container registry (container_registry.py: every later stack pulls from it).

No public network access anywhere: the storage accounts, the Key Vault, the container registry and
(downstream) the model registry and the workspaces are reached through private endpoints in the
platform's VNet. The stack itself touches control planes only (the key through ARM, storage with
the provider's data-plane calls switched off, see provider.py), so its first apply needs no
network path; the downstream stacks' first applies neither. Operators and the image push need a runner whose VNet
is peered with this one and linked to its DNS zones (README, "First apply").
"""

from __future__ import annotations

from ..context import StackContext
from ..templates.data import DataInfrastructure
from ..terraform import Block, Output, Resource, interp
from . import budget
from .common import grant, location, private_endpoint, tagged
from .container_registry import render_container_registry
from .keys import ROLE_PROPAGATION, key_uri, key_uri_with_version, vault_and_key
from .network import DNS_ZONES, vnet_and_zones
from .storage import LAKE_PREFIX, STORAGE_SKIPS, account, lake_lifecycle, lake_zones

__all__ = ["DNS_ZONES", "STORAGE_SKIPS", "render"]

# Who does what: the key's identity only uses the key; the workspaces act as their own identity
# (with the roles Azure ML lists for a user-assigned workspace identity, review B1); training jobs
# run as `workload`, feature materialization as `materialization` (its roles are granted by the
# feature store, which knows its offline zone), the online endpoints as `endpoint`.
IDENTITIES = ("cmk", "workspace", "workload", "materialization", "endpoint")


def render(t: DataInfrastructure, ctx: StackContext) -> None:
    group = Resource("azurerm_resource_group", "main",
                     tagged(ctx, {"name": f"rg-{ctx.name}", "location": location(ctx)}))
    ctx.stack.add(group)
    budget.render(ctx, group)
    rg = group.attr("name")

    ids = {n: Resource("azurerm_user_assigned_identity", n, tagged(ctx, {
        "name": f"id-{ctx.name}-{n}", "location": location(ctx), "resource_group_name": rg})) for n in IDENTITIES}
    ctx.stack.add(*ids.values())
    key_resources = vault_and_key(t, ctx, rg, ids["cmk"])
    vault, key, key_users = key_resources[0], key_resources[1], key_resources[-1]
    ctx.stack.add(*key_resources)
    subnets, zones = vnet_and_zones(t, ctx, rg)

    lake = account(t, ctx, "lake", LAKE_PREFIX, rg, ids["cmk"], key_uri(key), hns=True, depends_on=(key_users,))
    workspace_storage = account(t, ctx, "workspace", "stml", rg, ids["cmk"], key_uri(key), hns=False,
                                depends_on=(key_users,))
    containers = lake_zones(t, lake)
    ctx.stack.add(lake, *containers.values(), lake_lifecycle(t, lake), workspace_storage)
    endpoints = subnets["endpoints"].attr("id")
    ctx.stack.add(
        private_endpoint(ctx, "lake_blob", rg, lake.attr("id"), "blob", endpoints, zones["blob"].attr("id")),
        private_endpoint(ctx, "lake_dfs", rg, lake.attr("id"), "dfs", endpoints, zones["dfs"].attr("id")),
        private_endpoint(ctx, "workspace_blob", rg, workspace_storage.attr("id"), "blob", endpoints,
                         zones["blob"].attr("id")),
        private_endpoint(ctx, "workspace_file", rg, workspace_storage.attr("id"), "file", endpoints,
                         zones["file"].attr("id")),
        private_endpoint(ctx, "vault", rg, vault.attr("id"), "vault", endpoints, zones["vault"].attr("id")),
    )
    registry_resources = render_container_registry(ctx, rg, ids, key_uri(key), key_users, endpoints,
                                                   zones["registry"].attr("id"))
    registry = registry_resources[0]
    ctx.stack.add(*registry_resources)
    principal = {n: i.attr("principal_id") for n, i in ids.items()}
    for zone, container in containers.items():
        z = zone.replace("-", "_")
        ctx.stack.add(grant(f"workload_{z}", container.attr("id"), "Storage Blob Data Contributor",
                            principal["workload"]),
                      # the workspaces' identity-based datastores read the lake as the workspace
                      grant(f"workspace_{z}", container.attr("id"), "Storage Blob Data Reader",
                            principal["workspace"]))
    if "models" in containers:  # the endpoints mount the registered models from the models zone
        ctx.stack.add(grant("endpoint_models", containers["models"].attr("id"), "Storage Blob Data Reader",
                            principal["endpoint"]))
    # The roles Azure ML requires on a user-assigned workspace identity (learn.microsoft.com/azure/
    # machine-learning/how-to-identity-based-service-authentication, "User-assigned managed identity"):
    # Contributor and the data roles on its storage, Contributor and Key Vault Administrator on an
    # RBAC vault; the registry, App Insights and the workspace itself are granted where they are made.
    # Network Connection Approver lets it approve the managed network's private endpoints
    # (how-to-managed-network: "add the Azure AI Enterprise Network Connection Approver role").
    for name, scope, role in (
        ("workspace_storage", workspace_storage.attr("id"), "Contributor"),
        ("workspace_storage_blob", workspace_storage.attr("id"), "Storage Blob Data Contributor"),
        ("workspace_storage_file", workspace_storage.attr("id"), "Storage File Data Privileged Contributor"),
        ("workspace_vault", vault.attr("id"), "Contributor"),
        ("workspace_vault_admin", vault.attr("id"), "Key Vault Administrator"),
        ("workspace_network", group.attr("id"), "Azure AI Enterprise Network Connection Approver"),
    ):
        ctx.stack.add(grant(name, scope, role, principal["workspace"]))
    # Data collection writes the endpoints' requests and responses to the workspace's default blob
    # store (how-to-collect-production-data: assign Storage Blob Data Contributor to the endpoint's
    # identity; review B9).
    ctx.stack.add(grant("endpoint_collection", workspace_storage.attr("id"), "Storage Blob Data Contributor",
                        principal["endpoint"]))
    # The workspaces and endpoints downstream use these roles as soon as this stack is applied: the
    # apply ends only once the role assignments had time to take effect (keys.ROLE_PROPAGATION).
    ctx.stack.add(Resource("time_sleep", "roles", {"create_duration": ROLE_PROPAGATION}, depends_on=tuple(
        r for r in ctx.stack.resources if r.type == "azurerm_role_assignment")))

    logs = Resource("azurerm_log_analytics_workspace", "main", tagged(ctx, {
        "name": f"log-{ctx.name}",
        "location": location(ctx),
        "resource_group_name": rg,
        "sku": "PerGB2018",
        "retention_in_days": min(max(t.log_retention_days, 30), 730),
        "local_authentication_enabled": False,
    }))
    ctx.stack.add(logs)
    for name, target, categories in (
        ("vault", vault.attr("id"), ["audit"]),
        ("lake_blob", interp("", lake.attr("id"), "/blobServices/default"), ["audit", "allLogs"]),
    ):
        ctx.stack.add(Resource("azurerm_monitor_diagnostic_setting", name, {
            "name": f"diag-{name.replace('_', '-')}",
            "target_resource_id": target,
            "log_analytics_workspace_id": logs.attr("id"),
            "enabled_log": [Block({"category_group": c}) for c in categories],
        }))

    ctx.stack.add(
        Output("resource_group_name", rg, description="Resource group of the platform in this namespace"),
        Output("resource_group_id", group.attr("id"), description="Its id"),
        Output("storage_account_id", lake.attr("id"), description="The ADLS Gen2 data lake"),
        Output("storage_account_name", lake.attr("name"), description="The ADLS Gen2 data lake's name"),
        Output("workspace_storage_account_id", workspace_storage.attr("id"),
               description="Default storage of the Azure ML workspaces (no hierarchical namespace)"),
        Output("container_ids", {z: c.attr("id") for z, c in containers.items()},
               description="Storage container of each data zone"),
        Output("key_vault_id", vault.attr("id"), description="Key Vault holding the platform key"),
        Output("key_id", key_uri(key), description="The platform's customer-managed key (versionless)"),
        Output("key_version_id", key_uri_with_version(key), description="Its current version"),
        *(o for n, i in ids.items() for o in (
            Output(f"{n}_identity_id", i.attr("id"), description=f"The {n} identity"),
            Output(f"{n}_identity_client_id", i.attr("client_id"), description="Its client id"),
            Output(f"{n}_identity_principal_id", i.attr("principal_id"), description="Its principal id"))),
        Output("endpoints_subnet_id", endpoints, description="Subnet for private endpoints"),
        Output("private_dns_zone_ids", {k: z.attr("id") for k, z in zones.items()},
               description="Private DNS zone of each private-link service"),
        Output("log_analytics_workspace_id", logs.attr("id"), description="Log Analytics workspace"),
        Output("container_registry_id", registry.attr("id"), description="The platform's container registry"),
        Output("registry_login_server", registry.attr("login_server"), description="Its host"),
    )
