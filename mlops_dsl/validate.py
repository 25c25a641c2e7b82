"""`mlops validate`: structural checks of the rendered stacks, and with `schema=True` every name
and nested block the native writer emits checked against the pinned provider bindings.

Structural: every reference resolves, nothing is declared twice, every name is a valid Terraform
identifier. Schema: each resource and data source type exists; each argument exists and is an
argument (`tags = {}`), each nested block is a block (`rule {}`, never `rule = []`), a single block is not repeated,
required arguments are present, and literal values have a kind the argument accepts. Each step of a
SageMaker pipeline definition is checked against the API request it becomes (botocore's model), and each
azapi body against the Azure types of its pinned API version (`azapi_check`). AWS arguments are held to
the lowest provider version the stack's range allows as well (`provider_floor`): the bindings come from
a newer release. Expressions
are known only at apply time and are not type-checked. Problems name the platform, template,
resource and attribute path, with the closest valid name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import azapi_check, bindings, provider_floor
from .terraform import Block, Blocks, Stack, check_references
from .terraform.values import Value

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
BUILT_IN = {"terraform"}  # terraform_remote_state, terraform_data: no provider schema


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    unchecked: set[str] = field(default_factory=set)  # providers without bindings
    checked: int = 0  # resources, data sources and providers checked against a schema
    pipeline_values: int = 0  # values of pipeline steps checked against the SageMaker API's request shapes
    azapi_bodies: int = 0  # azapi bodies checked against the vendored types of their API version
    floors: set[str] = field(default_factory=set)  # lower bounds also held to: "hashicorp/aws 5.100.0"


def structural(where: str, stack: Stack) -> list[str]:
    problems = [f"{where}: {p.split(': ', 1)[1]}" for p in check_references(stack)]
    for kind, names in (("resource", [r.name for r in stack.resources]), ("data source", [d.name for d in stack.data]),
                        ("output", [o.name for o in stack.outputs]), ("local", list(stack.locals))):
        for name in names:
            if not IDENTIFIER.match(name):
                problems.append(f"{where}: {kind} name {name!r} is not a valid Terraform identifier (letters, digits, "
                                f"underscores and hyphens, not starting with a digit)")
    return problems


def _closest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _is_blocks(value: Value) -> bool:
    """Whether a body item renders as nested blocks: a Block, Blocks (even none), or a list of Blocks."""
    return isinstance(value, (Block, Blocks)) or (isinstance(value, (list, tuple)) and bool(value)
                                                  and all(isinstance(v, Block) for v in value))


def _literal_problem(kind: str, value: Value) -> str | None:
    """Why a literal cannot be the value of an argument of this kind (None when it can, or is no literal)."""
    if isinstance(value, bool):
        return None if kind in ("bool", "string", "any") else f"expects a {kind}, got the bool {value}"
    if isinstance(value, (int, float)):
        return None if kind in ("number", "string", "any") else f"expects a {kind}, got the number {value}"
    if isinstance(value, str):
        if kind == "bool" and value not in ("true", "false"):
            return f"expects a bool, got the string {value!r}"
        if kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
            return f"expects a number, got the string {value!r}"
        return f"expects a {kind}, got the string {value!r}" if kind in ("list", "map") else None
    if isinstance(value, Mapping) and kind in ("string", "number", "bool", "list"):
        return f"expects a {kind}, got a map"
    if isinstance(value, (list, tuple)) and kind in ("string", "number", "bool", "map"):
        return f"expects a {kind}, got a list"
    return None


def check_body(schema: bindings.Schema, provider: str, body: Mapping[str, Value], where: str,
               path: str = "") -> list[str]:
    problems = []
    for key, value in body.items():
        if value is None:
            continue
        at = f"{where}: {path}{key}"
        spec = schema.fields.get(key)
        if spec is None:
            problems.append(f"{at}: no such argument or block in {schema.name}{_closest(key, schema.fields)}")
            continue
        if _is_blocks(value):
            if spec.kind != "block":
                problems.append(f"{at}: is an argument ({spec.kind}), not a block: write `{key} = ...`")
                continue
            items = [value] if isinstance(value, Block) else [v for v in value if isinstance(v, Block)]  # type: ignore[union-attr]
            if len(items) > 1 and not spec.many:
                problems.append(f"{at}: a single block, given {len(items)} times")
            sub = bindings.block(schema, provider, spec.block or "")
            for i, item in enumerate(items):
                index = f"[{i}]" if len(items) > 1 else ""
                problems += check_body(sub, provider, item.body, where, f"{path}{key}{index}.")
            continue
        if spec.kind == "block":
            if isinstance(value, (list, tuple, Mapping)) and not value:
                # Both writers print a plain empty list or map as the argument `key = []`; HCL has no
                # argument of a block type ("Unsupported argument"), even where JSON takes `[]`.
                shown = "{}" if isinstance(value, Mapping) else "[]"
                problems.append(f"{at}: is a block type in {schema.name}, given as the argument `{key} = {shown}`, "
                                f"which Terraform rejects; for no blocks leave it out (or give blocks(), which "
                                f"renders nothing)")
                continue
            problems.append(f"{at}: is a block, not an argument: write `{key} {{ ... }}`")
            continue
        wrong = _literal_problem(spec.kind, value)
        if wrong:
            problems.append(f"{at}: {wrong}")
    for spec in schema.fields.values():
        if spec.required and spec.name not in body and spec.name != "id":
            problems.append(f"{where}: {path}{spec.name}: required by {schema.name}, and not set")
    return problems


def _floors(stack: Stack, report: Report) -> dict[str, tuple[provider_floor.Floor, str]]:
    """Provider name -> (its vendored floor, the stack's declared range), for each provider whose
    floor version lies inside the stack's range (then every argument must exist there too)."""
    out = {}
    for name, required in stack.settings.required_providers.items():
        current = provider_floor.floor(name) if name in bindings.PACKAGES else None
        if current is None or required.source != current.provider or not required.version:
            continue
        if not provider_floor.in_range(current, required.version):
            continue
        stale = provider_floor.stale(current, required.version)
        if stale and stale not in report.problems:
            report.problems.append(stale)
        report.floors.add(f"{current.provider} {current.text}")
        out[name] = (current, required.version)
    return out


def check_schema(where: str, stack: Stack, report: Report) -> None:
    items: list[tuple[str, str, Mapping[str, Value], bool]] = [
        *((r.type, r.address, r.body, False) for r in stack.resources),
        *((d.type, d.address, d.body, True) for d in stack.data),
    ]
    floors = _floors(stack, report)
    for block in stack.providers:
        if block.name not in bindings.PACKAGES:
            report.unchecked.add(block.name)
            continue
        provider_schema = bindings.provider_config(block.name)
        if provider_schema is not None:
            report.checked += 1
            report.problems += check_body(provider_schema, block.name, block.body, f"{where}: provider.{block.name}")
            if block.name in floors:
                current, constraint = floors[block.name]
                report.problems += provider_floor.check(current, "provider", block.name, block.body,
                                                        f"{where}: provider.{block.name}", constraint)
    for type_name, address, body, data in items:
        provider = type_name.split("_", 1)[0]
        if provider in BUILT_IN:
            continue
        if type_name in azapi_check.CHECKED and not data:  # the body; azapi's own arguments have no bindings
            report.azapi_bodies += 1
            report.problems += azapi_check.check_resource(type_name, body, f"{where}: {address}")
        if provider not in bindings.PACKAGES:
            report.unchecked.add(provider)
            continue
        schema = bindings.resource(type_name, data)
        if schema is None:
            kind = "data source" if data else "resource"
            known = bindings.known_types(provider, data)
            report.problems.append(f"{where}: {address}: {type_name} is not a {kind} type of {provider} "
                                   f"({bindings.describe(provider)}){_closest(type_name, known)}")
            continue
        report.checked += 1
        report.problems += check_body(schema, provider, body, f"{where}: {address}")
        if provider in floors:
            current, constraint = floors[provider]
            report.problems += provider_floor.check(current, "data" if data else "resource", type_name, body,
                                                    f"{where}: {address}", constraint)
        if type_name == "aws_sagemaker_pipeline" and not data:
            check_pipeline(body, f"{where}: {address}", report)
        if type_name == "aws_sfn_state_machine" and not data:
            check_state_machine(body, f"{where}: {address}", report)


def check_pipeline(body: Mapping[str, Value], where: str, report: Report) -> None:
    """Each step of the pipeline definition against the SageMaker API request it becomes."""
    from .aws import pipeline_requests

    definition = pipeline_requests.definition_of(body.get("pipeline_definition"))
    if definition is None:
        report.problems.append(f"{where}: pipeline_definition: not a jsonencode() of a definition, so its steps "
                               f"cannot be checked against the SageMaker API")
        return
    try:
        model = pipeline_requests.service_model()
    except ImportError:
        raise bindings.NoBindings("checking SageMaker pipeline steps needs botocore's service model: "
                                  "pip install -e '.[cdktn]' (or botocore)") from None
    problems, checked = pipeline_requests.check_definition(definition, where, model)
    report.problems += problems
    report.pipeline_values += checked


def check_state_machine(body: Mapping[str, Value], where: str, report: Report) -> None:
    """Each SageMaker task of the definition against the API request it sends (counted with the
    pipeline steps' values)."""
    from .aws import pipeline_requests, state_machine_requests

    definition = state_machine_requests.definition_of(body.get("definition"))
    if definition is None:
        return  # a definition not built by jsonencode() of data: nothing to walk
    problems, checked = state_machine_requests.check_definition(definition, where,
                                                                pipeline_requests.service_model())
    report.problems += problems
    report.pipeline_values += checked


def validate(stacks: Iterable[tuple[str, Stack]], schema: bool) -> Report:
    """Check each (where, stack); `where` names namespace, platform and template for messages."""
    report = Report()
    for where, stack in stacks:
        report.problems += structural(where, stack)
        if schema:
            check_schema(where, stack, report)
    return report
