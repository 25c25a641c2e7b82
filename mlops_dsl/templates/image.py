"""A container image built from a directory of this repository, referenced by a content-hash tag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import Spec
from .constraints import Constraint, NoneOK, Pattern


@dataclass(frozen=True)
class Image(Spec):
    """The build context directory (relative to the project root) of an image, e.g. `training`.

    Its tag is a hash of the files Docker would send (see `mlops_dsl.images`), so the same code
    always gives the same tag and a code change is a one-line diff in the generated Terraform.
    """

    context: str
    target: str | None = None
    """A stage of the context's Dockerfile (`docker build --target`). One context can then give two
    images, such as the training image for SageMaker and the one for Azure ML with the
    `azureml-mlflow` plugin (`Image("training", target="azureml")`). Default: the last stage."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "context": [Pattern(r"[a-z][a-z0-9_-]{0,30}", "a directory name such as 'training'")],
        "target": [Pattern(r"[a-z][a-z0-9_-]{0,30}", "a Dockerfile stage name such as 'azureml'"), NoneOK()],
    }

    @property
    def build_key(self) -> str:
        """What identifies the build: the context, and the stage when one is named."""
        return self.context if self.target is None else f"{self.context}:{self.target}"

    @property
    def repository(self) -> str:
        base = self.context.replace("_", "-")
        return base if self.target is None else f"{base}-{self.target.replace('_', '-')}"
