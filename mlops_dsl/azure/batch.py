"""BatchInference on Azure: refused, with the reasons, because Azure ML documents that it cannot run here.

An Azure ML batch endpoint and deployment (workspaces/batchEndpoints[/deployments]@2024-10-01) of the
registry's pinned version, started on a schedule, is what would serve it. Three documented limits
stand in the way on this platform's workspaces (each one private, with a managed network, and
encrypted with the platform's customer-managed key: workspace.py):

- "Batch deployments aren't supported in workspaces with customer-managed encryption keys (CMK)"
  (learn.microsoft.com/azure/machine-learning/how-to-secure-batch-endpoint, "Limitations").
- Batch endpoints of a private link-enabled workspace are private ("It isn't possible to deploy
  public batch endpoints on private link-enabled workspaces", same page), and a Logic App that
  invokes one must run on "the Standard plan for Azure Logic Apps with allow private networking
  configuration" (how-to-use-event-grid-batch): a Consumption workflow, as feature ingestion uses
  to reach the public ARM API, cannot reach the endpoint's scoring URI.
- Azure ML's own schedule action for batch endpoints, `InvokeBatchEndpoint`, takes an
  `endpointInvocationDefinition` that API 2024-10-01 documents only as "<see href="TBD" />" (an
  untyped object in the azapi types).

So rendering the endpoint would give a stack that validates offline and fails on a real account.
This version says so instead (README: Inference modes), naming the template and the way out.
"""

from __future__ import annotations

from ..context import StackContext
from ..templates.batch import BatchInference

REASONS = (
    "Azure ML does not support batch deployments in workspaces encrypted with a customer-managed key, "
    "as this platform's are (how-to-secure-batch-endpoint, Limitations)",
    "a private workspace's batch endpoints are private, and the Logic App that would invoke one on "
    "schedule must be a Standard workflow with private networking, not a Consumption one "
    "(how-to-use-event-grid-batch)",
    "Azure ML's schedule action InvokeBatchEndpoint has no documented body in API 2024-10-01",
)


def render(t: BatchInference, ctx: StackContext) -> None:
    raise ctx.error("schedule", "batch inference on Azure is not rendered in this version: "
                                + "; ".join(REASONS)
                                + " (README: Inference modes); declare BatchInference on an AWS platform")


__all__ = ["REASONS", "render"]
