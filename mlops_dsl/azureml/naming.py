"""Names of the shared Azure ML registry and of what it holds: plain functions, no Azure call.

The renderers import these to declare the registry (azapi `Microsoft.MachineLearningServices/registries`)
and to reference a pinned version from a deployment; `mlops models` uses the same functions to
find them at run time, so the two can never disagree.

One registry per platform, in the namespace that namespaces.yaml names as `models.registry` (the
same key as on AWS, where it names the account of the model package groups). It holds one model
per platform, whose versions are the integers 1, 2, ... as on SageMaker.
"""

from __future__ import annotations

import re

# The one API version of every registry call (registry, model containers and versions, startPendingUpload),
# the stable version the Azure stacks' assets use (mlops_dsl/azure/common.py ML_API). Its paths and bodies:
# azure-rest-api-specs specification/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/
# stable/2024-10-01/registries.json (Registries_Get, RegistryNameParameter) and .../stable/2024-10-01/mfe.json
# (RegistryModelContainers_*, RegistryModelVersions_List|Get|CreateOrUpdate|CreateOrGetStartPendingUpload).
REGISTRY_API = "2024-10-01"
PROVIDER = "Microsoft.MachineLearningServices"
# registries.json RegistryNameParameter: "^[a-zA-Z0-9][a-zA-Z0-9\-_]{2,32}$" (3 to 33 characters).
REGISTRY_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]{2,32}")
# mfe.json RegistryModelVersions_* modelName: "^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$".
MODEL_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}")
# The id a deployment's `model` takes for a registry's version (azure-ai-ml constants REGISTRY_ASSET_ID,
# "azureml://registries/{}/{}/{}/versions/{}"; Microsoft Learn, how-to-share-models-pipelines-across-
# workspaces-with-registries).
ASSET_ID = re.compile(r"azureml://registries/(?P<registry>[^/]+)/models/(?P<model>[^/]+)/versions/(?P<version>\d+)")


# The model directory's name in the version's storage: its files are uploaded under `<blob dir>/model/` and
# `modelUri` names that directory. Azure ML mounts a version under AZUREML_MODEL_DIR
# (/var/azureml-app/azureml-models/<model>/<version>, how-to-deploy-custom-container) keeping the
# directory's last segment, as the azure-ai-ml SDK's uploads show, so the container finds the MLflow
# model at $AZUREML_MODEL_DIR/model (to confirm on a real deployment).
MODEL_SUBDIRECTORY = "model"
MODEL_MOUNT = "/var/azureml-app/azureml-models"


def mounted_model_dir(platform: str, version: int) -> str:
    """Where a deployment of the version finds the MLflow model: $AZUREML_MODEL_DIR/model."""
    return f"{MODEL_MOUNT}/{model_name(platform)}/{version}/{MODEL_SUBDIRECTORY}"


def registry_name(platform: str, registry_namespace: str) -> str:
    """`mlr-<platform>-<namespace>`, cut to the 33 characters Azure allows: the namespace stays whole
    (it tells registries apart), the platform loses its tail."""
    room = 33 - len("mlr-") - len("-") - len(registry_namespace)
    name = f"mlr-{platform[:room].rstrip('-_')}-{registry_namespace}"
    if not REGISTRY_NAME.fullmatch(name):  # a namespace and platform pattern this module does not know
        raise ValueError(f"the Azure ML registry name {name!r} does not match {REGISTRY_NAME.pattern}")
    return name


def registry_resource_group(platform: str, registry_namespace: str) -> str:
    """The resource group the registry lives in: the platform's group in the registry's namespace
    (DataInfrastructure's `rg-<platform>-<namespace>`)."""
    return f"rg-{platform}-{registry_namespace}"


def registry_id(subscription_id: str, platform: str, registry_namespace: str) -> str:
    """The registry's ARM id, in the subscription of the registry's namespace."""
    return (f"/subscriptions/{subscription_id}/resourceGroups/{registry_resource_group(platform, registry_namespace)}"
            f"/providers/{PROVIDER}/registries/{registry_name(platform, registry_namespace)}")


def model_name(platform: str) -> str:
    """The platform's model in its registry: the platform's name (one model per platform)."""
    if not MODEL_NAME.fullmatch(platform):
        raise ValueError(f"the Azure ML model name {platform!r} does not match {MODEL_NAME.pattern}")
    return platform


def asset_id(registry: str, model: str, version: int) -> str:
    """`azureml://registries/<registry>/models/<model>/versions/<version>`: what a deployment's `model`
    names, and what a pin records as its `artifact`."""
    return f"azureml://registries/{registry}/models/{model}/versions/{version}"


def version_asset_id(platform: str, registry_namespace: str, version: int) -> str:
    return asset_id(registry_name(platform, registry_namespace), model_name(platform), version)
