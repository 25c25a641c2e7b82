"""`mlops validate --schema` for azapi: each body against the types of its pinned `type@apiVersion`.

There are no cdktn bindings for azapi, and azapi's arguments are few; what goes wrong is the body,
a free-form object azapi checks only against its embedded Azure types (`azapi_types`). We check it
the way azapi's `schemaValidate` does: the body plus the resource's `name`, `location`, `tags` and
`identity`, with the provider's own exemptions (a missing `location` or `tags` is not an error,
since azapi fills them in). `azapi_update_resource` is a partial body merged into what Azure
returns, so required properties are not asked of it, but every name it sets must exist: azapi drops
the ones the API version lacks without a word.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .azapi_types import UNKNOWN, Checker, catalog
from .terraform import Block, Call, Expr, Interp
from .terraform.values import Value

CHECKED = ("azapi_resource", "azapi_update_resource")
NOT_REQUIRED_AT_TOP = ("location", "tags")  # azapi's schemaValidate skips these


def plain(value: Value) -> Any:
    """A model value as the JSON azapi sees, with expressions (known at apply time) as UNKNOWN."""
    if isinstance(value, (Expr, Interp, Call)):
        return UNKNOWN
    if isinstance(value, Block):
        return {k: plain(v) for k, v in value.body.items() if v is not None}
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _identity(value: Value) -> Any:
    """azapi's `identity` block as the body's `identity` object (`identity_ids` become the map's keys)."""
    if not isinstance(value, Block):
        return plain(value)
    out: dict[str, Any] = {"type": plain(value.body.get("type"))}
    if value.body.get("identity_ids"):
        out["userAssignedIdentities"] = UNKNOWN  # keys are resource ids known at apply time
    return out


def request_body(resource_type: str, arguments: Mapping[str, Value]) -> tuple[Any, set[str]]:
    """What azapi validates for one resource, and which of its top-level keys are the resource's own
    arguments: for azapi_resource the body gains `name`, `location`, `tags` and `identity`."""
    body = plain(arguments.get("body"))
    if resource_type != "azapi_resource" or not isinstance(body, dict):
        return body, set()
    added = {"name": plain(arguments.get("name"))}
    for key in ("location", "tags"):
        if arguments.get(key) is not None:
            added[key] = plain(arguments[key])
    if arguments.get("identity") is not None:
        added["identity"] = _identity(arguments["identity"])
    return {**body, **added}, set(added)


def _where(path_message: str, arguments: set[str]) -> str:
    """`body.properties.x: ...` for what the body sets, `location: ...` for the resource's own argument."""
    head = path_message.split(":", 1)[0]
    first = head.split(".", 1)[0].split("[", 1)[0]
    return path_message if first in arguments or head == "body" else f"body.{path_message}"


def check_resource(resource_type: str, arguments: Mapping[str, Value], where: str) -> list[str]:
    """Problems of one azapi resource's body, each naming `where` (stack and address) and the JSON path."""
    if resource_type not in CHECKED:
        return []
    type_at_version = arguments.get("type")
    if type_at_version is None:
        return [f"{where}: type: required by {resource_type}, and not set"]
    if not isinstance(type_at_version, str):
        return [f"{where}: type: is not a literal <type>@<apiVersion>, so the body cannot be checked"]
    found = catalog().body_of(type_at_version)
    if isinstance(found, str):
        return [f"{where}: type: {found}"]
    body, own = request_body(resource_type, arguments)
    if body is UNKNOWN or body is None:
        return []
    partial = resource_type == "azapi_update_resource"
    problems = Checker(catalog().types, required=not partial).check(found, body, "")
    return [f"{where}: {_where(p, own)}" for p in problems
            if not any(p.startswith(f"{key}: is required") for key in NOT_REQUIRED_AT_TOP)]
