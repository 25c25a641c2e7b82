"""Platform: a named set of templates on one cloud, their dependency graph, and synth per namespace."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import extensions
from .context import Cloud, StackContext
from .errors import BlueprintError, GraphError, MlopsError, NamespaceError, ParameterError
from .namespaces import Namespace
from .renderers import renderer_for
from .templates.base import Spec, Template, location
from .templates.image import Image
from .terraform import Stack, check_references
from .unique_names import clashes

CLOUDS = ("aws", "azure")
PLATFORM_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$")


@dataclass(frozen=True)
class StackBuild:
    """One rendered stack of a platform in a namespace."""

    template: str
    stack: Stack
    depends_on: tuple[str, ...]


class Platform:
    """Templates declared together, deployed together; one stack per template per namespace."""

    def __init__(self, name: str, cloud: str):
        problems = []
        if not isinstance(name, str) or not PLATFORM_PATTERN.fullmatch(name):
            problems.append(f"Platform name must be 3 to 24 lowercase letters, digits and hyphens, "
                            f"starting with a letter (it becomes part of bucket names). Got {name!r} instead.")
        if cloud not in CLOUDS:
            problems.append(f"Platform {name!r}: cloud must be one of {', '.join(CLOUDS)}. Got {cloud!r} instead.")
        if problems:
            raise ParameterError(problems)
        self.name = name
        self.cloud = cloud
        self.templates: list[Template] = []
        self.source: str | None = None  # the blueprint file, set by the loader

    def add(self, *templates: Template) -> Platform:
        for template in templates:
            if not isinstance(template, Template):
                raise BlueprintError(f"Platform '{self.name}': add() takes templates. Got {template!r} instead.")
            if any(t is template for t in self.templates):
                raise BlueprintError(f"Platform '{self.name}': {template!r} is added twice.")
            clash = next((t for t in self.templates if t.name == template.name), None)
            if clash is not None:
                raise BlueprintError(
                    f"{location(template)}Platform '{self.name}': two templates are named '{template.name}' "
                    f"({clash.kind} and {template.kind}); give one of them another name=.")
            self.templates.append(template)
        return self

    def __getitem__(self, name: str) -> Template:
        for template in self.templates:
            if template.name == name:
                return template
        raise KeyError(name)

    # --- the graph ------------------------------------------------------------------------------

    def edges(self) -> dict[str, list[str]]:
        """Template name -> names of the templates it depends on; checks the graph is sound."""
        members = {id(t) for t in self.templates}
        problems = []
        for template in self.templates:
            for dep in template.dependencies():
                if id(dep) not in members:
                    problems.append(
                        f"{location(template)}Platform '{self.name}': {template.kind} '{template.name}' depends on "
                        f"{dep.kind} '{dep.name}', which is not part of the platform; add it with platform.add().")
        if problems:
            raise GraphError(problems)
        edges = {t.name: [d.name for d in t.dependencies()] for t in self.templates}
        cycle = _find_cycle(edges, [t.name for t in self.templates])
        if cycle:
            raise GraphError(f"Platform '{self.name}': dependency cycle: {' -> '.join(cycle)}")
        return edges

    def deploy_order(self) -> list[str]:
        """Topological order, ties broken by declaration order."""
        edges = self.edges()
        done: list[str] = []
        pending = [t.name for t in self.templates]
        while pending:
            ready = next(n for n in pending if all(d in done for d in edges[n]))
            done.append(ready)
            pending.remove(ready)
        return done

    def destroy_order(self) -> list[str]:
        return list(reversed(self.deploy_order()))

    # --- synth ----------------------------------------------------------------------------------

    def resolve(self, namespace: Namespace) -> dict[str, Template]:
        """Templates by name, with the namespace's overrides applied and validated."""
        resolved = {}
        problems = []
        scoped = namespace.overrides.get(self.name, {})  # overrides.<platform>.<template>.<param>
        for template in self.templates:
            overrides = {**namespace.overrides.get(template.name, {}), **scoped.get(template.name, {})}
            if not overrides:
                resolved[template.name] = template
                continue
            prefix = f"{self.name}.{template.name}" if template.name in scoped else template.name
            where = f"{namespace.source}: namespaces.{namespace.name}.overrides.{prefix}"
            unknown = [k for k in overrides if k not in template.overridable()]
            for key in unknown:
                problems.append(f"{where}.{key}: {template.kind} '{template.name}' has no overridable parameter "
                                f"{key!r} (parameters: {', '.join(template.overridable())}); got {overrides[key]!r}")
            if unknown:
                continue
            try:
                resolved[template.name] = template.with_overrides(overrides)
            except ParameterError as exc:
                problems += [f"{where}: {p}" for p in exc.problems]
        if problems:
            raise NamespaceError(problems)
        return resolved

    def images(self) -> dict[str, Image]:
        """Every image the templates build, by build key (the context, or `context:stage`)."""
        found: dict[str, Image] = {}

        def walk(value: Any) -> None:
            if isinstance(value, Image):
                found[value.build_key] = value
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)
            elif isinstance(value, Spec):
                for name in value._parameter_constraints:
                    walk(getattr(value, name))

        for template in self.templates:
            for value in template.parameters().values():
                if not isinstance(value, Template):
                    walk(value)
        return found

    def synth(self, namespace: Namespace, header: str | None = None,
              image_tags: Mapping[str, str] | None = None) -> list[StackBuild]:
        """Every stack of this platform in `namespace`, in deploy order. Pure: writes nothing."""
        cloud = load_cloud(self.cloud)
        if getattr(namespace, self.cloud) is None:
            raise NamespaceError(f"{namespace.source}: namespaces.{namespace.name}: has no '{self.cloud}' section "
                                 f"(and defaults has none), which platform '{self.name}' needs")
        edges = self.edges()
        templates = self.resolve(namespace)
        builds: list[StackBuild] = []
        rendered: dict[str, Stack] = {}
        for name in self.deploy_order():
            template = templates[name]
            renderer = renderer_for(self.cloud, cloud.RENDERERS, template)
            if renderer is None:
                raise BlueprintError(f"{location(template)}{template.kind} '{name}': no {self.cloud.upper()} "
                                     f"renderer for {template.kind}; register one with "
                                     f"@renderer({template.kind}, cloud={self.cloud!r}) (README: Your own templates)")
            stack = Stack(name=f"{self.name}/{namespace.name}/{name}", header=header)
            ctx = StackContext(self.name, namespace, template, stack, cloud, upstream=rendered,
                               image_tags=image_tags or {})
            stack.settings, stack.providers = cloud.settings(ctx)
            built_in = type(template) in cloud.RENDERERS
            if built_in:
                renderer(template, ctx)
            else:
                _run_team_renderer(renderer, template, ctx)
            problems = check_references(stack)
            if problems and built_in:  # a renderer bug, not a user mistake: keep the traceback
                raise RuntimeError("\n".join(problems))
            if problems:
                raise BlueprintError([f"{location(template)}{template.kind} '{name}': its renderer: {p}"
                                      for p in problems])
            extensions.apply(template.hatches(), stack, namespace, f"{template.kind} '{name}'")
            rendered[name] = stack
            reads = set(edges[name]) | set(ctx.reads())
            builds.append(StackBuild(name, stack, tuple(n for n in self.deploy_order() if n in reads)))
        clashing = clashes(((b.template, b.stack) for b in builds), getattr(cloud, "UNIQUE_NAMES", {}))
        if clashing:
            raise BlueprintError([f"Platform '{self.name}' in {namespace.name}: {p}" for p in clashing])
        return builds


def _run_team_renderer(renderer: Any, template: Template, ctx: StackContext) -> None:
    """A team's renderer is blueprint code: what it raises is reported at the template's declaration,
    without a traceback. (A built-in renderer's exception is a bug of ours and keeps its traceback.)"""
    where = f"{location(template)}{template.kind} '{template.name}'"
    try:
        renderer(template, ctx)
    except MlopsError as exc:
        raise type(exc)([p if p.startswith(where) else f"{where}: {p}" for p in exc.problems]) from None
    except Exception as exc:
        name = getattr(renderer, "__qualname__", repr(renderer))
        raise BlueprintError(f"{where}: its renderer {name} raised {type(exc).__name__}: {exc} "
                             f"(namespace '{ctx.namespace.name}')") from None


def load_cloud(name: str) -> Cloud:
    module: Any = importlib.import_module(f"mlops_dsl.{name}")
    return module


def _find_cycle(edges: Mapping[str, list[str]], order: list[str]) -> list[str] | None:
    """A cycle as a path that starts and ends on the same template, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in edges.get(node, []):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in order:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
