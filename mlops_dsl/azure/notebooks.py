"""Notebooks on Azure, opt-in per namespace (`notebooks.users` in namespaces.yaml): one Azure ML
compute instance per listed user in the platform's training workspace.

Each instance is personal (assigned to the user's Entra ID object, `azure_object_id`, which
namespaces.yaml requires on Azure), has no public IP, no local (key) authentication and no SSH, and
stops after 30 idle minutes. It lives in the workspace's managed network (no `subnet`: a workspace
with a managed network places its computes there), so it reaches exactly what the training compute
reaches: the approved outbound rules.

azapi, not `azurerm_machine_learning_compute_instance`: azurerm 4.55 cannot set idle shutdown
(hashicorp/terraform-provider-azurerm#20973, open). `idleTimeBeforeShutdown` is in the stable
ComputeInstance API from 2025-12-01 (the earlier stable versions, 2024-10-01 included, have it only
in previews; checked in azapi's embedded types, mlops_dsl/vendor/azapi/types.json).
"""

from __future__ import annotations

import hashlib

from ..context import StackContext
from ..terraform import Resource, Value
from .common import azapi, grant, location

COMPUTE_API = "2025-12-01"
IDLE_SHUTDOWN = "PT30M"  # ISO 8601; Azure accepts 15 minutes to 3 days
VM_SIZE = "Standard_D4s_v3"  # 4 vCPU, 16 GiB: the shape of ml.m5.xlarge


def instance_name(ctx: StackContext, user: str) -> str:
    """3 to 24 characters, unique in the Azure region (compute instance naming rules): the user's
    name and a short hash of `<platform>-<namespace>`, so two platforms' instances never clash."""
    return f"{user[:15].rstrip('-')}-{hashlib.sha256(ctx.name.encode()).hexdigest()[:6]}"


def render_notebooks(ctx: StackContext, workspace_id: Value) -> None:
    """One personal compute instance per notebook user; nothing unless the namespace opts in."""
    azure = ctx.namespace.azure
    assert azure is not None
    for user in ctx.namespace.notebook_users:
        assert user.azure_object_id is not None  # namespaces.py refuses a user without one on Azure
        ctx.stack.add(compute_instance(ctx, workspace_id, user.name, user.azure_object_id, azure.tenant_id),
                      # Opening one's own instance and running notebooks in the workspace: the
                      # built-in role Azure ML documents for data scientists (no role assignments).
                      grant(f"notebook_{user.name.replace('-', '_')}", workspace_id, "AzureML Data Scientist",
                            user.azure_object_id, managed=False))


def compute_instance(ctx: StackContext, workspace_id: Value, user: str, object_id: str, tenant_id: str) -> Resource:
    return azapi(ctx, f"notebook_{user.replace('-', '_')}", "workspaces/computes", instance_name(ctx, user),
                 workspace_id, {
                     "properties": {
                         "computeType": "ComputeInstance",
                         "description": f"{user}'s notebooks ({ctx.platform}, {ctx.namespace.name})",
                         "disableLocalAuth": True,
                         "properties": {
                             "vmSize": VM_SIZE,
                             "enableNodePublicIp": False,
                             "computeInstanceAuthorizationType": "personal",
                             "applicationSharingPolicy": "Personal",
                             "personalComputeInstanceSettings": {
                                 "assignedUser": {"objectId": object_id, "tenantId": tenant_id}},
                             "sshSettings": {"sshPublicAccess": "Disabled"},
                             "idleTimeBeforeShutdown": IDLE_SHUTDOWN,
                         },
                     },
                 }, api=COMPUTE_API, location=location(ctx), tags=ctx.tags("-"))
