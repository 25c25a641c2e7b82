"""What every template shares: declared constraints, validation at declaration, dependencies.

A template is a dataclass. Its fields are its parameters; a field whose value is another
template is a dependency. Each subclass declares `_parameter_constraints` (field -> accepted
forms) and may add rules spanning several fields in `_check_combinations`. All problems are
collected and raised once, each naming the template, the field, what it accepts and what it got.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ..errors import ParameterError
from .constraints import Constraint, describe, rejects

if TYPE_CHECKING:  # the hatches are plain records; extensions.py applies them
    from ..extensions import Extension, Hatch
    from ..terraform import Value

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep

NAME_PATTERN = r"[a-z][a-z0-9-]{0,18}[a-z0-9]"
NAME_RULE = "2 to 20 lowercase letters, digits and hyphens, starting with a letter"


def parameter_error(template: Template, field: str, accepted: str, got: Any) -> str:
    """The one shape every parameter error takes."""
    return (f"The '{field}' parameter of {type(template).__name__} '{template.name}' "
            f"must be {accepted}. Got {got!r} instead.")


def _field_problems(owner: Template, obj: Any, prefix: str) -> list[str]:
    """Constraint violations of `obj`'s fields, then of the Specs nested in them, named by path."""
    problems = []
    for field, constraints in obj._parameter_constraints.items():
        value = getattr(obj, field)
        path = f"{prefix}{field}"
        if rejects(constraints, value):
            problems.append(parameter_error(owner, path, describe(constraints), value))
        elif isinstance(value, Spec):
            problems += _field_problems(owner, value, f"{path}.")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, Spec):
                    problems += _field_problems(owner, item, f"{path}[{i}].")
    if not problems and isinstance(obj, Spec):
        problems += [f"{owner.kind} '{owner.name}': {prefix.rstrip('.')}: {p}" for p in obj.check_combinations()]
    return problems


class Spec:
    """A group of related options inside a template (a variant, a deployment policy, ...).

    Specs are frozen dataclasses declaring `_parameter_constraints` like templates do; they are
    validated by the template that holds them, so an error names the full path of the field
    (`variants[1].weight`) and points at the template's declaration.
    """

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {}

    def check_combinations(self) -> list[str]:
        return []


def location(template: Template) -> str:
    """`file:line: ` of the template's declaration, relative to the working directory when possible."""
    return site(template.declared_at)


def site(declared_at: tuple[str, int] | None) -> str:
    """`file:line: ` of a blueprint line (a declaration, an `extend` or `override` call), or ''."""
    if declared_at is None:
        return ""
    filename, line = declared_at
    with contextlib.suppress(ValueError):
        filename = str(Path(filename).resolve().relative_to(Path.cwd()))
    return f"{filename}:{line}: "


