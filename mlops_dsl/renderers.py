"""Renderers of a team's own templates, registered per cloud from the team's repository.

A template of one's own is a `Template` subclass (a dataclass with a `name` field, parameters
and `_parameter_constraints`; a field holding another template is a dependency). Its renderer is
a function `(template, ctx: StackContext) -> None` that fills `ctx.stack`, exactly like the
built-in four: it reads upstream outputs with `ctx.upstream_output(template.data, "bucket_names")`
(a `terraform_remote_state` data source on the namespace's backend, and the dependency recorded for
deploy order) and declares its own outputs with `ctx.stack.add(Output(...))`.

    @renderer(DataArrivals, cloud="aws")
    def render_arrivals(t: DataArrivals, ctx: StackContext) -> None: ...

The built-in templates keep their renderers: a team changes one with `extend`/`override`
(extensions.py), or subclasses it and registers a renderer for the subclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .errors import BlueprintError
from .templates.base import Template

CLOUD_NAMES = ("aws", "azure")
Renderer = Callable[[Any, Any], None]  # (template, StackContext) -> None; Any: a subclass's own type
R = TypeVar("R", bound=Renderer)

_REGISTERED: dict[tuple[str, type], Renderer] = {}


def register_renderer(template: type[Template], cloud: str, fn: Renderer,
                      built_in: Mapping[type, Renderer] | None = None) -> Renderer:
    """Make `fn` render `template` on `cloud`. `built_in` (the cloud's own table) is checked so a
    built-in template is never silently replaced."""
    problems = []
    if not (isinstance(template, type) and issubclass(template, Template)) or template is Template:
        problems.append(f"register_renderer: the template must be a Template subclass. Got {template!r} instead.")
    elif not dataclasses.is_dataclass(template) or "name" not in {f.name for f in dataclasses.fields(template)}:
        problems.append(f"register_renderer: {template.__name__} must be a @dataclass with a `name` field "
                        f"(e.g. `name: str = field(default=\"alerts\", kw_only=True)`)")
    if cloud not in CLOUD_NAMES:
        problems.append(f"register_renderer({getattr(template, '__name__', template)}): cloud must be one of "
                        f"{', '.join(CLOUD_NAMES)}. Got {cloud!r} instead.")
    if not callable(fn):
        problems.append(f"register_renderer: the renderer must be a function (template, ctx). Got {fn!r} instead.")
    if problems:
        raise BlueprintError(problems)
    table = built_in if built_in is not None else _built_in(cloud)
    if template in table:
        raise BlueprintError(f"register_renderer: {template.__name__} has a built-in {cloud.upper()} renderer; change "
                             f"its stacks with extend()/override(), or subclass it and register the subclass")
    current = _REGISTERED.get((cloud, template))
    if current is not None and current is not fn:
        raise BlueprintError(f"register_renderer: {template.__name__} already has a {cloud.upper()} renderer "
                             f"({getattr(current, '__qualname__', current)}); register one per template and cloud")
    _REGISTERED[(cloud, template)] = fn
    return fn


def renderer(template: type[Template], cloud: str) -> Callable[[R], R]:
    """Decorator form of `register_renderer`."""
    def decorate(fn: R) -> R:
        register_renderer(template, cloud, fn)
        return fn
    return decorate


def renderer_for(cloud: str, built_in: Mapping[type, Renderer], template: Template) -> Renderer | None:
    """The function that renders `template` on `cloud`: its built-in one, else a registered one."""
    return built_in.get(type(template)) or _REGISTERED.get((cloud, type(template)))


def registered() -> dict[tuple[str, type], Renderer]:
    """(cloud, template class) -> renderer, for tests and `mlops` listings."""
    return dict(_REGISTERED)


def _built_in(cloud: str) -> Mapping[type, Renderer]:
    from .platform import load_cloud

    return load_cloud(cloud).RENDERERS
