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
from ..terraform import Block, DataSource, Lifecycle, Resource
from .common import (
    AZUREAD_PROVIDER,
    KEYS_API,
    TIME_PROVIDER,
    grant,
    location,
    short_name,
    tagged,
    use_azapi,
    use_provider,
)

# Rotation: a new version 11 months after each version is created, each version expiring after a
# year. `timeAfterCreate` is the trigger that needs no expiration date on the key: "Automatically
# renew at a given time before expiry ... requires 'Expiry Time' set on rotation policy and
# 'Expiration Date' set on the key", which a key created here has not (how-to-configure-key-rotation;
# review A10). `expiryTime` sets the expiration of each rotated version.
ROTATION = {
    "attributes": {"expiryTime": "P1Y"},
    "lifetimeActions": [{"trigger": {"timeAfterCreate": "P11M"}, "action": {"type": "rotate"}}],
}


# Azure Cosmos DB's first-party application: a workspace on a customer-managed key keeps its metadata
# in a Microsoft-managed Cosmos DB account, which must reach the key ("Allow Azure Cosmos DB to access
# the key ... Get, Unwrap Key, and Wrap key ... a232010e-820c-4083-83bb-3ace5fc29d0b",
# learn.microsoft.com/azure/machine-learning/how-to-setup-customer-managed-keys; review B2). Its
# object id differs per tenant, so it is looked up (the applying principal reads service principals).
COSMOS_DB_APP_ID = "a232010e-820c-4083-83bb-3ace5fc29d0b"
# "When you assign roles ... it can take up to 10 minutes for changes to take effect" (Azure RBAC
# troubleshooting): the key's users wait before an account is encrypted with it (review B12).
ROLE_PROPAGATION = "180s"


def vault_and_key(t: DataInfrastructure, ctx: StackContext, rg: Any,
                  cmk_identity: Resource) -> list[Resource | DataSource]:
    """The vault (RBAC, purge protection, private), the key, its users, and a wait for their roles.
    The last item is the wait: what encrypts with the key depends on it."""
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
    azure = ctx.namespace.azure
    use_provider(ctx, "azuread", AZUREAD_PROVIDER, {"tenant_id": azure.tenant_id})
    cosmos = DataSource("azuread_service_principal", "cosmos_db", {"client_id": COSMOS_DB_APP_ID})
    cosmos_access = grant("cosmos_db_key_user", vault.attr("id"), "Key Vault Crypto Service Encryption User",
                          cosmos.attr("object_id"))
    use_provider(ctx, "time", TIME_PROVIDER, {})
    wait = Resource("time_sleep", "key_users", {"create_duration": ROLE_PROPAGATION},
                    depends_on=(cmk_access, cosmos_access))
    return [vault, key, cmk_access, cosmos, cosmos_access, wait]


def key_uri(key: Resource) -> Any:
    """The versionless key URI: storage and the registry follow its rotations."""
    return key.attr("output.properties.keyUri")


def key_uri_with_version(key: Resource) -> Any:
    """The URI of the key's current version, which Azure ML's workspace encryption takes."""
    return key.attr("output.properties.keyUriWithVersion")
