"""Provider schemas read from CDK Terrain's prebuilt provider bindings' Python source, without running them.

The bindings (`cdktn-provider-aws`, `cdktn-provider-azurerm`, the maintained successors of the
archived `cdktf-cdktf-provider-*`) are generated from the real provider schemas: each resource's
`<Name>Config` class and each nested block's struct class declare every argument as a keyword
parameter, with its type, whether it is required, and a documentation link whose anchor is the
Terraform name. Reading that text is enough to check names and value kinds, and it avoids
importing the bindings, which would start the jsii runtime (Node) and load a type assembly of tens
of MB. Modules are read on demand and memoized: one per resource type used.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# Python package and distribution of the bindings, per Terraform provider name (the prefix of its
# resource types). The versions are pinned in pyproject.toml's `cdktn` extra.
PACKAGES = {"aws": "cdktn_provider_aws", "azurerm": "cdktn_provider_azurerm"}
DISTRIBUTIONS = {"aws": "cdktn-provider-aws", "azurerm": "cdktn-provider-azurerm"}
INSTALL = "pip install 'mlops-dsl[cdktn]'"
# Modules of a bindings package that hold no resource type: the provider block, and the provider's
# functions (`provider::aws::arn_parse(...)`).
NOT_TYPES = {"provider", "provider_functions"}
META = {"connection", "count", "depends_on", "for_each", "lifecycle", "provider", "provisioners"}

# A class whose constructor takes keyword-only arguments, on one line or one per line as the
# generator's formatter left it, followed by its docstring. The signature may not run past the end
# of its class (a line at column 0): cdktn's modules open with a `_LazyImport` helper whose
# constructor has no docstring, which an unbounded match would join to the classes after it.
_CLASS = re.compile(r"^class (\w+)(\([^)]*\))?:\n    def __init__\(((?:(?!\n\S).)*?)\) -> None:\n        '''\n(.*?)'''",
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
        wanted = DISTRIBUTIONS.get(provider, "no bindings exist for this provider")
        raise NoBindings(f"the {provider} bindings are not installed: {INSTALL} ({wanted})")
    return Path(next(iter(spec.submodule_search_locations)))


# The first line of each binding release's README: "# CDKTN prebuilt bindings for hashicorp/aws
# provider version 6.69.1".
_GENERATED_FROM = re.compile(r"prebuilt bindings for (\S+) provider version (\S+)")


@cache
def describe(provider: str) -> str:
    """The installed bindings and the provider version they were generated from, for messages:
    `cdktn-provider-aws 25.8.1 (hashicorp/aws 6.69.1)`. Read from the installed distribution, so it
    cannot drift from what is checked against."""
    dist = DISTRIBUTIONS[provider]
    try:
        meta = importlib.metadata.metadata(dist)
    except importlib.metadata.PackageNotFoundError:
        return dist
    found = _GENERATED_FROM.search(meta.get("Description") or meta.get_payload() or "")  # type: ignore[attr-defined]
    source = f" ({found[1]} {found[2]})" if found else ""
    return f"{dist} {meta['Version']}{source}"


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


# Each module's docstring opens with the Terraform name it binds: "# `aws_s3control_bucket`",
# "# `data_aws_vpc`". Module names are usually that name without the provider prefix, but not
# always: the generator splits some words (aws_s3control_bucket is the module s3_control_bucket,
# azurerm_sentinel_data_connector_office_365 is ..._office365).
_HEADING = re.compile(r"^# `(\w+)`", re.MULTILINE)


def _heading(provider: str, module: str) -> str | None:
    """The Terraform name a module binds (None when it is no module of the package)."""
    path = package_dir(provider) / module / "__init__.py"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        found = _HEADING.search(handle.read(400))
    return found[1] if found else None


@cache
def _modules(provider: str) -> dict[tuple[str, bool], str]:
    """(type, is a data source) -> module, for every type of a provider, from the modules' headings."""
    index = {}
    for path in package_dir(provider).iterdir():
        if path.name.startswith("_") or path.name in NOT_TYPES:
            continue
        name = _heading(provider, path.name)
        if name and name.startswith(f"data_{provider}_"):
            index[(name.removeprefix("data_"), True)] = path.name
        elif name and name.startswith(f"{provider}_"):
            index[(name, False)] = path.name
    return index


def _module_of(type_name: str, data: bool) -> str | None:
    """The module binding a type: the usual name when its heading says so (one small read), else
    the index of every module (read once)."""
    provider = _provider_of(type_name)
    guess = ("data_" + type_name) if data else type_name[len(provider) + 1:]
    if _heading(provider, guess) == (("data_" + type_name) if data else type_name):
        return guess
    return _modules(provider).get((type_name, data))


def resource(type_name: str, data: bool = False) -> Schema | None:
    """The schema of a resource (or data source) type; None when the provider has no such type."""
    module = _module_of(type_name, data)
    if module is None:
        return None
    return next((s for is_config, s in _module(_provider_of(type_name), module).values() if is_config), None)


def provider_config(provider: str) -> Schema | None:
    classes = _module(provider, "provider")
    return next((s for name, (_, s) in classes.items() if name.endswith("ProviderConfig")), None)


def block(parent: Schema, provider: str, name: str) -> Schema:
    return _module(provider, parent.module)[name][1]


def known_types(provider: str, data: bool = False) -> list[str]:
    """Every resource (or data source) type of a provider, as Terraform names them."""
    return sorted(name for name, is_data in _modules(provider) if is_data == data)