def _declaration_site() -> tuple[str, int] | None:
    """The blueprint file and line that constructed a template, for later error messages."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and not filename.endswith("dataclasses.py") and filename != "<string>":
            return filename, frame.f_lineno
        frame = frame.f_back
    return None


def _merge_override(current: Any, value: Any, path: str) -> Any:
    if isinstance(current, Spec) and isinstance(value, dict):
        fields = [f.name for f in dataclasses.fields(current)]  # type: ignore[arg-type]
        unknown = [k for k in value if k not in fields]
        if unknown:
            raise ParameterError(f"{path}.{unknown[0]}: {type(current).__name__} has no field {unknown[0]!r} "
                                 f"(fields: {', '.join(fields)})")
        return dataclasses.replace(  # type: ignore[type-var]
            current, **{k: _merge_override(getattr(current, k), v, f"{path}.{k}") for k, v in value.items()})
    named = isinstance(current, (list, tuple)) and current and all(hasattr(c, "name") for c in current)
    if named and all(isinstance(c, Spec) for c in current) and isinstance(value, dict):
        by_name = {c.name: c for c in current}
        unknown = [k for k in value if k not in by_name]
        if unknown:
            raise ParameterError(f"{path}.{unknown[0]}: no item named {unknown[0]!r} (items: {', '.join(by_name)})")
        return type(current)(
            _merge_override(c, value[c.name], f"{path}.{c.name}") if c.name in value else c for c in current)
    return value


class Template:
    """Base of every template, the built-in four and a team's own (README: Your own templates).

    Subclasses are dataclasses with a `name` field; `extend` and `override` are the escape hatches
    (README: Escape hatches), `renamed_from` acknowledges a migrated state (README: Renames).
    """

    name: str
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {}
    declared_at: tuple[str, int] | None

    def __post_init__(self) -> None:
        self.declared_at = _declaration_site()
        problems = self.problems()
        if problems:
            raise ParameterError(problems)

    def problems(self) -> list[str]:
        problems = _field_problems(self, self, "")
        if not problems:
            problems += self._check_combinations()
        return problems

    def _check_combinations(self) -> list[str]:
        """Rules spanning several fields; each message names every field involved."""
        return []

    @property
    def kind(self) -> str:
        return type(self).__name__

    def dependencies(self) -> Iterator[Template]:
        """Templates this one reads from, in field order."""
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if isinstance(value, Template):
                yield value
            elif isinstance(value, (list, tuple)):
                yield from (v for v in value if isinstance(v, Template))

    def parameters(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def overridable(self) -> list[str]:
        """Parameters a namespace may override: everything except name and dependencies."""
        return [
            f.name for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.name != "name" and not isinstance(getattr(self, f.name), Template)
        ]

    def with_overrides(self, overrides: dict[str, Any]) -> Self:
        """A copy with some parameters replaced, validated again; dependencies are kept.

        A mapping given for a nested option (`autoscaling: {max_capacity: 8}`) changes only the
        fields it names; for a list of named options (`variants: {champion: {...}}`) it changes
        the items it names.
        """
        merged = {key: _merge_override(getattr(self, key), value, key) for key, value in overrides.items()}
        copy = dataclasses.replace(self, **merged)  # type: ignore[type-var]
        copy.declared_at = self.declared_at
        copy._hatches = list(self.hatches())
        copy._renamed_from = self.renamed_from_name
        return copy

    # --- escape hatches (mlops_dsl/extensions.py; README: Escape hatches) --------------------------

    def extend(self, fn: Extension) -> Self:
        """Run `fn(stack, namespace)` on this template's rendered stack, in every namespace: it may add
        resources (`stack.add(...)`) and change generated ones. Returns the template, for chaining."""
        from ..extensions import Extend

        if not callable(fn):
            raise ParameterError(f"{self.kind} '{self.name}': extend() takes a function (stack, namespace). "
                                 f"Got {fn!r} instead.")
        self._hatches = [*self.hatches(), Extend(fn, _declaration_site())]
        return self

    def override(self, address: str, path: str, value: Value) -> Self:
        """Set `path` of the generated resource at `address` to `value` in every namespace
        (`override("aws_sns_topic.alarms", "tags.owner", "ml")`; None removes it). Checked when
        the stack renders: an unknown address names the closest one."""
        from ..extensions import Override, _parse

        if not isinstance(address, str) or not address:
            raise ParameterError(f"{self.kind} '{self.name}': override(): the address must be a resource address "
                                 f"like 'aws_sns_topic.alarms'. Got {address!r} instead.")
        try:
            _parse(path)
        except ValueError as exc:
            raise ParameterError(f"{self.kind} '{self.name}': override({address!r}, ...): {exc}") from None
        self._hatches = [*self.hatches(), Override(address, path, value, _declaration_site())]
        return self

    def hatches(self) -> list[Hatch]:
        """The `extend` and `override` calls on this template, in the order they were made."""
        return list(getattr(self, "_hatches", []))

    def renamed_from(self, old_name: str) -> Self:
        """Say this template was called `old_name` and its state has been migrated to the new key
        (README: Renames). Without it, a rename that synth recognises is an error with the migration."""
        if not isinstance(old_name, str) or not old_name:
            raise ParameterError(f"{self.kind} '{self.name}': renamed_from() takes the old template name. "
                                 f"Got {old_name!r} instead.")
        self._renamed_from = old_name
        return self

    @property
    def renamed_from_name(self) -> str | None:
        return getattr(self, "_renamed_from", None)

    def __repr__(self) -> str:
        return f"{self.kind}(name={self.name!r})"
