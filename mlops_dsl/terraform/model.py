"""The Terraform object model: what one root module ("stack") declares.

Plain data, no cloud knowledge and no I/O. The writers in `hcl` and `tfjson` turn a Stack into
files; `check_references` proves every expression points at something the stack declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .values import Expr, Lifecycle, Value, refs_of


@dataclass(frozen=True)
class CheckovSkip:
    """A checkov check that cannot hold for one resource, with the reason written beside it."""

    check_id: str
    reason: str


@dataclass
class Resource:
    type: str
    name: str
    body: dict[str, Value] = field(default_factory=dict)
    depends_on: tuple[Resource | DataSource, ...] = ()
    lifecycle: Lifecycle | None = None
    count: Value = None
    for_each: Value = None
    provider: Expr | None = None
    skips: tuple[CheckovSkip, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    def attr(self, path: str) -> Expr:
        return Expr(f"{self.address}.{path}", (self.address,))


@dataclass
class DataSource:
    type: str
    name: str
    body: dict[str, Value] = field(default_factory=dict)
    depends_on: tuple[Resource | DataSource, ...] = ()

    @property
    def address(self) -> str:
        return f"data.{self.type}.{self.name}"

    def attr(self, path: str) -> Expr:
        return Expr(f"{self.address}.{path}", (self.address,))


@dataclass
class Variable:
    name: str
    type: str | None = None  # an HCL type expression, e.g. "string" or "map(string)"
    default: Value = None
    description: str | None = None
    sensitive: bool = False

    @property
    def address(self) -> str:
        return f"var.{self.name}"

    @property
    def ref(self) -> Expr:
        return Expr(self.address, (self.address,))


@dataclass
class Output:
    name: str
    value: Value
    description: str | None = None
    sensitive: bool = False


@dataclass
class Provider:
    name: str
    body: dict[str, Value] = field(default_factory=dict)
    alias: str | None = None


@dataclass(frozen=True)
class Moved:
    """A `moved {}` block: the object Terraform tracks at `source` is now declared at `target`.

    Terraform then updates the state's address in place instead of planning a destroy and a
    create (https://developer.hashicorp.com/terraform/language/modules/develop/refactoring).
    Both are resource addresses of this stack (`aws_sns_topic.alarms`). `reason` says where the
    move comes from (the library's rename table, a rename against git HEAD, an earlier commit)
    and is written beside the block.
    """

    source: str
    target: str
    reason: str = ""


@dataclass(frozen=True)
class RequiredProvider:
    source: str
    version: str


@dataclass
class Backend:
    type: str
    config: dict[str, Value] = field(default_factory=dict)


@dataclass
class Settings:
    """The `terraform { ... }` block."""

    required_version: str | None = None
    required_providers: dict[str, RequiredProvider] = field(default_factory=dict)
    backend: Backend | None = None


@dataclass
class Stack:
    """One root module: rendered to its own directory and applied with its own state."""

    name: str
    settings: Settings = field(default_factory=Settings)
    providers: list[Provider] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    data: list[DataSource] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    locals: dict[str, Value] = field(default_factory=dict)
    moved: list[Moved] = field(default_factory=list)
    header: str | None = None  # a comment at the top of every file
    notes: list[str] = field(default_factory=list)  # what a plan should tell the reviewer (stacks.json)
    # Files beside the Terraform that a step other than Terraform reads (Terraform reads only the
    # directory's *.tf), written verbatim: e.g. an Azure feature set's FeatureSetSpec.yaml.
    files: dict[str, str] = field(default_factory=dict)

    def add(self, *items: Resource | DataSource | Variable | Output) -> None:
        for item in items:
            if isinstance(item, Resource):
                self.resources.append(item)
            elif isinstance(item, DataSource):
                self.data.append(item)
            elif isinstance(item, Variable):
                self.variables.append(item)
            elif isinstance(item, Output):
                self.outputs.append(item)
            else:  # pragma: no cover - a bug in a renderer
                raise TypeError(f"cannot add {type(item).__name__} to a stack")

    def local(self, name: str, value: Value) -> Expr:
        self.locals[name] = value
        return Expr(f"local.{name}", (f"local.{name}",))

    def declared(self) -> set[str]:
        names = {r.address for r in self.resources}
        names |= {d.address for d in self.data}
        names |= {v.address for v in self.variables}
        names |= {f"local.{n}" for n in self.locals}
        return names


def _uses(stack: Stack) -> Iterator[tuple[str, str]]:
    """(where, address) for every reference in the stack."""
    for resource in stack.resources:
        values = [resource.body, resource.count, resource.for_each]
        for value in values:
            for ref in refs_of(value):
                yield resource.address, ref
        for dep in resource.depends_on:
            yield resource.address, dep.address
    for data in stack.data:
        for ref in refs_of(data.body):
            yield data.address, ref
        for dep in data.depends_on:
            yield data.address, dep.address
    for name, value in stack.locals.items():
        for ref in refs_of(value):
            yield f"local.{name}", ref
    for output in stack.outputs:
        for ref in refs_of(output.value):
            yield f"output.{output.name}", ref
    for provider in stack.providers:
        for ref in refs_of(provider.body):
            yield f"provider.{provider.name}", ref


def check_references(stack: Stack) -> list[str]:
    """Problems with the stack's internal consistency, one line each (empty when sound)."""
    declared = stack.declared()
    problems = [
        f"stack {stack.name}: {where} references {ref}, which the stack does not declare"
        for where, ref in _uses(stack)
        if ref not in declared
    ]
    seen: set[str] = set()
    for address in [r.address for r in stack.resources] + [d.address for d in stack.data]:
        if address in seen:
            problems.append(f"stack {stack.name}: {address} is declared twice")
        seen.add(address)
    outputs = [o.name for o in stack.outputs]
    for name in sorted({n for n in outputs if outputs.count(n) > 1}):
        problems.append(f"stack {stack.name}: output {name} is declared twice")
    resources = {r.address for r in stack.resources}
    sources = [m.source for m in stack.moved]
    for move in stack.moved:
        if move.target not in resources and move.target not in sources:  # a chain a -> b -> c ends declared
            problems.append(f"stack {stack.name}: moved from {move.source} to {move.target}, which the stack does "
                            f"not declare")
        if move.source in resources:
            problems.append(f"stack {stack.name}: moved from {move.source}, which the stack still declares")
    for source in sorted({s for s in sources if sources.count(s) > 1}):
        problems.append(f"stack {stack.name}: {source} is moved twice")
    return problems
