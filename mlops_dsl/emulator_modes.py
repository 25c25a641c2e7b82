"""Step Functions' ValidateStateMachineDefinition in the local emulator, which moto 5.2.5 lacks.

The AWS provider (5.x) validates an `aws_sfn_state_machine`'s definition with
ValidateStateMachineDefinition before it creates or updates one, so without it no state machine (the
batch inference's, the feature ingestion's) could be applied in the `local` namespace. AWS answers
`{"result": "OK" | "FAIL", "diagnostics": [...], "truncated": false}` (Step Functions API reference,
ValidateStateMachineDefinition); a malformed definition is a FAIL with ERROR diagnostics, not an
exception. The emulator checks what it can without AWS's full ASL validator, each a diagnostic of
that shape: the definition is a JSON object, `States` a non-empty object, `StartAt` one of its
states, every state has a `Type` of the language's, every `Next` and `Default` names a state, and a
non-terminal Task or Pass state has `Next` or `End`. Branches and item processors are checked the
same way. A definition AWS would refuse for finer reasons may pass here: green here is necessary,
never sufficient.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
TERMINAL = ("Choice", "Succeed", "Fail")  # their flow is Choices/Default, or nothing


def _diagnostic(code: str, message: str, location: str) -> dict[str, str]:
    return {"severity": "ERROR", "code": code, "message": message, "location": location}


def _machine(machine: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(machine, Mapping):
        return [_diagnostic("SCHEMA_VALIDATION_FAILED", "The state machine must be a JSON object", where or "/")]
    states = machine.get("States")
    if not isinstance(states, Mapping) or not states:
        return [_diagnostic("SCHEMA_VALIDATION_FAILED", "States must be a non-empty object", f"{where}/States")]
    found = []
    if machine.get("StartAt") not in states:
        found.append(_diagnostic("MISSING_TRANSITION_TARGET", f"StartAt {machine.get('StartAt')!r} is not a state",
                                 f"{where}/StartAt"))
    for name, state in states.items():
        at = f"{where}/States/{name}"
        if not isinstance(state, Mapping) or state.get("Type") not in TYPES:
            found.append(_diagnostic("SCHEMA_VALIDATION_FAILED", f"State {name!r} has no valid Type", f"{at}/Type"))
            continue
        targets = [("Next", state.get("Next")), ("Default", state.get("Default"))]
        targets += [(f"Choices[{i}].Next", c.get("Next")) for i, c in enumerate(state.get("Choices") or [])]
        targets += [(f"Catch[{i}].Next", c.get("Next")) for i, c in enumerate(state.get("Catch") or [])]
        for key, target in targets:
            if target is not None and target not in states:
                found.append(_diagnostic("MISSING_TRANSITION_TARGET", f"{key} {target!r} is not a state",
                                         f"{at}/{key}"))
        if state["Type"] not in TERMINAL and "Next" not in state and state.get("End") is not True:
            found.append(_diagnostic("SCHEMA_VALIDATION_FAILED", f"State {name!r} has neither Next nor End", at))
        for i, branch in enumerate(state.get("Branches") or []):
            found += _machine(branch, f"{at}/Branches[{i}]")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor is not None:
            found += _machine(processor, f"{at}/ItemProcessor")
    return found


def validate(definition: str) -> dict[str, Any]:
    """The answer of ValidateStateMachineDefinition for `definition` (a JSON text)."""
    try:
        machine = json.loads(definition)
    except (TypeError, ValueError) as exc:
        diagnostics = [_diagnostic("INVALID_JSON_DESCRIPTION", f"The definition is not valid JSON: {exc}", "/")]
    else:
        diagnostics = _machine(machine, "")
    return {"result": "FAIL" if diagnostics else "OK", "diagnostics": diagnostics, "truncated": False}


def patch() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions import responses

    def validate_state_machine_definition(self: Any) -> ActionResult:
        return ActionResult(validate(self._get_param("definition")))

    responses.StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition  # type: ignore[attr-defined]


__all__ = ["patch", "validate"]
