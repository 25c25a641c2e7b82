"""mlops-dsl: declare an ML platform as Python blueprints, render reviewable Terraform per namespace.

Blueprints import what they need from here.
"""

from .errors import BlueprintError, GraphError, MlopsError, NamespaceError, ParameterError
from .platform import Platform
from .templates import DataInfrastructure, Template

__all__ = [
    "BlueprintError",
    "DataInfrastructure",
    "GraphError",
    "MlopsError",
    "NamespaceError",
    "ParameterError",
    "Platform",
    "Template",
]
