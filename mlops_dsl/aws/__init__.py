"""How each template becomes resources on AWS (hashicorp/aws >= 5.100, < 7.0)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..templates import BatchInference, DataInfrastructure, FeatureStore, ModelServing, TrainingInfrastructure
from . import batch, data, features, serving, training
from .provider import remote_state, settings

NAME = "aws"
RENDERERS: Mapping[type, Callable[[Any, Any], None]] = {
    DataInfrastructure: data.render,
    FeatureStore: features.render,
    TrainingInfrastructure: training.render,
    ModelServing: serving.render,
    BatchInference: batch.render,
}

__all__ = ["NAME", "RENDERERS", "remote_state", "settings"]
