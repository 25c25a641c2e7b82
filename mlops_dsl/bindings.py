"""Provider schemas read from the prebuilt cdktf bindings' Python source, without running them.

The bindings (`cdktf-cdktf-provider-aws`, `-azurerm`) are generated from the real provider
schemas: each resource's `<Name>Config` class and each nested block's struct class declare every
argument as a keyword parameter, with its type, whether it is required, and a documentation link
whose anchor is the Terraform name. Reading that text is enough to check names and value kinds,
and it avoids importing the bindings, which would start the jsii runtime (Node) and load a 37 MB
type assembly. Modules are read on demand and memoized: one per resource type used.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# Python package of the bindings, per Terraform provider name (the prefix of its resource types).
PACKAGES = {"aws": "cdktf_cdktf_provider_aws", "azurerm": "cdktf_cdktf_provider_azurerm"}
PINNED = {"aws": "cdktf-cdktf-provider-aws==21.22.1 (hashicorp/aws 6.25.0)",
          "azurerm": "cdktf-cdktf-provider-azurerm==14.23.1 (hashicorp/azurerm 4.55.0)"}
META = {"connection", "count", "depends_on", "for_each", "lifecycle", "provider", "provisioners"}

# A class whose constructor takes keyword-only arguments, on one line or one per line as the
# generator's formatter left it, followed by its docstring.
_CLASS = re.compile(r"^class (\w+)(\([^)]*\))?:\n    def __init__\((.*?)\) -> None:\n        '''\n(.*?)'''",
                    re.MULTILINE | re.DOTALL)
_DOC = re.compile(r"^        :param (\w+): .*?#(\w+) \w+#", re.MULTILINE)
_NAME = re.compile(r"\b([A-Z]\w*)\b")


@dataclass(frozen=True)
class Field:
    """One argument or nested block of a resource, data source, provider or block."""

    name: str  # the Terraform name
    kind: str  # string, number, bool, list, map, block, any
    required: bool = False
    block: str | None = None  # the struct class of a nested block
    many: bool = False  # a block that may repeat (a list of blocks)
    python: str = ""  # the keyword the binding takes it as


@dataclass(frozen=True)
class Schema:
    name: str  # the binding's class, for messages
    fields: dict[str, Field] = field(default_factory=dict)
    module: str = ""


class NoBindings(Exception):
    """The bindings package for a provider is not installed."""


def _parameters(signature: str) -> list[tuple[str, str]]:
    """(name, annotation) of each keyword-only parameter of `self, *, a: T, b: U = None`."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in signature:
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        current.append(char)
    parts.append("".join(current).strip())
    out = []
    for part in parts:
        name, sep, annotation = part.partition(":")
        if sep and name.strip() not in ("self", "*"):
            out.append((name.strip(), annotation.strip().removesuffix(" = None")))
    return out


def _kind(annotation: str, classes: set[str]) -> tuple[str, str | None, bool]:
    """The kind of an argument from its annotation; a class of the same module is a nested block
    (quoted when it is defined further down), repeatable when it stands in a Sequence."""
    struct = next((n for n in _NAME.findall(annotation) if n in classes), None)
    if struct:
        return "block", struct, "typing.Sequence[typing.Union[" in annotation
    for marker, kind in (("typing.Mapping[", "map"), ("typing.Sequence[", "list"), ("builtins.bool", "bool"),
                         ("jsii.Number", "number"), ("builtins.str", "string")):
        if marker in annotation:
            return kind, None, False
    return "any", None, False


@cache
def package_dir(provider: str) -> Path:
    package = PACKAGES.get(provider)
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or not spec.submodule_search_locations:
        raise NoBindings(f"the {provider} bindings are not installed: pip install 'mlops-dsl[cdktf]' "
                         f"({PINNED.get(provider, 'no bindings exist for this provider')})")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _module(provider: str, module: str) -> dict[str, tuple[bool, Schema]]:
    """Class name -> (is a Config class, its schema), for every keyword-only class of a module."""
    path = package_dir(provider) / module / "__init__.py"
    text = path.read_text(encoding="utf-8")
    classes = {}
    found = _CLASS.findall(text)
    names = {name for name, *_ in found}
    for name, bases, params, doc in found:
        tf_names = dict(_DOC.findall(doc))
        fields = {}
        for python_name, annotation in _parameters(params):
            if python_name in META and "TerraformMetaArguments" in bases:
                continue
            kind, block, many = _kind(annotation, names)
            tf_name = tf_names.get(python_name, python_name)
            fields[tf_name] = Field(tf_name, kind, not annotation.startswith("typing.Optional["), block, many,
                                    python_name)
        classes[name] = ("TerraformMetaArguments" in bases, Schema(name, fields, module))
    return classes


def _provider_of(type_name: str) -> str:
    return type_name.split("_", 1)[0]


def resource(type_name: str, data: bool = False) -> Schema | None:
    """The schema of a resource (or data source) type; None when the provider has no such type."""
    provider = _provider_of(type_name)
    module = ("data_" + type_name) if data else type_name[len(provider) + 1:]
    if not (package_dir(provider) / module / "__init__.py").exists():
        return None
    return next((s for is_config, s in _module(provider, module).values() if is_config), None)


def provider_config(provider: str) -> Schema | None:
    classes = _module(provider, "provider")
    return next((s for name, (_, s) in classes.items() if name.endswith("ProviderConfig")), None)


def block(parent: Schema, provider: str, name: str) -> Schema:
    return _module(provider, parent.module)[name][1]


def known_types(provider: str, data: bool = False) -> list[str]:
    """Every resource (or data source) type of a provider, from the bindings' module names."""
    prefix = "data_" if data else ""
    names = []
    for path in package_dir(provider).iterdir():
        if path.is_dir() and not path.name.startswith("_") and path.name != "provider":
            if data and path.name.startswith("data_"):
                names.append(path.name[len(prefix):])
            elif not data and not path.name.startswith("data_"):
                names.append(f"{provider}_{path.name}")
    return sorted(names)
