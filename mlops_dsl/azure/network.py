"""The platform's VNet: a workloads and an endpoints subnet, each with an NSG, and the private DNS
zones of every private-link service the platform uses, created once here and linked to the VNet."""

from __future__ import annotations

import ipaddress
from typing import Any

from ..context import StackContext
from ..templates.data import DataInfrastructure
from ..terraform import Resource
from .common import location, tagged

# Zones the workspaces and endpoints downstream resolve privately. An Azure ML workspace's
# `amlworkspace` endpoint registers in two zones, api.azureml.ms and notebooks.azure.net
# (learn.microsoft.com/azure/private-link/private-endpoint-dns, "Azure Machine Learning").
DNS_ZONES = {
    "blob": "privatelink.blob.core.windows.net",
    "dfs": "privatelink.dfs.core.windows.net",
    "file": "privatelink.file.core.windows.net",
    "vault": "privatelink.vaultcore.azure.net",
    "registry": "privatelink.azurecr.io",
    "amlworkspace": "privatelink.api.azureml.ms",
    "notebooks": "privatelink.notebooks.azure.net",
    "redisCache": "privatelink.redis.cache.windows.net",
}


def vnet_and_zones(t: DataInfrastructure, ctx: StackContext, rg: Any) -> tuple[dict[str, Resource],
                                                                                 dict[str, Resource]]:
    """Adds the VNet, its subnets and the DNS zones to the stack; returns subnets and zones by name."""
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
    return subnets, zones
