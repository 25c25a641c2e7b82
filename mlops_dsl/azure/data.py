"""DataInfrastructure on Azure: a private data lake encrypted with the platform's own key.

No public network access anywhere: the storage account, the Key Vault and (downstream) the
registry and the workspaces are reached through private endpoints in the platform's VNet, so
`terraform apply` must run where it can reach them (a runner inside or peered with the VNet).
"""

from __future__ import annotations

import ipaddress

from ..context import StackContext
from ..templates.data import DataInfrastructure
from ..terraform import Block, CheckovSkip, DataSource, Lifecycle, Output, Resource, interp
from .common import location, private_endpoint, short_name, tagged

# Zones the workspaces and endpoints downstream resolve privately; created once, here.
DNS_ZONES = {
    "blob": "privatelink.blob.core.windows.net",
    "dfs": "privatelink.dfs.core.windows.net",
    "vault": "privatelink.vaultcore.azure.net",
    "registry": "privatelink.azurecr.io",
    "amlworkspace": "privatelink.api.azureml.ms",
    "notebooks": "privatelink.notebooks.azure.net",
    "redisCache": "privatelink.redis.cache.windows.net",
}
STORAGE_SKIPS = (
    CheckovSkip("CKV_AZURE_33", "no queues are used; inline queue logging needs shared-key data-plane access, "
                                "which this account disables"),
    CheckovSkip("CKV2_AZURE_20", "storage analytics via azurerm_log_analytics_storage_insights needs the account "
                                 "key, which is disabled; blob logs go through a diagnostic setting instead"),
    CheckovSkip("CKV2_AZURE_21", "same as CKV2_AZURE_20: blob logs go through a diagnostic setting"),
)


