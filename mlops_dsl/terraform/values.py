"""Values that can stand on the right of `=` in Terraform, and nested blocks.

A plain Python `str` is always a *literal*: the writers escape it (`${` and `%{` included), so
no user text can ever become an expression. Expressions are explicit objects that carry the
addresses they reference, which lets a stack check that every reference resolves before
anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, Union


@dataclass(frozen=True)
class Expr:
    """A raw Terraform expression such as `aws_kms_key.data.arn`.

    `refs` names the objects it reads (`aws_kms_key.data`, `var.x`, `local.y`,
    `data.terraform_remote_state.data`), so references can be checked without parsing HCL.
    """

    text: str
    refs: tuple[str, ...] = ()

    def attr(self, name: str) -> Expr:
        return Expr(f"{self.text}.{name}", self.refs)

    def __getitem__(self, key: int | str) -> Expr:
        index = f'"{key}"' if isinstance(key, str) else str(key)
        return Expr(f"{self.text}[{index}]", self.refs)


@dataclass(frozen=True)
class Interp:
    """A string template mixing literal text and expressions: `"arn:${x}/*"`."""

    parts: tuple[str | Expr, ...]


@dataclass(frozen=True)
class Call:
    """A function call, e.g. `jsonencode({...})` for IAM and key policies."""

    name: str
    args: tuple[Value, ...]


@dataclass(frozen=True)
class Block:
    """A nested block (`rule { ... }`), which Terraform distinguishes from a map attribute.

    In a body, a list of Blocks under one key renders as that block repeated.
    """

    body: Mapping[str, Value]
    labels: tuple[str, ...] = ()


class Blocks(tuple[Block, ...]):
    """A nested block repeated zero or more times: `blocks(Block(...) for e in emails)`.

    A block type is never an argument, so zero blocks must render as nothing: `email_receiver = []`
    is rejected by Terraform ("Unsupported argument ... Did you mean to define a block"), though the
    JSON syntax would accept `[]`. A plain empty list cannot say it meant blocks, so it stays the
    literal `[]` and `validate --schema` flags it where the schema has a block; this type says so,
    and both writers then omit the key.
    """

    __slots__ = ()

    def __new__(cls, items: Iterable[Block] = ()) -> Blocks:
        items = tuple(items)
        wrong = [type(i).__name__ for i in items if not isinstance(i, Block)]
        if wrong:
            raise TypeError(f"Blocks holds Block values only, got {', '.join(wrong)}")
        return super().__new__(cls, items)


def blocks(items: Iterable[Block] = ()) -> Blocks:
    """Zero or more repetitions of a nested block; none renders as no block at all."""
    return Blocks(items)


Scalar: TypeAlias = Union[bool, int, float, str, None]  # noqa: UP007 - recursive alias needs Union
Value: TypeAlias = Union[Scalar, Expr, Interp, Call, Block, Sequence["Value"], Mapping[str, "Value"]]  # noqa: UP007


def interp(*parts: str | Expr) -> Interp:
    return Interp(tuple(parts))


def jsonencode(value: Value) -> Call:
    return Call("jsonencode", (value,))


def refs_of(value: Value) -> Iterator[str]:
    """Every address a value references, in order of appearance."""
    if isinstance(value, Expr):
        yield from value.refs
    elif isinstance(value, Interp):
        for part in value.parts:
            if isinstance(part, Expr):
                yield from part.refs
    elif isinstance(value, Call):
        for arg in value.args:
            yield from refs_of(arg)
    elif isinstance(value, Block):
        for item in value.body.values():
            yield from refs_of(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from refs_of(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from refs_of(item)


@dataclass(frozen=True)
class Lifecycle:
    create_before_destroy: bool = False
    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = field(default=())

    def is_empty(self) -> bool:
        return not (self.create_before_destroy or self.prevent_destroy or self.ignore_changes)
