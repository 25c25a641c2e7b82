"""The SageMaker requests in a rendered state machine, checked against botocore's request shapes.

A Task state's `Parameters` is the API request Step Functions sends when an execution reaches it
(`sagemaker:createProcessingJob.sync` sends CreateProcessingJob, `aws-sdk:sagemaker:<action>` that
action), and SageMaker refuses a malformed one only then: hours after apply, in a scheduled run.
This is the pipeline check (pipeline_requests.py) for state machines: the same checker and service
model. A `Name.$` member is computed by the execution; it is checked as the value it takes: an
intrinsic `States.Format` with its template's literal text, `States.Hash(..., 'MD5')` as 32 hex
digits (64 for SHA-256), `$$.Execution.Name` as a UUID, a path inside it as a short word. A member
that is a bare path (`"ClientRequestToken.$": "$.request.Token"`) takes a value only an execution
knows: it is left out of the check (and not reported missing when required).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..terraform.values import Expr, Interp
from . import pipeline_requests

SYNC = re.compile(r"arn:aws:states:::sagemaker:(\w+)(\.sync|\.waitForTaskToken)?$")
SDK = re.compile(r"arn:aws:states:::aws-sdk:sagemaker:(\w+)$")
HASH_LENGTH = {"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-384": 96, "SHA-512": 128}
EXECUTION_NAME = "0b6f4f4e-8d1c-4c0e-9a51-3f2d6c1a7e90"


def tasks(states: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(state name, SageMaker operation, Parameters) of every SageMaker task, in branches and maps too."""
    for name, state in states.items():
        for branch in state.get("Branches", []):
            yield from tasks(branch.get("States", {}))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from tasks(processor.get("States", {}))
        resource = state.get("Resource")
        if state.get("Type") != "Task" or not isinstance(resource, str):
            continue
        match = SYNC.match(resource) or SDK.match(resource)
        if match:
            action = match.group(1)
            yield name, action[0].upper() + action[1:], state.get("Parameters", {})


def _literal(value: Any) -> str:
    if isinstance(value, Interp):
        return "".join(p if isinstance(p, str) else "example-bucket" for p in value.parts)
    return value if isinstance(value, str) else str(value)


def _arguments(text: str) -> list[str]:
    """The top-level, comma-separated arguments of an intrinsic call's argument list."""
    out, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == "'" and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out


def sample(expression: str) -> str:
    """The value an intrinsic function or path takes, near enough to check length and pattern."""
    expression = expression.strip()
    call = re.fullmatch(r"(States\.\w+)\((.*)\)", expression, flags=re.DOTALL)
    if call is None:
        if expression.startswith("'") and expression.endswith("'"):
            return expression[1:-1]
        return EXECUTION_NAME if expression == "$$.Execution.Name" else "example"
    function, args = call.group(1), _arguments(call.group(2))
    if function == "States.Format":
        text = sample(args[0])
        for arg in args[1:]:
            text = text.replace("{}", sample(arg), 1)
        return text
    if function == "States.Hash":
        return "a" * HASH_LENGTH.get(sample(args[-1]), 64)
    if function == "States.UUID":
        return EXECUTION_NAME
    return "example"


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$")


def request(parameters: Mapping[str, Any]) -> Any:
    """Parameters with each computed member (`Name.$`) replaced by a sample of its value, and bare
    paths left out."""
    if isinstance(parameters, Mapping):
        out = {}
        for key, value in parameters.items():
            if key.endswith(".$"):
                if not _is_path(value):
                    out[key[:-2]] = sample(_literal(value))
            else:
                out[key] = request(value)
        return out
    if isinstance(parameters, list):
        return [request(v) for v in parameters]
    return parameters


def check_definition(definition: Mapping[str, Any], where: str, model: Any | None = None) -> tuple[list[str], int]:
    """Problems of every SageMaker task's request, and how many values were checked."""
    model = model or pipeline_requests.service_model()
    problems: list[str] = []
    checked = 0
    for name, operation, parameters in tasks(definition.get("States", {})):
        unknown = frozenset(k[:-2] for k, v in parameters.items() if k.endswith(".$") and _is_path(v))
        found, count = pipeline_requests.check_request(model, operation, request(parameters),
                                                       f"{where}: state {name!r} ({operation})", unknown)
        problems += found
        checked += count
    return problems, checked


def definition_of(value: Any) -> Mapping[str, Any] | None:
    """The definition inside `definition = jsonencode({...})`."""
    return pipeline_requests.definition_of(value)


__all__ = ["Expr", "check_definition", "definition_of", "request", "sample", "tasks"]
