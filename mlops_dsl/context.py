"""What a cloud renderer gets: its template, the namespace, the stack to fill, and upstream outputs.

Cross-stack values travel as outputs of the upstream stack, read downstream through a
`terraform_remote_state` data source. `StackContext.upstream_output` is the only way a renderer
reads another template's values, so the data source, the dependency and the output's existence
are checked in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import BlueprintError
from .namespaces import Namespace
from .templates.base import Template, location
from .templates.image import Image
from .terraform import DataSource, Expr, Provider, Settings, Stack


def state_key(platform: str, namespace: str, template: str) -> str:
    """The key of a template's state in a namespace's backend, on every cloud: it holds the template's
    name, which is why renaming a template moves its state (moves.check_template_renames)."""
    return f"{platform}/{namespace}/{template}.tfstate"


class Cloud(Protocol):
    """What `mlops_dsl.aws` and `mlops_dsl.azure` provide."""

    NAME: str
    RENDERERS: Mapping[type, Callable[[Any, StackContext], None]]

    def settings(self, ctx: StackContext) -> tuple[Settings, list[Provider]]: ...

    def remote_state(self, ctx: StackContext, upstream: str) -> dict[str, Any]: ...


@dataclass
class StackContext:
    platform: str
    namespace: Namespace
    template: Template
    stack: Stack
    cloud: Cloud
    upstream: Mapping[str, Stack] = field(default_factory=dict)
    image_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A prefix for cloud resource names: `<platform>-<namespace>`."""
        return f"{self.platform}-{self.namespace.name}"

    def error(self, field_name: str, message: str) -> BlueprintError:
        """A user error about one of this template's fields, located at its declaration."""
        t = self.template
        return BlueprintError(
            f"{location(t)}{t.kind} '{t.name}': {field_name}: {message} (namespace '{self.namespace.name}')")

    def state_key(self, template: str) -> str:
        """Where a template's state lives in the namespace's backend, on every cloud."""
        return state_key(self.platform, self.namespace.name, template)

    def tags(self, separator: str) -> dict[str, str]:
        """The namespace's tags plus where each resource comes from (`mlops<sep>platform`, ...),
        for cost reports and audits; the namespace's own tags win on a clash."""
        built_in = {
            f"mlops{separator}platform": self.platform,
            f"mlops{separator}namespace": self.namespace.name,
            f"mlops{separator}template": self.template.name,
        }
        return dict(sorted({**built_in, **self.namespace.tags}.items()))

    def image_tag(self, image: Image) -> Expr:
        """The image's content-hash tag, held in one local so that a code change is a one-line diff."""
        return self.stack.local(f"{image.repository.replace('-', '_')}_image_tag", self.image_tags[image.build_key])

    def ancestors(self) -> set[str]:
        """Names of every template this one depends on, directly or through others."""
        seen: set[str] = set()
        todo = list(self.template.dependencies())
        while todo:
            dep = todo.pop()
            if dep.name not in seen:
                seen.add(dep.name)
                todo += list(dep.dependencies())
        return seen

    def reads(self) -> list[str]:
        """Upstream stacks whose state this stack reads."""
        return [d.name for d in self.stack.data if d.type == "terraform_remote_state"]

    def upstream_output(self, upstream: Template, output: str) -> Expr:
        """An expression reading `output` of `upstream`'s stack through remote state."""
        if upstream.name not in self.ancestors():
            raise RuntimeError(f"{self.template!r} reads {upstream!r}, which it does not depend on")
        source = self.upstream.get(upstream.name)
        if source is None or output not in {o.name for o in source.outputs}:
            raise RuntimeError(f"stack {upstream.name} declares no output {output!r} for {self.template!r}")
        address = f"data.terraform_remote_state.{upstream.name}"
        if address not in {d.address for d in self.stack.data}:
            self.stack.add(DataSource("terraform_remote_state", upstream.name,
                                      self.cloud.remote_state(self, upstream.name)))
        return Expr(f"{address}.outputs.{output}", (address,))
