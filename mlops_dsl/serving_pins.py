"""Which variants of a ModelServing template serve which pinned model version, on either cloud.

A variant serves the version its namespace pins in `models/<namespace>.yaml` (README: the model
lifecycle); a variant without a pin is left out and the plan says so; a pin naming a variant the
template does not declare is an error naming the pin file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .context import StackContext
from .pins import Pin, path_for
from .templates.serving import ModelServing, Variant


@dataclass(frozen=True)
class Pinned:
    field: str
    variant: Variant
    pin: Pin


def pinned(t: ModelServing, ctx: StackContext) -> tuple[list[Pinned], Pinned | None]:
    """The production variants with a pin, in declaration order, and the shadow variant if pinned.

    A pin naming a variant the template does not declare is an error naming the pin file.
    """
    pins = ctx.namespace.pins.get(ctx.platform, {})
    source = path_for(Path(ctx.namespace.source), ctx.namespace.name)
    declared = [v.name for v in t.variants] + ([t.shadow.name] if t.shadow else [])
    unknown = [name for name in pins if name not in declared]
    if unknown:
        raise ctx.error("variants", f"{source}: {ctx.platform}.{unknown[0]}: ModelServing '{t.name}' has no variant "
                                    f"{unknown[0]!r} (variants: {', '.join(declared)})")
    production = [Pinned(f"variants[{i}]", v, pins[v.name]) for i, v in enumerate(t.variants) if v.name in pins]
    for v in [*t.variants, *([t.shadow] if t.shadow else [])]:
        if v.name not in pins:
            ctx.stack.notes.append(f"{v.name}: no model version pinned ({source}), so it is not served")
    shadow = Pinned("shadow", t.shadow, pins[t.shadow.name]) if t.shadow and t.shadow.name in pins else None
    return production, shadow


__all__ = ["Pinned", "pinned"]