def render(t: DataInfrastructure, ctx: StackContext) -> None:
    azure = ctx.namespace.azure
    assert azure is not None
    client = DataSource("azurerm_client_config", "current")
    group = Resource("azurerm_resource_group", "main",
                     tagged(ctx, {"name": f"rg-{ctx.name}", "location": location(ctx)}))
    ctx.stack.add(client, group)
    rg = group.attr("name")

    cmk_identity = Resource("azurerm_user_assigned_identity", "cmk", tagged(ctx, {
        "name": f"id-{ctx.name}-cmk", "location": location(ctx), "resource_group_name": rg}))
    workload = Resource("azurerm_user_assigned_identity", "workload", tagged(ctx, {
        "name": f"id-{ctx.name}-workload", "location": location(ctx), "resource_group_name": rg}))
    vault = Resource("azurerm_key_vault", "main", tagged(ctx, {
        "name": short_name(ctx, "kv", 24),
        "location": location(ctx),
        "resource_group_name": rg,
        "tenant_id": azure.tenant_id,
        "sku_name": "premium",  # HSM-backed keys
        "rbac_authorization_enabled": True,
        "purge_protection_enabled": True,  # required for customer-managed keys
        "soft_delete_retention_days": 90,
        "public_network_access_enabled": False,
        "network_acls": Block({"bypass": "AzureServices", "default_action": "Deny"}),
    }))
    deployer = Resource("azurerm_role_assignment", "deployer_keys", {
        "scope": vault.attr("id"),
        "role_definition_name": "Key Vault Crypto Officer",
        "principal_id": client.attr("object_id"),
    })
    key = Resource("azurerm_key_vault_key", "cmk", {
        "name": "data",
        "key_vault_id": vault.attr("id"),
        "key_type": "RSA-HSM",
        "key_size": 3072,
        "key_opts": ["wrapKey", "unwrapKey"],
        "rotation_policy": Block({
            "automatic": Block({"time_before_expiry": "P30D"}),
            "expire_after": "P1Y",
            "notify_before_expiry": "P29D",
        }),
    }, depends_on=(deployer,), skips=(CheckovSkip(
        "CKV_AZURE_40", "the rotation policy creates a new version every year and expires old ones; a fixed "
                        "expiration date on the resource would force its replacement"),))
    cmk_access = Resource("azurerm_role_assignment", "cmk_key_user", {
        "scope": vault.attr("id"),
        "role_definition_name": "Key Vault Crypto Service Encryption User",
        "principal_id": cmk_identity.attr("principal_id"),
    })
    ctx.stack.add(cmk_identity, workload, vault, deployer, key, cmk_access)

    network = ipaddress.ip_network(t.vpc_cidr)
    workloads_cidr, endpoints_cidr = list(network.subnets(new_prefix=min(network.prefixlen + 4, 28)))[:2]
    vnet = Resource("azurerm_virtual_network", "main", tagged(ctx, {
        "name": f"vnet-{ctx.name}", "location": location(ctx), "resource_group_name": rg,
        "address_space": [t.vpc_cidr]}))
    ctx.stack.add(vnet)
    subnets = {}
    for name, cidr in (("workloads", workloads_cidr), ("endpoints", endpoints_cidr)):
        subnet = Resource("azurerm_subnet", name, {
            "name": f"snet-{name}",
            "resource_group_name": rg,
            "virtual_network_name": vnet.attr("name"),
            "address_prefixes": [str(cidr)],
            "default_outbound_access_enabled": False,
            "private_endpoint_network_policies": "Enabled",
        })
        nsg = Resource("azurerm_network_security_group", name, tagged(ctx, {
            "name": f"nsg-{ctx.name}-{name}", "location": location(ctx), "resource_group_name": rg}))
        subnets[name] = subnet
        ctx.stack.add(subnet, nsg, Resource("azurerm_subnet_network_security_group_association", name, {
            "subnet_id": subnet.attr("id"), "network_security_group_id": nsg.attr("id")}))
    zones = {}
    for key_name, zone_name in DNS_ZONES.items():
        zone = Resource("azurerm_private_dns_zone", key_name,
                        tagged(ctx, {"name": zone_name, "resource_group_name": rg}))
        zones[key_name] = zone
        ctx.stack.add(zone, Resource("azurerm_private_dns_zone_virtual_network_link", key_name, tagged(ctx, {
            "name": f"link-{key_name}",
            "resource_group_name": rg,
            "private_dns_zone_name": zone.attr("name"),
            "virtual_network_id": vnet.attr("id"),
            "registration_enabled": False,
        })))

    lake = Resource("azurerm_storage_account", "lake", tagged(ctx, {
        "name": short_name(ctx, "st", 24),
        "resource_group_name": rg,
        "location": location(ctx),
        "account_kind": "StorageV2",
        "account_tier": "Standard",
        "account_replication_type": "GZRS",
        "is_hns_enabled": True,  # ADLS Gen2
        "https_traffic_only_enabled": True,
        "min_tls_version": "TLS1_2",
        "public_network_access_enabled": False,
        "allow_nested_items_to_be_public": False,
        "shared_access_key_enabled": False,
        "default_to_oauth_authentication": True,
        "local_user_enabled": False,
        "infrastructure_encryption_enabled": True,
        "cross_tenant_replication_enabled": False,
        "identity": Block({"type": "UserAssigned", "identity_ids": [cmk_identity.attr("id")]}),
        "customer_managed_key": Block({
            "key_vault_key_id": key.attr("versionless_id"),
            "user_assigned_identity_id": cmk_identity.attr("id"),
        }),
        "network_rules": Block({"default_action": "Deny", "bypass": ["AzureServices"]}),
        # Hierarchical-namespace accounts support neither blob versioning nor change feed yet:
        # soft delete of blobs and containers is what recovers data here.
        "blob_properties": Block({
            "delete_retention_policy": Block({"days": 30}),
            "container_delete_retention_policy": Block({"days": 30}),
        }),
        "sas_policy": Block({"expiration_period": "00.01:00:00", "expiration_action": "Log"}),
    }), depends_on=(cmk_access,), skips=STORAGE_SKIPS,
        lifecycle=Lifecycle(prevent_destroy=not t.force_destroy))
    ctx.stack.add(lake)
    containers = {}
    for zone in t.zones:
        container = Resource("azurerm_storage_container", zone.replace("-", "_"), {
            "name": zone,
            "storage_account_id": lake.attr("id"),
            "container_access_type": "private",
        }, skips=(STORAGE_SKIPS[2],))
        containers[zone] = container
        ctx.stack.add(container)
    ctx.stack.add(Resource("azurerm_storage_management_policy", "lake", {
        "storage_account_id": lake.attr("id"),
        # Tiering is what lifecycle management supports on a hierarchical namespace; data is never
        # deleted by default. Objects untouched for `noncurrent_version_days` move to the cool tier.
        "rule": Block({
            "name": "cool-untouched-data",
            "enabled": True,
            "filters": Block({"blob_types": ["blockBlob"]}),
            "actions": Block({"base_blob": Block({
                "tier_to_cool_after_days_since_modification_greater_than": t.noncurrent_version_days})}),
        }),
    }))
    endpoints = subnets["endpoints"].attr("id")
    ctx.stack.add(
        private_endpoint(ctx, "lake_blob", rg, lake.attr("id"), "blob", endpoints, zones["blob"].attr("id")),
        private_endpoint(ctx, "lake_dfs", rg, lake.attr("id"), "dfs", endpoints, zones["dfs"].attr("id")),
        private_endpoint(ctx, "vault", rg, vault.attr("id"), "vault", endpoints, zones["vault"].attr("id")),
    )
    for zone, container in containers.items():
        ctx.stack.add(Resource("azurerm_role_assignment", f"workload_{zone.replace('-', '_')}", {
            "scope": container.attr("id"),
            "role_definition_name": "Storage Blob Data Contributor",
            "principal_id": workload.attr("principal_id"),
        }))

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
        Output("storage_account_id", lake.attr("id"), description="The ADLS Gen2 data lake"),
        Output("storage_account_name", lake.attr("name"), description="The ADLS Gen2 data lake's name"),
        Output("container_ids", {z: c.attr("id") for z, c in containers.items()},
               description="Storage container of each data zone"),
        Output("key_vault_id", vault.attr("id"), description="Key Vault holding the platform key"),
        Output("key_id", key.attr("versionless_id"), description="The platform's customer-managed key"),
        Output("cmk_identity_id", cmk_identity.attr("id"), description="Identity that may use the key"),
        Output("cmk_identity_client_id", cmk_identity.attr("client_id"), description="Its client id"),
        Output("workload_identity_id", workload.attr("id"), description="Identity of jobs and endpoints"),
        Output("workload_identity_client_id", workload.attr("client_id"), description="Its client id"),
        Output("workload_identity_principal_id", workload.attr("principal_id"), description="Its principal id"),
        Output("endpoints_subnet_id", endpoints, description="Subnet for private endpoints"),
        Output("private_dns_zone_ids", {k: z.attr("id") for k, z in zones.items()},
               description="Private DNS zone of each private-link service"),
        Output("log_analytics_workspace_id", logs.attr("id"), description="Log Analytics workspace"),
    )
