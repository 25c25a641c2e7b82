"""BatchInference on Azure: refused, with the reason, until its schedule can be rendered faithfully.

Azure ML's batch endpoint and deployment (workspaces/batchEndpoints[/deployments]@2024-10-01) would
serve the registry's pinned version, but what starts it on a schedule is a workspace schedule whose
action `InvokeBatchEndpoint` takes an `endpointInvocationDefinition` the API version documents only
as "[Required] Defines Schedule action definition details. <see href="TBD" />" (an untyped object
in the azapi types). A body guessed here could be accepted by azapi's checks and still never start
a job, so this version says so instead of rendering a batch endpoint that nothing runs.
"""

from __future__ import annotations

from ..context import StackContext
from ..templates.batch import BatchInference


def render(t: BatchInference, ctx: StackContext) -> None:
    raise ctx.error("schedule", "batch inference on Azure is not rendered in this version: the schedule "
                                "action that invokes a batch endpoint (InvokeBatchEndpoint) has no documented "
                                "body in Azure ML API 2024-10-01 (README: Inference modes); declare "
                                "BatchInference on an AWS platform")


__all__ = ["render"]
