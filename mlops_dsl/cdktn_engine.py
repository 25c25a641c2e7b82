"""The optional cdktn engine: the same stacks built as CDK Terrain constructs.

CDK Terrain (`cdktn`) is the maintained fork of CDK for Terraform, which HashiCorp archived in
December 2025; its API is cdktf's under a new package name. Generic over the object model, with no
second copy of any template: each resource, data source and provider becomes an instance of its
class in the prebuilt bindings (`cdktn-provider-*`, found through `bindings`), constructed with
the arguments the binding requires and given every other argument and meta-argument as a raw
override, exactly as the native JSON writer renders it. Backends and remote state use cdktn's own
classes. Logical ids are overridden to the native names, so addresses, references and state are
interchangeable between the engines. Types without bindings (azapi) become plain
`TerraformResource`s.

Importing this module starts nothing; `synth` imports cdktn, which starts the jsii runtime (Node).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import bindings
from .errors import OperationError
from .terraform import DataSource, Provider, Resource, Stack
from .terraform.tfjson import body_json, resource_json

OUTPUT = "cdk.tf.json"
# The oldest Node.js the engine runs on. jsii 1.142 (which cdktn 0.24 needs) ended its support of
# Node 18 on 2025-11-30 and of Node 20 on 2026-10-30 (six months past its end of life), but still
# runs on 20, the version this project is tested with; 22 and 24 are supported.
NODE_MAJOR = 20
# The engine's former name: refused with a pointer to the new one rather than run on the archive.
RETIRED = "cdktf"


def _node_problem() -> str | None:
    """Why jsii could not start Node (checked first: a failed start leaves jsii printing tracebacks)."""
    node = shutil.which("node")
    if node is None:
        return f"Node.js >= {NODE_MAJOR} is not on PATH"
    result = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    match = re.match(r"v(\d+)\.", result.stdout.strip())
    if not match or int(match.group(1)) < NODE_MAJOR:
        return f"{node} is {result.stdout.strip() or 'not a working Node.js'}; it needs Node.js >= {NODE_MAJOR}"
    return None


def _cdktn() -> Any:
    # jsii prints a ten-line banner on every start that Node 20 is past its end of life; the engine
    # works on it (the README says so), so the banner would only bury its output.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", str(NODE_MAJOR))
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    if importlib.util.find_spec("cdktn") is None:
        raise OperationError(f"the cdktn engine needs `{bindings.INSTALL}` and Node.js >= {NODE_MAJOR}")
    problem = _node_problem()
    if problem:
        raise OperationError(f"the cdktn engine runs on jsii, which needs Node.js: {problem}")
    try:
        import cdktn
    except Exception as exc:  # jsii raises its own errors when Node cannot start
        raise OperationError(f"the cdktn engine could not start the jsii runtime (Node.js >= {NODE_MAJOR} "
                             f"needed): {exc}") from None
    return cdktn


def _binding_class(type_name: str, data: bool, provider: bool = False) -> tuple[Any, bindings.Schema] | None:
    prefix = type_name.split("_", 1)[0]
    if prefix not in bindings.PACKAGES:
        return None
    schema = bindings.provider_config(prefix) if provider else bindings.resource(type_name, data)
    if schema is None:
        return None
    module = importlib.import_module(f"{bindings.PACKAGES[prefix]}.{schema.module}")
    return getattr(module, schema.name.removesuffix("Config")), schema


def _struct(module: Any, schema: bindings.Schema, provider: str, body: dict[str, Any]) -> Any:
    """A binding's struct instance for one nested block; its nested blocks in turn as structs (jsii
    would not recognize their keys in a plain dict)."""
    return getattr(module, schema.name)(**_keywords(module, schema, provider, body))


def _keywords(module: Any, schema: bindings.Schema, provider: str, body: dict[str, Any],
              only_required: bool = False) -> dict[str, Any]:
    out = {}
    for spec in schema.fields.values():
        if spec.name not in body or (only_required and not spec.required):
            continue
        value = body[spec.name]
        if spec.kind == "block" and spec.block and isinstance(value, (dict, list)):
            sub = bindings.block(schema, provider, spec.block)
            items = [value] if isinstance(value, dict) else value
            structs = [_struct(module, sub, provider, item) for item in items if isinstance(item, dict)]
            value = structs if spec.many else structs[0]
        elif isinstance(value, str) and spec.kind in ("list", "map") and "${" in value:
            # A whole list or map read from another stack (`${...remote_state...}`): jsii checks the
            # keyword's type, so the expression travels as a token of that type, as cdktn's own
            # `Token.as_list` / `Token.as_string_map` encode it.
            from cdktn import Token  # loaded already: this runs inside synth, after _cdktn()

            value = Token.as_list(value) if spec.kind == "list" else Token.as_string_map(value)
        out[spec.python] = value
    return out


def _element(scope: Any, construct_id: str, found: tuple[Any, bindings.Schema] | None, provider: str,
             body: dict[str, Any], generic: Any) -> Any:
    """An instance of the binding's class with its required arguments, every other argument as an
    override; `generic()` where the provider has no bindings."""
    if found is None:
        element, passed = generic(), set()
    else:
        cls, schema = found
        required = _keywords(importlib.import_module(cls.__module__), schema, provider, body, True)
        element = cls(scope, construct_id, **required)
        passed = {f.name for f in schema.fields.values() if f.python in required}
    for key, value in body.items():
        if key not in passed:
            element.add_override(key, value)
    return element


def _construct(cdktn: Any, scope: Any, type_name: str, name: str, body: dict[str, Any], data: bool) -> None:
    construct_id = f"{'data.' if data else ''}{type_name}.{name}"  # unique in the stack, unlike `name`
    generic = cdktn.TerraformDataSource if data else cdktn.TerraformResource
    element = _element(scope, construct_id, _binding_class(type_name, data), type_name.split("_", 1)[0], body,
                       lambda: generic(scope, construct_id, terraform_resource_type=type_name))
    element.override_logical_id(name)


def _provider(cdktn: Any, scope: Any, provider: Provider) -> None:
    _element(scope, provider.name, _binding_class(provider.name, False, provider=True), provider.name,
             body_json({"alias": provider.alias, **provider.body}),
             lambda: cdktn.TerraformProvider(scope, provider.name, terraform_resource_type=provider.name))


_BACKENDS = {"s3": ("S3Backend", "DataTerraformRemoteStateS3"),
             "azurerm": ("AzurermBackend", "DataTerraformRemoteStateAzurerm"),
             "local": ("LocalBackend", "DataTerraformRemoteStateLocal")}


def _backend_class(cdktn: Any, kind: str, remote: bool) -> Any:
    if kind not in _BACKENDS:
        raise OperationError(f"the cdktn engine knows no {kind!r} backend (known: {', '.join(_BACKENDS)})")
    return getattr(cdktn, _BACKENDS[kind][remote])


def _split(cls: Any, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings a cdktn class takes as keywords, and those it does not know (a backend setting
    newer than the cdktn release), which go in as overrides."""
    accepted = set(inspect.signature(cls.__init__).parameters)
    return ({k: v for k, v in config.items() if k in accepted}, {k: v for k, v in config.items() if k not in accepted})


