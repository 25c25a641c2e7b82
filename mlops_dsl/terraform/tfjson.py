"""Terraform JSON (`.tf.json`) writer: the same stacks for tools that prefer JSON over HCL.

In JSON syntax every string is a template, so literals are escaped exactly as in HCL and
expressions travel as `"${...}"`. A `"//"` property carries the header comment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from . import hcl
from .model import DataSource, Resource, Stack
from .values import Block, Blocks, Call, Expr, Interp, Value


def _escape(text: str) -> str:
    return text.replace("${", "$${").replace("%{", "%%{")


def _value(value: Value) -> Any:
    if isinstance(value, str):
        return _escape(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Expr):
        return "${" + value.text + "}"
    if isinstance(value, Interp):
        return "".join("${" + p.text + "}" if isinstance(p, Expr) else _escape(p) for p in value.parts)
    if isinstance(value, Call):
        return "${" + "\n".join(hcl.expression(value, 0)) + "}"
    if isinstance(value, Block):
        return body_json(value.body)
    if isinstance(value, Mapping):
        return {_escape(k): _value(v) for k, v in value.items() if v is not None}
    if isinstance(value, Sequence):
        return [_value(v) for v in value]
    raise TypeError(f"cannot render {type(value).__name__} as Terraform JSON")


def body_json(items: Mapping[str, Value]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items.items():
        if value is None or (isinstance(value, Blocks) and not value):  # zero blocks: no key, as in HCL
            continue
        if isinstance(value, Block) and value.labels:
            inner: Any = body_json(value.body)
            for label in reversed(value.labels):
                inner = {label: inner}
            out[key] = inner
        else:
            out[key] = _value(value)
    return out


def resource_json(resource: Resource | DataSource) -> dict[str, Any]:
    out = body_json(resource.body)
    if isinstance(resource, Resource):
        for meta in ("provider", "count", "for_each"):
            value = getattr(resource, meta)
            if value is not None:
                out[meta] = value.text if meta == "provider" and isinstance(value, Expr) else _value(value)
        lc = resource.lifecycle
        if lc is not None and not lc.is_empty():
            out["lifecycle"] = {
                k: v for k, v in {
                    "create_before_destroy": lc.create_before_destroy or None,
                    "prevent_destroy": lc.prevent_destroy or None,
                    "ignore_changes": list(lc.ignore_changes) or None,
                }.items() if v is not None
            }
    if resource.depends_on:
        out["depends_on"] = [dep.address for dep in resource.depends_on]
    return out


def _document(header: str | None, content: dict[str, Any]) -> str:
    doc: dict[str, Any] = {"//": header} if header else {}
    doc.update(content)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _grouped(items: Sequence[Resource | DataSource]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for item in items:
        grouped.setdefault(item.type, {})[item.name] = resource_json(item)
    return grouped


def render_stack(stack: Stack) -> dict[str, str]:
    """File name -> Terraform JSON text; the same split into files as the HCL writer."""
    files: dict[str, str] = {}
    settings = stack.settings
    terraform: dict[str, Any] = {}
    if settings.required_version:
        terraform["required_version"] = settings.required_version
    if settings.required_providers:
        terraform["required_providers"] = {
            name: {"source": p.source, "version": p.version} for name, p in settings.required_providers.items()
        }
    if settings.backend is not None:
        terraform["backend"] = {settings.backend.type: body_json(settings.backend.config)}
    versions: dict[str, Any] = {"terraform": terraform}
    if stack.providers:
        providers: dict[str, list[dict[str, Any]]] = {}
        for p in stack.providers:
            providers.setdefault(p.name, []).append(body_json({"alias": p.alias, **p.body}))
        versions["provider"] = providers
    files["versions.tf.json"] = _document(stack.header, versions)

    remote = [d for d in stack.data if d.type == "terraform_remote_state"]
    other_data = [d for d in stack.data if d.type != "terraform_remote_state"]
    main: dict[str, Any] = {}
    if stack.locals:
        main["locals"] = body_json(stack.locals)
    if other_data:
        main["data"] = _grouped(other_data)
    if stack.resources:
        main["resource"] = _grouped(stack.resources)
    files["main.tf.json"] = _document(stack.header, main)
    if stack.variables:
        files["variables.tf.json"] = _document(stack.header, {"variable": {
            v.name: body_json({
                "description": v.description,
                "type": v.type,
                "default": v.default,
                "sensitive": True if v.sensitive else None,
            }) for v in stack.variables
        }})
    if stack.outputs:
        files["outputs.tf.json"] = _document(stack.header, {"output": {
            o.name: body_json({
                "description": o.description,
                "value": o.value,
                "sensitive": True if o.sensitive else None,
            }) for o in stack.outputs
        }})
    if remote:
        files["remote_state.tf.json"] = _document(stack.header, {"data": _grouped(remote)})
    if stack.moved:
        # JSON syntax: `moved` is an array of objects whose `from` and `to` are bare addresses (static
        # references, as in depends_on), not "${...}" templates; a "//" property carries the reason.
        files["moved.tf.json"] = _document(stack.header, {"moved": [
            {**({"//": m.reason} if m.reason else {}), "from": m.source, "to": m.target} for m in stack.moved]})
    return files
