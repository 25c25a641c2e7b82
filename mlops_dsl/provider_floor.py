"""The lowest provider version a stack's declared range allows, held against the bindings.

`mlops validate --schema` reads names from the cdktn-provider-* bindings, each generated from one
recent release, while the stacks declare ranges that start lower: hashicorp/aws `>= 5.100, < 7.0`
against bindings of 6.69.1 (the local namespace runs 5.100 from the mirror), hashicorp/azurerm
`>= 4.55, < 5.0` against 4.81.0. Whatever the bindings accept must work at both ends of the range,
so this module adds what the lower bound lacks and what it requires, from the vendored difference
(vendor/floors/<provider>.json, made by tools/vendor_floors.py; see its NOTICE.md): types and
arguments added later (every AWS resource's `region` since 6.0, for one) are reported, and so is
an argument that the lower bound requires and a later release made optional
(aws_cloudwatch_metric_alarm's `comparison_operator`). Arguments a later release removed are
already refused by the bindings, rightly: that release is in the range too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .terraform import Block, Blocks
from .terraform.values import Value


@dataclass(frozen=True)
class Floor:
    provider: str  # hashicorp/aws
    version: tuple[int, ...]
    text: str  # as written in the file, e.g. 5.100.0
    bindings: str  # the bindings it was compared with
    types_added: Mapping[str, frozenset[str]]  # "resource"/"data" -> types
    arguments: Mapping[str, Mapping[str, Mapping[str, list[str]]]]  # kind -> type -> added/required -> paths


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


@cache
def floor(provider: str) -> Floor | None:
    """The vendored floor of a provider (the local name: aws, azurerm); None when none is vendored."""
    path = resources.files("mlops_dsl").joinpath(f"vendor/floors/{provider}.json")
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return Floor(data["provider"], _version(data["version"]), data["version"], data["bindings"],
                 {kind: frozenset(types) for kind, types in data["types_added"].items()}, data["arguments"])


# One clause of a Terraform version constraint: an operator (none means =) and a version.
_CLAUSE = re.compile(r"^\s*(>=|<=|~>|!=|=|>|<)?\s*v?(\d+(?:\.\d+)*)")


def lower_bound(constraint: str) -> tuple[int, ...] | None:
    """The least version a constraint such as `>= 5.100, < 7.0` (or `~> 5.100`, `5.100.0`) allows;
    None when no clause bounds it from below (`< 7.0`)."""
    bounds = []
    for clause in constraint.split(","):
        found = _CLAUSE.match(clause)
        if found and (found[1] or "=") in (">=", "~>", "=", ">"):
            bounds.append(_version(found[2]))
    return max(bounds) if bounds else None


def in_range(current: Floor, constraint: str) -> bool:
    """Whether the floor's version is inside the declared range (its lower bound is at or below it),
    so the floor's schema must hold. A range that starts above it needs no floor check."""
    return _pad(lower_bound(constraint) or (0,)) <= _pad(current.version)


def stale(current: Floor, constraint: str) -> str | None:
    """Why the vendored floor does not reach the bottom of the range (None when it does)."""
    if _pad(lower_bound(constraint) or (0,)) >= _pad(current.version):
        return None
    return (f"the declared {current.provider} range ({constraint}) allows versions below {current.text}, the lowest "
            f"whose schema is vendored: regenerate it with tools/vendor_floors.py (its docstring says how)")


def _pad(version: tuple[int, ...]) -> tuple[int, ...]:
    return (*version, *(0,) * (3 - len(version)))


def _blocks(value: Value) -> list[Block]:
    if isinstance(value, Block):
        return [value]
    if isinstance(value, (list, tuple, Blocks)):
        return [v for v in value if isinstance(v, Block)]
    return []


def _paths(body: Mapping[str, Value], prefix: str = "") -> Iterator[str]:
    for key, value in body.items():
        if value is None:
            continue
        yield f"{prefix}{key}"
        for block in _blocks(value):
            yield from _paths(block.body, f"{prefix}{key}.")


def _missing(body: Mapping[str, Value], path: str) -> bool:
    """Whether a required path is unset in some block it belongs to (a nested requirement counts
    only inside blocks that are given)."""
    head, _, rest = path.partition(".")
    value = body.get(head)
    if not rest:
        return value is None
    return any(_missing(block.body, rest) for block in _blocks(value))


def check(current: Floor, kind: str, type_name: str, body: Mapping[str, Value], where: str,
          constraint: str) -> list[str]:
    """Problems of one resource ("resource"), data source ("data") or provider block ("provider",
    type: the provider's name) at the floor of the declared range."""
    at = f"{current.provider} {current.text}, which the declared range ({constraint}) allows"
    if type_name in current.types_added.get(kind, ()):
        noun = "data source" if kind == "data" else "resource"
        return [f"{where}: {type_name} is not a {noun} type of {at}: it was added later; raise the range's lower "
                f"bound or do without it"]
    spec = current.arguments.get(kind, {}).get(type_name, {})
    added = set(spec.get("added", ()))
    problems = [f"{where}: {path}: not in {at} (added later), so Terraform on {current.text} rejects it; raise the "
                f"range's lower bound or leave it out" for path in _paths(body) if path in added]
    problems += [f"{where}: {path}: required by {at}, and not set" for path in spec.get("required", ())
                 if _missing(body, path)]
    return problems
