"""A container image built from a directory of this repository, referenced by a content-hash tag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import Spec
from .constraints import Constraint, Pattern


@dataclass(frozen=True)
class Image(Spec):
    """The build context directory (relative to the project root) of an image, e.g. `training`.

    Its tag is a hash of the files Docker would send (see `mlops_dsl.images`), so the same code
    always gives the same tag and a code change is a one-line diff in the generated Terraform.
    """

    context: str

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "context": [Pattern(r"[a-z][a-z0-9_-]{0,30}", "a directory name such as 'training'")],
    }

    @property
    def repository(self) -> str:
        return self.context.replace("_", "-")
