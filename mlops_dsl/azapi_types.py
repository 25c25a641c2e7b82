"""A value checked against the Azure resource types azapi embeds, exactly as azapi checks it.

`azapi_resource` validates its body against these types at `terraform validate` time, and
`azapi_update_resource` silently drops what they lack (`GetWriteOnly`), so a property the pinned API
version does not have either fails the plan or does nothing. The rules mirror
`internal/azure/types/*.go` of Azure/terraform-provider-azapi: an object takes only its declared
properties (unless it has additional properties), a read-only one is not written, a required one is
present; string literals and unions of them are enums, compared case-sensitively as Azure's
specification spells them; a discriminated object picks its type by its discriminator's value.

The types are the vendored subset in `vendor/azapi/types.json` (see its NOTICE.md), nodes in the
bicep-types format with references as plain indexes. A value known only at apply time (a Terraform
expression) matches any type, but the names of an object around it are still checked.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

REQUIRED, READ_ONLY = 1, 2  # ObjectPropertyFlag bits (Required = 1 << 0, ReadOnly = 1 << 1)
# bicep node type -> Checker method (`_<name>`); anything else (AnyType, functions) matches any value
KINDS = {"StringType": "string", "IntegerType": "integer", "BooleanType": "boolean", "StringLiteralType": "literal",
         "UnionType": "union", "ArrayType": "array", "ObjectType": "object", "DiscriminatedObjectType": "discriminated"}
VENDORED = "vendor/azapi/types.json"

Node = Mapping[str, Any]


@dataclass(frozen=True)
class Catalog:
    """The vendored types: the body type of each `type@apiVersion`, and every version azapi knows."""

    source: Mapping[str, str]
    versions: Mapping[str, list[str]]
    resources: Mapping[str, int]
    types: list[Node]

    def body_of(self, type_at_version: str) -> int | str:
        """The index of the body type of a `type@apiVersion`, or why it has none."""
        resource_type, _, version = type_at_version.partition("@")
        if not version:
            return f"{type_at_version!r} names no API version (expected <type>@<apiVersion>)"
        for name, index in self.resources.items():
            if name.lower() == type_at_version.lower():
                return self.types[index]["body"]
        known = {k.lower(): v for k, v in self.versions.items()}.get(resource_type.lower())
        pinned = self.source.get("describe", self.source.get("commit", "?"))
        if known is None:
            return (f"{resource_type} is not vendored, so its body cannot be checked: run "
                    f"tools/vendor_azapi_types.py against {self.source['repo']} (vendored: {pinned})")
        if version not in known:
            close = difflib.get_close_matches(version, known, n=3, cutoff=0.0)
            return (f"{resource_type} has no API version {version} in azapi {pinned}; the closest are "
                    f"{', '.join(sorted(close))}")
        return (f"{type_at_version} exists in azapi {pinned} but is not vendored: run "
                f"tools/vendor_azapi_types.py to add it")


@cache
def catalog() -> Catalog:
    text = resources.files("mlops_dsl").joinpath(VENDORED).read_text(encoding="utf-8")
    data = json.loads(text)
    return Catalog(data["source"], data["versions"], {k: v["type"] for k, v in data["resources"].items()},
                   data["types"])


class Unknown:
    """A value known only at apply time: it matches any type."""


UNKNOWN = Unknown()


def _close(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    if close:
        return f"; did you mean '{close[0]}'?"
    shown = sorted(options)
    more = f", ... {len(shown) - 12} more" if len(shown) > 12 else ""
    return f" (valid: {', '.join(shown[:12])}{more})" if shown else ""


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the bool {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@dataclass
class Checker:
    """Walks a value and a type together; `required` is off for partial bodies (azapi_update_resource)."""

    types: list[Node]
    required: bool = True

    def check(self, index: int, value: Any, path: str) -> list[str]:
        if value is None or isinstance(value, Unknown):
            return []
        node = self.types[index]
        kind = node["$type"]
        check: Callable[[Node, Any, str], list[str]] = getattr(self, f"_{KINDS.get(kind, 'any')}")
        return check(node, value, path)

    def _any(self, node: Node, value: Any, path: str) -> list[str]:
        return []

    def _string(self, node: Node, value: Any, path: str) -> list[str]:
        if not isinstance(value, str):
            return [f"{path}: expects a string, got {_describe(value)}"]
        if "minLength" in node and len(value) < node["minLength"]:
            return [f"{path}: {value!r} is shorter than {node['minLength']} characters"]
        if "maxLength" in node and len(value) > node["maxLength"]:
            return [f"{path}: {value!r} is longer than {node['maxLength']} characters"]
        if node.get("pattern"):
            try:
                matches = re.search(node["pattern"], value) is not None
            except re.error:  # a Go pattern Python cannot read: azapi's own check still runs at plan time
                return []
            if not matches:
                return [f"{path}: {value!r} does not match the pattern {node['pattern']}"]
        return []

    def _integer(self, node: Node, value: Any, path: str) -> list[str]:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{path}: expects an integer, got {_describe(value)}"]
        if isinstance(value, float):  # azapi skips floats: bicep-types-az types some floats as integers
            return []
        if "minValue" in node and value < node["minValue"]:
            return [f"{path}: {value} is less than {node['minValue']}"]
        if "maxValue" in node and value > node["maxValue"]:
            return [f"{path}: {value} is greater than {node['maxValue']}"]
        return []

    def _boolean(self, node: Node, value: Any, path: str) -> list[str]:
        return [] if isinstance(value, bool) else [f"{path}: expects a bool, got {_describe(value)}"]

    def _literal(self, node: Node, value: Any, path: str) -> list[str]:
        if value == node["value"]:
            return []
        return [f"{path}: expects {node['value']!r}, got {_describe(value)}"]

    def _union(self, node: Node, value: Any, path: str) -> list[str]:
        """An enum: string literals, usually with a plain string beside them ("open": azapi then accepts any
        string). The values the API version lists are the ones to write, in Azure's case, so any other
        string is reported, and a value that differs from one only in case says which."""
        elements = node["elements"]
        literals = [self.types[e]["value"] for e in elements if self.types[e]["$type"] == "StringLiteralType"]
        if isinstance(value, str) and literals and value not in literals:
            same = [v for v in literals if v.lower() == value.lower()]
            if same:
                return [f"{path}: {_describe(value)} is not one of {', '.join(map(repr, literals))}; did you mean "
                        f"{same[0]!r} (Azure's case)?"]
            open_enum = any(self.types[e]["$type"] == "StringType" for e in elements)
            note = " (an open enum: azapi accepts other strings, Azure may not)" if open_enum else ""
            return [f"{path}: {_describe(value)} is not one of {', '.join(map(repr, literals))}{note}"]
        if any(not self.check(e, value, path) for e in elements):
            return []
        if not literals:
            return [f"{path}: {_describe(value)} matches none of the types this property takes"]
        return [f"{path}: {_describe(value)} is not one of {', '.join(map(repr, literals))}"]

    def _array(self, node: Node, value: Any, path: str) -> list[str]:
        if not isinstance(value, (list, tuple)):
            return [f"{path}: expects an array, got {_describe(value)}"]
        problems = []
        if "minLength" in node and len(value) < node["minLength"]:
            problems.append(f"{path}: has {len(value)} items, fewer than {node['minLength']}")
        if "maxLength" in node and len(value) > node["maxLength"]:
            problems.append(f"{path}: has {len(value)} items, more than {node['maxLength']}")
        for i, item in enumerate(value):
            problems += self.check(node["itemType"], item, f"{path}[{i}]")
        return problems

    def _object(self, node: Node, value: Any, path: str) -> list[str]:
        if not isinstance(value, Mapping):
            return [f"{path or 'body'}: expects an object ({node.get('name', 'object')}), got {_describe(value)}"]
        return self._properties(node.get("name", "object"), node.get("properties", {}),
                                node.get("additionalProperties"), value, path)

    def _properties(self, owner: str, properties: Mapping[str, Node], additional: int | None,
                    value: Mapping[str, Any], path: str, skip: frozenset[str] = frozenset(),
                    suggest: list[str] | None = None) -> list[str]:
        """Each property of an object; `suggest` adds names a misspelling may have meant (a discriminated
        object's base properties, beside those of the type its discriminator selected)."""
        problems = []
        for key, item in value.items():
            if item is None or key in skip:
                continue
            at = _join(path, key)
            spec = properties.get(key)
            if spec is None:
                if additional is not None:
                    problems += self.check(additional, item, at)
                else:
                    problems.append(f"{at}: {owner} has no property {key!r}"
                                    f"{_close(key, [*properties, *(suggest or [])])}")
                continue
            if spec.get("flags", 0) & READ_ONLY:
                if not spec.get("flags", 0) & REQUIRED:
                    problems.append(f"{at}: is read-only in {owner} (Azure sets it): remove it")
                continue
            problems += self.check(spec["type"], item, at)
        if self.required:
            for key, spec in properties.items():
                flags = spec.get("flags", 0)
                if flags & REQUIRED and not flags & READ_ONLY and value.get(key) is None and key not in skip:
                    problems.append(f"{_join(path, key)}: is required by {owner}, and not set")
        return problems

    def _discriminated(self, node: Node, value: Any, path: str) -> list[str]:
        if not isinstance(value, Mapping):
            return [f"{path}: expects an object ({node['name']}), got {_describe(value)}"]
        base, key, elements = node.get("baseProperties", {}), node["discriminator"], node["elements"]
        others = frozenset(k for k in value if k not in base)
        problems = self._properties(node["name"], base, None, value, path, skip=others)
        chosen = value.get(key)
        at = _join(path, key)
        rest = {k: v for k, v in value.items() if k in others}
        if chosen is None:
            return [*problems, f"{at}: is required by {node['name']}: it selects the type, one of "
                               f"{', '.join(map(repr, sorted(elements)))}"]
        if isinstance(chosen, Unknown):  # the type is known at apply time: check names against all of them
            names = set(base) | {p for e in elements.values() for p in self.types[e].get("properties", {})}
            return [*problems, *(f"{_join(path, k)}: no type of {node['name']} has a property {k!r}"
                                 f"{_close(k, sorted(names))}" for k in rest if k not in names)]
        if not isinstance(chosen, str) or chosen not in elements:
            same = [e for e in elements if isinstance(chosen, str) and e.lower() == chosen.lower()]
            hint = f"; did you mean {same[0]!r} (Azure's case)?" if same else ""
            return [*problems, f"{at}: {_describe(chosen)} selects no type of {node['name']}; expected one of "
                               f"{', '.join(map(repr, sorted(elements)))}{hint}"]
        element = self.types[elements[chosen]]
        return [*problems, *self._properties(element.get("name", chosen), element.get("properties", {}),
                                             element.get("additionalProperties"), rest, path, suggest=list(base))]
