"""Parameter constraints declared as data, after scikit-learn's `_param_validation`.

Each constraint says whether a value satisfies it and describes itself; a parameter passes when
any one of its constraints holds, and the error message is built from those descriptions. Tests
generate valid and invalid values from the same table (see `examples`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class Constraint:
    def is_satisfied_by(self, value: Any) -> bool:
        raise NotImplementedError

    def invalid_examples(self) -> list[Any]:
        """Values this constraint rejects, for generated tests."""
        return []


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of `kind` (int or float) in [low, high]; None means unbounded."""

    kind: type
    low: float | None
    high: float | None

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if self.kind is float and not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{'an int' if self.kind is int else 'a float'} in the range [{low}, {high}]"

    def invalid_examples(self) -> list[Any]:
        out: list[Any] = ["1", True]
        if self.low is not None:
            out.append(self.kind(self.low) - 1)
        if self.high is not None:
            out.append(self.kind(self.high) + 1)
        return out


@dataclass(frozen=True)
class Options(Constraint):
    options: tuple[Any, ...]

    def is_satisfied_by(self, value: Any) -> bool:
        return any(value == o and type(value) is type(o) for o in self.options)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)

    def invalid_examples(self) -> list[Any]:
        return ["not-an-option"]


@dataclass(frozen=True)
class Pattern(Constraint):
    """A string matching `regex` in full; `description` says the rule in words."""

    regex: str
    description: str

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and re.fullmatch(self.regex, value) is not None

    def __str__(self) -> str:
        return f"a string of {self.description}"

    def invalid_examples(self) -> list[Any]:
        return [42, "Has Spaces And CAPITALS!"]


@dataclass(frozen=True)
class InstanceOf(Constraint):
    kind: type

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.kind) and not (self.kind is int and isinstance(value, bool))

    def __str__(self) -> str:
        return f"an instance of {self.kind.__name__}"

    def invalid_examples(self) -> list[Any]:
        return [object()]


@dataclass(frozen=True)
class NoneOK(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


@dataclass(frozen=True)
class ListOf(Constraint):
    """A list or tuple whose items each satisfy `item`, of length in [min_len, max_len], unique if asked."""

    item: Constraint
    min_len: int = 0
    max_len: int | None = None
    unique: bool = False

    def is_satisfied_by(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)):
            return False
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            return False
        if self.unique and len(set(map(repr, value))) != len(value):
            return False
        return all(self.item.is_satisfied_by(v) for v in value)

    def __str__(self) -> str:
        size = f"at least {self.min_len}" if self.max_len is None else f"{self.min_len} to {self.max_len}"
        uniq = " unique" if self.unique else ""
        return f"a list of {size}{uniq} items, each {self.item}"

    def invalid_examples(self) -> list[Any]:
        bad = self.item.invalid_examples()
        out: list[Any] = ["not-a-list"]
        if bad:
            out.append([bad[0]])
        if self.min_len > 0:
            out.append([])
        return out


def describe(constraints: Sequence[Constraint]) -> str:
    texts = [str(c) for c in constraints]
    if len(texts) == 1:
        return texts[0]
    return ", ".join(texts[:-1]) + " or " + texts[-1]


def rejects(constraints: Sequence[Constraint], value: Any) -> bool:
    """True when no constraint accepts the value."""
    return not any(c.is_satisfied_by(value) for c in constraints)
