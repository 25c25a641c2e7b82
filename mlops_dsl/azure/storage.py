"""The platform's storage accounts: the ADLS Gen2 data lake, and the workspaces' own default storage.

Both are private, on the customer-managed key, without shared keys. They are separate accounts
because Azure ML refuses a hierarchical-namespace account as a workspace's default storage: "You
can't use an existing Azure Storage account if it is: ... An account with hierarchical namespace
(used with Azure Data Lake Storage Gen2). You can use premium storage or hierarchical namespace as
extra storage by creating a datastore" (learn.microsoft.com/azure/machine-learning/concept-workspace;
review A3). The lake reaches the workspaces as ADLS Gen2 datastores and as the feature store's
offline store.
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.data import DataInfrastructure
from ..terraform import Block, CheckovSkip, Lifecycle, Resource
from .common import location, short_name, tagged

STORAGE_SKIPS = (
    CheckovSkip("CKV_AZURE_33", "no queues are used; inline queue logging needs shared-key data-plane access, "
                                "which this account disables"),
    CheckovSkip("CKV2_AZURE_20", "storage analytics via azurerm_log_analytics_storage_insights needs the account "
                                 "key, which is disabled; blob logs go through a diagnostic setting instead"),
    CheckovSkip("CKV2_AZURE_21", "same as CKV2_AZURE_20: blob logs go through a diagnostic setting"),
)


LAKE_PREFIX = "st"  # the lake's account: st<platform><namespace>, cut to 24 characters


def account(t: DataInfrastructure, ctx: StackContext, name: str, prefix: str, rg: Any, cmk_identity: Resource,
            key_uri: Any, hns: bool, depends_on: tuple[Resource, ...]) -> Resource:
    """A private StorageV2 account on the platform key (versionless, so it follows rotations)."""
    return Resource("azurerm_storage_account", name, tagged(ctx, {
        "name": short_name(ctx, prefix, 24),
        "resource_group_name": rg,
        "location": location(ctx),
        "account_kind": "StorageV2",
        "account_tier": "Standard",
        "account_replication_type": "GZRS",
        "is_hns_enabled": hns,
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
            "key_vault_key_id": key_uri,
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
    }), depends_on=depends_on, skips=STORAGE_SKIPS, lifecycle=Lifecycle(prevent_destroy=not t.force_destroy))


def lake_zones(t: DataInfrastructure, lake: Resource) -> dict[str, Resource]:
    """One private container per data zone."""
    return {zone: Resource("azurerm_storage_container", zone.replace("-", "_"), {
        "name": zone,
        "storage_account_id": lake.attr("id"),
        "container_access_type": "private",
    }, skips=(STORAGE_SKIPS[2],)) for zone in t.zones}


def lake_lifecycle(t: DataInfrastructure, lake: Resource) -> Resource:
    return Resource("azurerm_storage_management_policy", "lake", {
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
    })
