"""Terraform object model and writers. Knows no cloud and imports nothing else of ours."""

from .model import (
    Backend,
    CheckovSkip,
    DataSource,
    Moved,
    Output,
    Provider,
    RequiredProvider,
    Resource,
    Settings,
    Stack,
    Variable,
    check_references,
)
from .values import Block, Blocks, Call, Expr, Interp, Lifecycle, Value, blocks, interp, jsonencode, refs_of

FORMATS = ("hcl", "json")


def render(stack: Stack, fmt: str = "hcl") -> dict[str, str]:
    """File name -> text for one stack, in HCL or Terraform JSON."""
    if fmt == "hcl":
        from .hcl import render_stack
    elif fmt == "json":
        from .tfjson import render_stack
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return render_stack(stack)


__all__ = [
    "FORMATS",
    "Backend",
    "Block",
    "Blocks",
    "Call",
    "CheckovSkip",
    "DataSource",
    "Expr",
    "Interp",
    "Lifecycle",
    "Moved",
    "Output",
    "Provider",
    "RequiredProvider",
    "Resource",
    "Settings",
    "Stack",
    "Value",
    "Variable",
    "blocks",
    "check_references",
    "interp",
    "jsonencode",
    "refs_of",
    "render",
]
