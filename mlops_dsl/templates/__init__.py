"""The cloud-agnostic template declarations. No cloud module is imported here."""

from .base import Spec, Template
from .batch import BatchInference
from .data import DataInfrastructure
from .features import Feature, FeatureGroup, FeatureStore, Ingestion
from .image import Image
from .serving import Alarms, AutoScaling, BlueGreen, ModelServing, MultiModel, Rolling, Serverless, Variant
from .serving_api import Api, OnlineFeatures
from .training import (
    CategoricalRange,
    ContinuousRange,
    Dataset,
    IntegerRange,
    Labels,
    QualityGate,
    Search,
    TrainingInfrastructure,
    Tuning,
)

__all__ = [
    "Alarms",
    "Api",
    "AutoScaling",
    "BatchInference",
    "BlueGreen",
    "CategoricalRange",
    "ContinuousRange",
    "DataInfrastructure",
    "Dataset",
    "Feature",
    "FeatureGroup",
    "FeatureStore",
    "Image",
    "Ingestion",
    "IntegerRange",
    "Labels",
    "ModelServing",
    "MultiModel",
    "OnlineFeatures",
    "QualityGate",
    "Rolling",
    "Search",
    "Serverless",
    "Spec",
    "Template",
    "TrainingInfrastructure",
    "Tuning",
    "Variant",
]
