"""Step Functions in the local emulator: `ListStateMachineVersions`, which moto 5.2.5 lacks.

The AWS provider reads a state machine's versions after creating it (and on every refresh); moto
keeps the versions a `publish` creates but has no operation to list them, so its server answered
with an internal error, which the provider retries until its timeout: no stack with a state
machine (the feature ingestion's) could apply in the `local` namespace. The operation is added as
the Step Functions API reference describes it: the state machine must exist (moto's own
StateMachineDoesNotExist otherwise), its versions newest first, `maxResults` honoured without
paging (the emulator's machines have a handful).
"""

from __future__ import annotations

from typing import Any


def patch() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions import responses

    def list_state_machine_versions(self: Any) -> Any:
        machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        versions = sorted(getattr(machine, "versions", {}).values(), key=lambda v: v.version, reverse=True)
        limit = self._get_param("maxResults") or len(versions)
        return ActionResult({"stateMachineVersions": [
            {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions[:limit]]})

    setattr(responses.StepFunctionResponse, "list_state_machine_versions", list_state_machine_versions)  # noqa: B010