def _stack(cdktn: Any, scope: Any, stack: Stack) -> None:
    settings = stack.settings
    if settings.backend is not None:
        cls = _backend_class(cdktn, settings.backend.type, False)
        known, rest = _split(cls, body_json(settings.backend.config))
        cls(scope, **known)
        for key, value in rest.items():
            scope.add_override(f"terraform.backend.{settings.backend.type}.{key}", value)
    for provider in stack.providers:
        _provider(cdktn, scope, provider)
    # Our pinned ranges, over the exact versions the bindings were generated for.
    if settings.required_version:
        scope.add_override("terraform.required_version", settings.required_version)
    scope.add_override("terraform.required_providers", {
        n: {"source": p.source, "version": p.version} for n, p in settings.required_providers.items()})
    for key, value in body_json(stack.locals).items():
        scope.add_override(f"locals.{key}", value)
    items: list[DataSource | Resource] = [*stack.data, *stack.resources]
    for item in items:
        body = resource_json(item)
        if isinstance(item, DataSource) and item.type == "terraform_remote_state":
            cls = _backend_class(cdktn, body["backend"], True)
            known, rest = _split(cls, dict(body.get("config", {})))
            element = cls(scope, f"data.terraform_remote_state.{item.name}", **known)
            element.override_logical_id(item.name)
            for key, value in rest.items():
                element.add_override(f"config.{key}", value)
            continue
        _construct(cdktn, scope, item.type, item.name, body, isinstance(item, DataSource))
    for variable in stack.variables:
        element = cdktn.TerraformVariable(scope, f"var.{variable.name}", **body_json({
            "type": variable.type, "default": variable.default, "description": variable.description,
            "sensitive": variable.sensitive or None}))
        element.override_logical_id(variable.name)
    for output in stack.outputs:
        values = body_json({"value": output.value, "description": output.description,
                            "sensitive": output.sensitive or None})
        element = cdktn.TerraformOutput(scope, f"output.{output.name}", value=values.pop("value"), **values)
        element.override_logical_id(output.name)


def synth(stacks: Iterable[tuple[str, Stack]], out: Path) -> list[Path]:
    """Write `<out>/<path>/cdk.tf.json` for each (path, stack), and the stack's files beside it;
    returns the cdk.tf.json files written.

    cdktn writes into a temporary directory first; the files are moved into place only once
    every stack synthesized, so a failure leaves `out` as it was.
    """
    cdktn = _cdktn()
    stacks = list(stacks)
    with tempfile.TemporaryDirectory(prefix="mlops-cdktn-") as tmp:
        app = cdktn.App(outdir=tmp, skip_validation=True)
        ids = {}
        for path, stack in stacks:
            stack_id = path.replace("/", "--")
            ids[path] = stack_id
            _stack(cdktn, cdktn.TerraformStack(app, stack_id), stack)
        app.synth()
        written = []
        for path, stack in stacks:
            source = Path(tmp) / "stacks" / ids[path] / OUTPUT
            target = out / path / OUTPUT
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(target)
            for name, text in stack.files.items():  # what steps other than Terraform read, as the native writer
                beside = out / path / name
                beside.parent.mkdir(parents=True, exist_ok=True)
                beside.write_text(text, encoding="utf-8")
    return written


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """A Terraform JSON document with cdktn's own `//` metadata removed and each block given as a
    list of one object written as that object (Terraform reads both the same), so the two
    engines' output can be compared."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "//"}
        if isinstance(value, list):
            items = [strip(v) for v in value]
            return items[0] if len(items) == 1 and isinstance(items[0], dict) else items
        return value
    return strip(json.loads(json.dumps(document)))
