"""What every Azure rendering shares: names within Azure's rules, tags, sizes, schedules, azapi."""

from __future__ import annotations

import re
from typing import Any

from ..context import StackContext
from ..terraform import Block, Lifecycle, Provider, RequiredProvider, Resource, Value

AZAPI_PROVIDER = RequiredProvider("azure/azapi", ">= 2.0, < 3.0")
AZUREAD_PROVIDER = RequiredProvider("hashicorp/azuread", ">= 3.0, < 4.0")
TIME_PROVIDER = RequiredProvider("hashicorp/time", ">= 0.12, < 1.0")
# The API version of each azapi type, read against the types azapi embeds
# (github.com/Azure/terraform-provider-azapi internal/azure/generated/<rp>/<type>/<version>/types.json):
# - ML_API, the assets, endpoints, connections and schedules: the stable version the stacks were written for.
# - WORKSPACE_API, the workspaces: the first stable version with `systemDatastoresAuthMode`, which
#   2024-10-01 does not have (azapi drops unknown properties silently; review A4).
# - KEYS_API, Key Vault keys through the control plane: has `rotationPolicy` (review A2).
ML_API = "2024-10-01"
WORKSPACE_API = "2025-06-01"
KEYS_API = "2023-07-01"

# The same blueprint runs on both clouds: SageMaker instance types map to Azure VM sizes of the same shape.
VM_SIZES = {
    "ml.t3.medium": "Standard_B2s",
    "ml.m5.large": "Standard_D2s_v3",
    "ml.m5.xlarge": "Standard_D4s_v3",
    "ml.m5.2xlarge": "Standard_D8s_v3",
    "ml.m5.4xlarge": "Standard_D16s_v3",
    "ml.m5.12xlarge": "Standard_D48s_v3",
    "ml.c5.large": "Standard_F2s_v2",
    "ml.c5.xlarge": "Standard_F4s_v2",
    "ml.c5.2xlarge": "Standard_F8s_v2",
    "ml.c5.4xlarge": "Standard_F16s_v2",
    "ml.r5.large": "Standard_E2s_v3",
    "ml.r5.xlarge": "Standard_E4s_v3",
    "ml.r5.2xlarge": "Standard_E8s_v3",
    "ml.g4dn.xlarge": "Standard_NC4as_T4_v3",
    "ml.g5.xlarge": "Standard_NV6ads_A10_v5",
}
WEEKDAYS = {"SUN": "0", "MON": "1", "TUE": "2", "WED": "3", "THU": "4", "FRI": "5", "SAT": "6"}


def compact(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def short_name(ctx: StackContext, prefix: str, limit: int) -> str:
    return compact_name(prefix, ctx.platform, ctx.namespace.name, limit)


def compact_name(prefix: str, platform: str, namespace: str, limit: int) -> str:
    """`<prefix><platform><namespace>` in lowercase letters and digits, cut to fit `limit`.

    Storage accounts, registries and vaults take no hyphens and few characters; the namespace keeps
    up to 8 characters so that names stay distinct between namespaces.
    """
    ns = compact(namespace)[:8]
    room = limit - len(prefix) - len(ns)
    return f"{prefix}{compact(platform)[:room]}{ns}"


def registry_name(platform: str, namespace: str) -> str:
    """The container registry of a platform in a namespace; `mlops images` pushes to the same one."""
    return compact_name("cr", platform, namespace, 50)


def tagged(ctx: StackContext, body: dict[str, Value]) -> dict[str, Value]:
    """azurerm has no provider-wide default tags: every taggable resource carries them itself."""
    return {**body, "tags": ctx.tags("-")}


def location(ctx: StackContext) -> str:
    azure = ctx.namespace.azure
    assert azure is not None
    return azure.location


def vm_size(ctx: StackContext, field: str, instance_type: str) -> str:
    try:
        return VM_SIZES[instance_type]
    except KeyError:
        raise ctx.error(field, f"{instance_type!r} has no Azure VM size in this version (known: "
                               f"{', '.join(sorted(VM_SIZES))})") from None


def schedule_trigger(ctx: StackContext, field: str, expression: str) -> dict[str, Any]:
    """An EventBridge schedule expression as an Azure ML schedule trigger (UTC)."""
    cron = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+)(?: (\S+))?\)", expression)
    if cron:
        minute, hour, day, month, weekday = cron.groups()[:5]
        weekday = ",".join(WEEKDAYS.get(d.upper(), d) for d in weekday.split(","))
        fields = [minute, hour, "*" if day == "?" else day, month, "*" if weekday == "?" else weekday]
        return {"triggerType": "Cron", "expression": " ".join(fields), "timeZone": "UTC"}
    rate = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression)
    if rate:
        return {"triggerType": "Recurrence", "frequency": rate.group(2), "interval": int(rate.group(1)),
                "timeZone": "UTC"}
    raise ctx.error(field, f"{expression!r} has no Azure ML schedule equivalent; use cron(...) or rate(...)")


def use_provider(ctx: StackContext, name: str, required: RequiredProvider, config: dict[str, Value]) -> None:
    """Declare a provider in this stack (only stacks that use it carry it)."""
    if name not in ctx.stack.settings.required_providers:
        ctx.stack.settings.required_providers[name] = required
        ctx.stack.providers.append(Provider(name, config))


def use_azapi(ctx: StackContext) -> None:
    use_provider(ctx, "azapi", AZAPI_PROVIDER, {})


def azapi(ctx: StackContext, name: str, kind: str, resource_name: Value, parent_id: Value, body: dict[str, Any],
          api: str = ML_API, lifecycle: Lifecycle | None = None, **extra: Value) -> Resource:
    """An `azapi_resource` of a Machine Learning Services type at its pinned API version."""
    use_azapi(ctx)
    return Resource("azapi_resource", name, {
        "type": f"Microsoft.MachineLearningServices/{kind}@{api}",
        "name": resource_name,
        "parent_id": parent_id,
        **extra,
        "body": body,
    }, lifecycle=lifecycle)


def grant(name: str, scope: Value, role: str, principal: Value, managed: bool = True,
          depends_on: tuple[Resource, ...] = ()) -> Resource:
    """A role assignment. For a managed identity, its principal type is given and the Entra ID
    lookup skipped, so a just-created identity is not refused while Entra ID replicates it
    (azurerm role_assignment docs, `skip_service_principal_aad_check`; review B12)."""
    body: dict[str, Value] = {"scope": scope, "role_definition_name": role, "principal_id": principal}
    if managed:
        body |= {"principal_type": "ServicePrincipal", "skip_service_principal_aad_check": True}
    return Resource("azurerm_role_assignment", name, body, depends_on=depends_on)


def private_endpoint(ctx: StackContext, name: str, rg: Any, target: Any, subresource: str, subnet: Any,
                     zone_id: Any, *more_zone_ids: Any) -> Resource:
    """A private endpoint for `target`, registered in the private DNS zones of its service (a
    workspace's `amlworkspace` endpoint needs two: api.azureml.ms and notebooks.azure.net)."""
    return Resource("azurerm_private_endpoint", name, tagged(ctx, {
        "name": f"pe-{ctx.name}-{name.replace('_', '-')}",
        "location": location(ctx),
        "resource_group_name": rg,
        "subnet_id": subnet,
        "private_service_connection": Block({
            "name": f"psc-{name.replace('_', '-')}",
            "private_connection_resource_id": target,
            "subresource_names": [subresource],
            "is_manual_connection": False,
        }),
        "private_dns_zone_group": Block({"name": "default", "private_dns_zone_ids": [zone_id, *more_zone_ids]}),
    }))
