"""mlops-dsl: declare an ML platform as Python blueprints, render reviewable Terraform per namespace.

Blueprints import what they need from here.
"""

from .errors import BlueprintError, GraphError, MlopsError, NamespaceError, ParameterError
from .platform import Platform
from .templates import *  # noqa: F403 - the blueprint vocabulary
from .templates import __all__ as _templates

__all__ = [
    "BlueprintError",
    "GraphError",
    "MlopsError",
    "NamespaceError",
    "ParameterError",
    "Platform",
    *_templates,
]
