"""The platform's shared Azure ML registry: where every namespace's deployments find model versions.

One registry per platform, in the namespace that namespaces.yaml names as `models.registry` (the
same key as on AWS). Terraform owns the registry; its model versions are data, written by
`mlops models register` and tagged by `approve`/`reject` (mlops_dsl/azureml/registry.py), so a
version never depends on an apply. Names come from mlops_dsl/azureml/naming.py, which the
commands use too.

Network: the registry takes no public traffic and is reached through a private endpoint
(sub-resource `amlregistry`, DNS zone privatelink.api.azureml.ms) in the registry namespace's
endpoints subnet: "create a private endpoint from the existing virtual network to Azure Machine
Learning registry" (learn.microsoft.com/azure/machine-learning/how-to-registry-network-isolation).
The runner reaches it over the peered runner network, as it reaches the workspaces.

Who may read versions: the endpoint identity of every namespace serving this platform gets
"AzureML Registry User" on the registry, granted in that namespace's serving stack (the registry's
id is known from namespaces.yaml alone), so the registry namespace need not know its consumers.
"""

from __future__ import annotations

from typing import Any

from ..azureml.naming import REGISTRY_API, registry_id, registry_name
from ..context import StackContext
from ..terraform import Block, Output, Resource
from .common import TIME_PROVIDER, azapi, grant, location, private_endpoint, tagged, use_provider
from .keys import ROLE_PROPAGATION

REGISTRY_READER = "AzureML Registry User"


def render_registry(ctx: StackContext, data: Any) -> Resource:
    """The registry (azapi registries@REGISTRY_API), its private endpoint, and its outputs."""
    rg_id = ctx.upstream_output(data, "resource_group_id")
    zones = ctx.upstream_output(data, "private_dns_zone_ids")
    here = location(ctx)
    registry = azapi(ctx, "model_registry", "registries", registry_name(ctx.platform, ctx.namespace.name), rg_id, {
        "properties": {
            "publicNetworkAccess": "Disabled",
            # The registry's own storage and container registry, created by Azure ML in its managed
            # resource group: private blobs, no hierarchical namespace (a registry stores assets).
            "regionDetails": [{
                "location": here,
                "acrDetails": [{"systemCreatedAcrAccount": {"acrAccountSku": "Premium"}}],
                "storageAccountDetails": [{"systemCreatedStorageAccount": {
                    "storageAccountType": "Standard_ZRS",
                    "storageAccountHnsEnabled": False,
                    "allowBlobPublicAccess": False,
                }}],
            }],
        },
    }, api=REGISTRY_API, location=here, identity=Block({"type": "SystemAssigned"}), tags=tagged(ctx, {})["tags"])
    endpoint = private_endpoint(ctx, "model_registry", ctx.upstream_output(data, "resource_group_name"),
                                registry.attr("id"), "amlregistry", ctx.upstream_output(data, "endpoints_subnet_id"),
                                zones["amlworkspace"])
    ctx.stack.add(registry, endpoint, Output("model_registry_id", registry.attr("id"),
                                             description="The platform's Azure ML registry of model versions"))
    return registry


def registry_reader(ctx: StackContext, data: Any) -> Resource:
    """This namespace's endpoint identity may read the registry's model versions (deployments pull
    them); returns the wait for that role to propagate, which the deployments depend on."""
    grant_ = grant("model_registry_reader", consumed_registry_id(ctx), REGISTRY_READER,
                   ctx.upstream_output(data, "endpoint_identity_principal_id"))
    use_provider(ctx, "time", TIME_PROVIDER, {})
    # A deployment pulls its model as the endpoint identity when it is created: the role must have
    # propagated by then, as the data stack waits for its own roles.
    wait = Resource("time_sleep", "model_registry_reader", {"create_duration": ROLE_PROPAGATION},
                    depends_on=(grant_,))
    ctx.stack.add(grant_, wait)
    return wait


def consumed_registry_id(ctx: StackContext) -> str:
    """The ARM id of the registry this namespace's deployments read (namespaces.yaml models.registry)."""
    azure = ctx.namespace.registry_azure
    if azure is None:
        raise ctx.error("training", f"{ctx.namespace.source}: models.registry of namespace {ctx.namespace.name!r} "
                                    "names a namespace without azure settings; an Azure platform's registry "
                                    "lives in an Azure namespace")
    return registry_id(azure.subscription_id, ctx.platform, ctx.namespace.registry)


__all__ = ["REGISTRY_READER", "consumed_registry_id", "registry_reader", "render_registry"]
