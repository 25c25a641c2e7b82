"""Escape hatches: a blueprint adds resources to a template's stack, or changes one generated value.

A template renders what it knows; a team always needs one more thing (a metric filter, a tag a
policy requires, a longer timeout). Two hatches, both applied while the stack is built, before
any check, so `mlops validate --schema`, checkov and `synth --check` see their result like any
generated resource:

- `template.extend(fn)`: `fn(stack, namespace)` runs after the template's renderer with the stack
  it filled (its resources, data sources, outputs, locals) and the namespace being rendered; it
  may add resources (`stack.add(Resource(...))`) and change what is there, per namespace if it
  likes (`if namespace.name == "prod": ...`).
- `template.override(address, path, value)`: one attribute, map key or nested block of one
  generated resource, in every namespace: `override("aws_sns_topic.alarms", "tags.owner", "ml")`.
  `path` is dotted, with `[i]` for the i-th of repeated blocks or list items
  (`"rule[0].expiration.days"`); `None` as the value removes the attribute.

Hatches run in the order the blueprint declared them. An address the stack does not declare is
a BlueprintError naming the closest one; a user function that raises, or leaves a reference to
something the stack does not declare, is a BlueprintError naming the blueprint line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import BlueprintError, MlopsError
from .templates.base import site
from .terraform import Block, Blocks, DataSource, Resource, Stack, Value, check_references

if TYPE_CHECKING:  # only for hints: a namespace is what the function receives
    from .namespaces import Namespace

Extension = Callable[["Stack", "Namespace"], None]
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)$")


@dataclass(frozen=True)
class Extend:
    """A function that adds to (or changes) a template's rendered stack."""

    fn: Extension
    declared_at: tuple[str, int] | None = None

    def describe(self) -> str:
        return f"extend({getattr(self.fn, '__name__', repr(self.fn))})"


@dataclass(frozen=True)
class Override:
    """One value of one generated resource, replaced in every namespace."""

    address: str
    path: str
    value: Value
    declared_at: tuple[str, int] | None = None

    def describe(self) -> str:
        return f"override({self.address!r}, {self.path!r}, ...)"


Hatch = Extend | Override


def find(stack: Stack, address: str) -> Resource | DataSource:
    """The resource (`aws_x.y`) or data source (`data.aws_x.y`) at `address`; a KeyError naming the
    closest declared address otherwise (the hatches turn it into a BlueprintError)."""
    for item in [*stack.resources, *stack.data]:
        if item.address == address:
            return item
    known = [i.address for i in [*stack.resources, *stack.data]]
    close = difflib.get_close_matches(address, known, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f" (it declares {len(known)} resources and data sources)"
    raise KeyError(f"stack {stack.name} declares no {address}{hint}")


def set_attribute(stack: Stack, address: str, path: str, value: Value) -> None:
    """Set `path` (dotted, `[i]` for the i-th block or item) of the resource at `address` to `value`.

    The function behind `override`, public so an `extend` function can override per namespace.
    Raises KeyError for an unknown address and ValueError for a path that cannot be followed.
    """
    item = find(stack, address)
    segments = _parse(path)
    item.body = dict(_set(item.body, segments, value, address, []))  # type: ignore[arg-type]


def _parse(path: str) -> list[str | int]:
    segments: list[str | int] = []
    if not isinstance(path, str) or not path:
        raise ValueError(f"the path must be a non-empty string like 'tags.owner' or 'rule[0].status'; got {path!r}")
    for part in path.split("."):
        match = _SEGMENT.match(part)
        if match is None:
            raise ValueError(f"path {path!r}: {part!r} is not a name, optionally followed by [index]")
        segments.append(match.group(1))
        segments += [int(i) for i in re.findall(r"\[(\d+)\]", match.group(2))]
    return segments


def _set(current: Value, segments: Sequence[str | int], value: Value, address: str, done: list[str]) -> Value:
    """`current` with the value at `segments` replaced; containers on the way are copied, not changed."""
    head, rest = segments[0], segments[1:]
    shown = address + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in done)
    if isinstance(current, Block):
        return replace(current, body=_set(current.body, segments, value, address, done))  # type: ignore[arg-type]
    if isinstance(head, int):
        if not isinstance(current, (list, tuple)):
            raise ValueError(f"{shown} is not a list or repeated block, so [{head}] cannot follow it")
        if head >= len(current):
            raise ValueError(f"{shown} has {len(current)} items, so [{head}] is out of range")
        items = list(current)
        items[head] = value if not rest else _set(items[head], rest, value, address, [*done, head])
        return Blocks(items) if isinstance(current, Blocks) else type(current)(items)  # type: ignore[arg-type]
    if current is None:
        current = {}
    if not isinstance(current, Mapping):
        raise ValueError(f"{shown} is {type(current).__name__}, not a map or block, so .{head} cannot follow it")
    body = dict(current)
    if not rest:
        if value is None:
            body.pop(head, None)
        else:
            body[head] = value
        return body
    body[head] = _set(body.get(head), rest, value, address, [*done, head])
    return body


def apply(hatches: Sequence[Hatch], stack: Stack, namespace: Namespace, owner: str) -> None:
    """Run each hatch on the rendered `stack`, then prove the stack still holds together.

    `owner` names the template (`ModelServing 'serving'`) for messages.
    """
    for hatch in hatches:
        where = f"{site(hatch.declared_at)}{owner}: {hatch.describe()}"
        try:
            if isinstance(hatch, Override):
                set_attribute(stack, hatch.address, hatch.path, hatch.value)
            else:
                hatch.fn(stack, namespace)
        except MlopsError as exc:
            raise type(exc)([f"{where}: {p}" for p in exc.problems]) from None
        except (KeyError, ValueError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            said = ": " if isinstance(hatch, Override) else f" raised {type(exc).__name__}: "
            raise BlueprintError(f"{where}{said}{message} (namespace '{namespace.name}')") from None
        except Exception as exc:  # user code: a mistake in the blueprint, reported without a traceback
            raise BlueprintError(f"{where} raised {type(exc).__name__}: {exc} (namespace '{namespace.name}')") from None
    if hatches:
        problems = check_references(stack)
        if problems:
            shown = ", ".join(h.describe() for h in hatches)
            raise BlueprintError([f"{owner}: after {shown}: {p} (namespace '{namespace.name}')" for p in problems])

