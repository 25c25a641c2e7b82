"""The optional cdktf engine: the same stacks built as CDK for Terraform constructs.

Generic over the object model, with no second copy of any template: each resource, data source
and provider becomes an instance of its class in the prebuilt bindings (found through
`bindings`), constructed with the arguments the binding requires and given every other argument
and meta-argument as a raw override, exactly as the native JSON writer renders it. Backends and
remote state use cdktf's own classes. Logical ids are overridden to the native names, so
addresses, references and state are interchangeable between the engines. Types without bindings
(azapi) become plain `TerraformResource`s.

Importing this module starts nothing; `synth` imports cdktf, which starts the jsii runtime (Node).
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


def _node_problem() -> str | None:
    """Why jsii could not start Node (checked first: a failed start leaves jsii printing tracebacks)."""
    node = shutil.which("node")
    if node is None:
        return "Node.js >= 18 is not on PATH"
    result = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    match = re.match(r"v(\d+)\.", result.stdout.strip())
    if not match or int(match.group(1)) < 18:
        return f"{node} is {result.stdout.strip() or 'not a working Node.js'}; it needs Node.js >= 18"
    return None


def _cdktf() -> Any:
    # jsii prints a ten-line banner on every start that Node 18/20 are past their end of life; the
    # engine works on them (the README says so), so the banner would only bury its output.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    if importlib.util.find_spec("cdktf") is None:
        raise OperationError("the cdktf engine needs `pip install 'mlops-dsl[cdktf]'` and Node.js >= 18")
    problem = _node_problem()
    if problem:
        raise OperationError(f"the cdktf engine runs on jsii, which needs Node.js: {problem}")
    try:
        import cdktf
    except Exception as exc:  # jsii raises its own errors when Node cannot start
        raise OperationError(f"the cdktf engine could not start the jsii runtime (Node.js >= 18 needed): "
                             f"{exc}") from None
    return cdktf


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


def _construct(cdktf: Any, scope: Any, type_name: str, name: str, body: dict[str, Any], data: bool) -> None:
    construct_id = f"{'data.' if data else ''}{type_name}.{name}"  # unique in the stack, unlike `name`
    generic = cdktf.TerraformDataSource if data else cdktf.TerraformResource
    element = _element(scope, construct_id, _binding_class(type_name, data), type_name.split("_", 1)[0], body,
                       lambda: generic(scope, construct_id, terraform_resource_type=type_name))
    element.override_logical_id(name)


def _provider(cdktf: Any, scope: Any, provider: Provider) -> None:
    _element(scope, provider.name, _binding_class(provider.name, False, provider=True), provider.name,
             body_json({"alias": provider.alias, **provider.body}),
             lambda: cdktf.TerraformProvider(scope, provider.name, terraform_resource_type=provider.name))


_BACKENDS = {"s3": ("S3Backend", "DataTerraformRemoteStateS3"),
             "azurerm": ("AzurermBackend", "DataTerraformRemoteStateAzurerm"),
             "local": ("LocalBackend", "DataTerraformRemoteStateLocal")}


def _backend_class(cdktf: Any, kind: str, remote: bool) -> Any:
    if kind not in _BACKENDS:
        raise OperationError(f"the cdktf engine knows no {kind!r} backend (known: {', '.join(_BACKENDS)})")
    return getattr(cdktf, _BACKENDS[kind][remote])


def _split(cls: Any, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings a cdktf class takes as keywords, and those it is too old to know (cdktf 0.21
    predates e.g. the S3 backend's `use_lockfile`), which go in as overrides."""
    accepted = set(inspect.signature(cls.__init__).parameters)
    return ({k: v for k, v in config.items() if k in accepted}, {k: v for k, v in config.items() if k not in accepted})


def _stack(cdktf: Any, scope: Any, stack: Stack) -> None:
    settings = stack.settings
    if settings.backend is not None:
        cls = _backend_class(cdktf, settings.backend.type, False)
        known, rest = _split(cls, body_json(settings.backend.config))
        cls(scope, **known)
        for key, value in rest.items():
            scope.add_override(f"terraform.backend.{settings.backend.type}.{key}", value)
    for provider in stack.providers:
        _provider(cdktf, scope, provider)
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
            cls = _backend_class(cdktf, body["backend"], True)
            known, rest = _split(cls, dict(body.get("config", {})))
            element = cls(scope, f"data.terraform_remote_state.{item.name}", **known)
            element.override_logical_id(item.name)
            for key, value in rest.items():
                element.add_override(f"config.{key}", value)
            continue
        _construct(cdktf, scope, item.type, item.name, body, isinstance(item, DataSource))
    for variable in stack.variables:
        element = cdktf.TerraformVariable(scope, f"var.{variable.name}", **body_json({
            "type": variable.type, "default": variable.default, "description": variable.description,
            "sensitive": variable.sensitive or None}))
        element.override_logical_id(variable.name)
    for output in stack.outputs:
        values = body_json({"value": output.value, "description": output.description,
                            "sensitive": output.sensitive or None})
        element = cdktf.TerraformOutput(scope, f"output.{output.name}", value=values.pop("value"), **values)
        element.override_logical_id(output.name)


def synth(stacks: Iterable[tuple[str, Stack]], out: Path) -> list[Path]:
    """Write `<out>/<path>/cdk.tf.json` for each (path, stack); returns the files written.

    cdktf writes into a temporary directory first; the files are moved into place only once
    every stack synthesized, so a failure leaves `out` as it was.
    """
    cdktf = _cdktf()
    stacks = list(stacks)
    with tempfile.TemporaryDirectory(prefix="mlops-cdktf-") as tmp:
        app = cdktf.App(outdir=tmp, skip_validation=True)
        ids = {}
        for path, stack in stacks:
            stack_id = path.replace("/", "--")
            ids[path] = stack_id
            _stack(cdktf, cdktf.TerraformStack(app, stack_id), stack)
        app.synth()
        written = []
        for path, stack_id in ids.items():
            source = Path(tmp) / "stacks" / stack_id / OUTPUT
            target = out / path / OUTPUT
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(target)
    return written


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """A Terraform JSON document with cdktf's own `//` metadata removed and each block given as a
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
