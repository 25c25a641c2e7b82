"""The terraform block, provider and azurerm state backend of every Azure stack."""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..terraform import Backend, Block, Provider, RequiredProvider, Settings

REQUIRED_VERSION = ">= 1.10"
AZURERM_PROVIDER = RequiredProvider("hashicorp/azurerm", ">= 4.55, < 5.0")


def _backend_config(ctx: StackContext, template: str) -> dict[str, Any]:
    azure = ctx.namespace.azure
    assert azure is not None
    return {
        "subscription_id": azure.subscription_id,
        "resource_group_name": azure.backend.resource_group_name,
        "storage_account_name": azure.backend.storage_account_name,
        "container_name": azure.backend.container_name,
        "key": ctx.state_key(template),
        # Entra ID instead of the account's shared keys, which a secure state account disables.
        "use_azuread_auth": True,
    }


def settings(ctx: StackContext) -> tuple[Settings, list[Provider]]:
    azure = ctx.namespace.azure
    assert azure is not None
    provider = Provider("azurerm", {
        "subscription_id": azure.subscription_id,
        "tenant_id": azure.tenant_id,
        "storage_use_azuread": True,
        # The storage accounts disable public network access, and the runner of a first apply cannot
        # reach their private endpoints: azurerm 4.x otherwise polls and reads the blob, queue, file and
        # static-website data planes of every account it creates or refreshes, and a 403 there fails the
        # apply (internal/features/defaults.go `DataPlaneAvailable: true`; storage_account_resource.go;
        # website/docs/guides/features-block: "Setting this to false will bypass availability checks";
        # review A1). No stack sets queue_properties or static_website, which need the data plane.
        "features": Block({"storage": Block({"data_plane_available": False})}),
    })
    return (Settings(REQUIRED_VERSION, {"azurerm": AZURERM_PROVIDER},
                     Backend("azurerm", _backend_config(ctx, ctx.template.name))), [provider])


def remote_state(ctx: StackContext, upstream: str) -> dict[str, Any]:
    return {"backend": "azurerm", "config": _backend_config(ctx, upstream)}
