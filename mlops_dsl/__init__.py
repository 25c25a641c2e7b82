"""mlops-dsl: declare an ML platform as Python blueprints, render reviewable Terraform per namespace.

Blueprints import what they need from here: the templates, and for a team's own templates and
escape hatches (README: Escape hatches, Your own templates) the constraints, the Terraform object
model, the renderer registry and the stack context.
"""

from .context import StackContext
from .errors import BlueprintError, GraphError, MlopsError, NamespaceError, ParameterError
from .extensions import find, set_attribute
from .namespaces import Namespace
from .platform import Platform
from .renderers import register_renderer, renderer
from .templates import *  # noqa: F403 - the blueprint vocabulary
from .templates import __all__ as _templates
from .templates.constraints import Constraint, InstanceOf, Interval, ListOf, NoneOK, Options, Pattern
from .terraform import Block, DataSource, Expr, Output, Resource, Stack, Variable, blocks, interp, jsonencode

__all__ = [
    "Block",
    "BlueprintError",
    "Constraint",
    "DataSource",
    "Expr",
    "GraphError",
    "InstanceOf",
    "Interval",
    "ListOf",
    "MlopsError",
    "Namespace",
    "NamespaceError",
    "NoneOK",
    "Options",
    "Output",
    "ParameterError",
    "Pattern",
    "Platform",
    "Resource",
    "Stack",
    "StackContext",
    "Variable",
    "blocks",
    "find",
    "interp",
    "jsonencode",
    "register_renderer",
    "renderer",
    "set_attribute",
    *_templates,
]
