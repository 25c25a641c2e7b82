"""How each template becomes resources on Azure (hashicorp/azurerm >= 4.55, < 5.0, and azure/azapi
for what azurerm does not cover)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..templates import BatchInference, DataInfrastructure, FeatureStore, ModelServing, TrainingInfrastructure
from . import batch, data, features, serving, training
from .provider import remote_state, settings

NAME = "azure"
RENDERERS: Mapping[type, Callable[[Any, Any], None]] = {
    DataInfrastructure: data.render,
    FeatureStore: features.render,
    TrainingInfrastructure: training.render,
    ModelServing: serving.render,
    BatchInference: batch.render,
}

__all__ = ["NAME", "RENDERERS", "remote_state", "settings"]
