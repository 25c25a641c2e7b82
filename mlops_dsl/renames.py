"""The library's own renames: resource addresses mlops-dsl changed between versions.

When a renderer renames a resource (`aws_iam_role.retrain` -> `aws_iam_role.drift`), every
existing state holds the old address, and without a `moved` block Terraform plans a destroy and
a create. Each entry here makes every stack of that template on that cloud that declares
`target` (and no longer `source`) carry `moved { from = source, to = target }` (moves.py).

Entries are kept for as long as a state from before the rename may still exist; a `moved` block
whose source is in no state is a no-op for Terraform, so keeping one costs only a line.

History so far: `git log -p -- terraform/` of this repository shows addresses that disappeared
and appeared in the same commit (a2be54e: the serving stack's `aws_iam_role.retrain` became
three roles, `drift`, `drift_scheduler`, `drift_workflow`; the Azure serving models became
deployments) but each was a different object (another principal, another API resource), not
the same object under a new name, so a `moved` block would have been wrong and the table is empty.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rename:
    """One address the library changed, for the stacks of one template kind on one cloud."""

    cloud: str  # "aws" | "azure"
    template: str  # the template class, e.g. "ModelServing"
    source: str  # the old address, e.g. "aws_iam_role.retrain"
    target: str  # the new address
    since: str  # the mlops-dsl version or commit that renamed it

    @property
    def reason(self) -> str:
        return f"renamed by mlops-dsl {self.since} (mlops_dsl/renames.py)"


RENAMES: tuple[Rename, ...] = ()
