"""The platform's container registry in a namespace: where the training, ingestion and serving images
are pushed (`mlops images`) and pulled from.

It belongs to the data stack, the first to apply, because two stacks pull from it: the feature
store's ingestion jobs (features stack) and the training, batch and serving workloads (training and
serving stacks). Declared by the training stack, as it was, the features stack could neither scope
its ingestion identity's AcrPull to it nor give the feature store's managed network a
private-endpoint rule to it: the registry takes no public traffic, so the ingestion cluster could
not pull its image at all.

Premium (private endpoints, the managed networks' rules to it, a dedicated data endpoint), admin
off, no anonymous pull, no public network access, 30-day retention of untagged manifests, zone
redundant, encrypted with the platform's key read as the `cmk` identity (azurerm's `encryption`
requires `identity_client_id`, container_registry_resource.go; review B3).
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..terraform import Block, CheckovSkip, Resource
from .common import grant, location, private_endpoint, registry_name, tagged

REGISTRY_SKIPS = (
    CheckovSkip("CKV_AZURE_164", "Docker Content Trust is being retired by Azure; images are pinned by "
                                 "content-hash tags"),
    CheckovSkip("CKV_AZURE_166", "quarantine blocks every pull until a scanner marks the image Passed, and no "
                                 "scanner runs here: the compute and the endpoints could pull nothing"),
    CheckovSkip("CKV_AZURE_165", "geo-replication needs a second region; opt in per platform"),
)


def render_container_registry(ctx: StackContext, rg: Any, ids: dict[str, Resource], key_id: Any,
                              key_users: Resource, endpoints_subnet: Any, zone_id: Any) -> list[Resource]:
    """The registry, its private endpoint, and the pulls of the identities that run our images.

    The workload (training jobs) and endpoint (online deployments) identities pull here; the
    workspaces' identity gets Contributor, as Azure ML requires of a workspace's registry; the
    ingestion and batch identities are granted AcrPull by the stacks that create them.
    """
    registry = Resource("azurerm_container_registry", "main", tagged(ctx, {
        "name": registry_name(ctx.platform, ctx.namespace.name),
        "resource_group_name": rg,
        "location": location(ctx),
        "sku": "Premium",
        "admin_enabled": False,
        "anonymous_pull_enabled": False,
        "public_network_access_enabled": False,
        "network_rule_bypass_option": "AzureServices",
        "export_policy_enabled": False,
        # Quarantine hides every pushed image until something marks it Passed ("any images without being
        # marked as good will be blocked for pull", Azure/acr docs/preview/quarantine; review A7).
        "quarantine_policy_enabled": False,
        "retention_policy_in_days": 30,
        "zone_redundancy_enabled": True,
        "data_endpoint_enabled": True,
        "identity": Block({"type": "UserAssigned", "identity_ids": [ids["cmk"].attr("id")]}),
        "encryption": Block({"key_vault_key_id": key_id, "identity_client_id": ids["cmk"].attr("client_id")}),
    }), skips=REGISTRY_SKIPS, depends_on=(key_users,))
    return [
        registry,
        private_endpoint(ctx, "registry", rg, registry.attr("id"), "registry", endpoints_subnet, zone_id),
        grant("workload_pull", registry.attr("id"), "AcrPull", ids["workload"].attr("principal_id")),
        grant("endpoint_pull", registry.attr("id"), "AcrPull", ids["endpoint"].attr("principal_id")),
        grant("workspace_registry", registry.attr("id"), "Contributor", ids["workspace"].attr("principal_id")),
    ]
