"""The platform's Key Vault and its customer-managed key, created through the control plane.

The vault has no public network access, and the first apply runs before any private endpoint or
DNS link exists, so nothing here may touch the vault's data plane. `azurerm_key_vault_key` is a
data-plane resource (it creates, reads and reads the rotation policy of the key at
`<vault>.vault.azure.net`, refused with 403 ForbiddenByConnection from outside the VNet; review
A2), so the key is an azapi `Microsoft.KeyVault/vaults/keys` resource: an ARM call, which "is not
affected by firewalls and virtual network rules" and needs Key Vault Contributor (or Contributor)
on the vault, not a data-plane role (learn.microsoft.com/azure/key-vault/general/
overview-vnet-service-endpoints, .../key-vault/keys/how-to-configure-key-rotation).
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.data import DataInfrastructure
from ..terraform import Block, Lifecycle, Resource
from .common import KEYS_API, grant, location, short_name, tagged, use_azapi

# Rotation: a new version 11 months after each version is created, each version expiring after a
# year. `timeAfterCreate` is the trigger that needs no expiration date on the key: "Automatically
# renew at a given time before expiry ... requires 'Expiry Time' set on rotation policy and
# 'Expiration Date' set on the key", which a key created here has not (how-to-configure-key-rotation;
# review A10). `expiryTime` sets the expiration of each rotated version.
ROTATION = {
    "attributes": {"expiryTime": "P1Y"},
    "lifetimeActions": [{"trigger": {"timeAfterCreate": "P11M"}, "action": {"type": "rotate"}}],
}


def vault_and_key(t: DataInfrastructure, ctx: StackContext, rg: Any, cmk_identity: Resource) -> list[Resource]:
    """The vault (RBAC, purge protection, private), the key, and the key's user."""
    azure = ctx.namespace.azure
    assert azure is not None
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
    use_azapi(ctx)
    # ARM's PUT of a key creates its first version only and never updates an existing key: a change of
    # the rotation policy here is applied to new keys, not to this one (REST: Keys - Create If Not Exist).
    key = Resource("azapi_resource", "cmk", {
        "type": f"Microsoft.KeyVault/vaults/keys@{KEYS_API}",
        "name": "data",
        "parent_id": vault.attr("id"),
        "body": {"properties": {
            "kty": "RSA-HSM",
            "keySize": 3072,
            "keyOps": ["wrapKey", "unwrapKey"],
            "rotationPolicy": ROTATION,
        }},
        "response_export_values": ["properties.keyUri", "properties.keyUriWithVersion"],
    }, lifecycle=Lifecycle(prevent_destroy=not t.force_destroy))
    cmk_access = grant("cmk_key_user", vault.attr("id"), "Key Vault Crypto Service Encryption User",
                       cmk_identity.attr("principal_id"))
    return [vault, key, cmk_access]


def key_uri(key: Resource) -> Any:
    """The versionless key URI: storage and the registry follow its rotations."""
    return key.attr("output.properties.keyUri")


def key_uri_with_version(key: Resource) -> Any:
    """The URI of the key's current version, which Azure ML's workspace encryption takes."""
    return key.attr("output.properties.keyUriWithVersion")
