"""moto's server, with the two fixes the generated stacks need (run as `python -m mlops_dsl.emulator_server`).

moto 5.2.5, which pyproject pins for this reason:
- resolves SageMaker ARNs for tagging from a fixed table that lacks feature groups, so
  `ListTags` on one fails with an internal error and the AWS provider retries until it times
  out. The group is created by moto's own API; only the ARN lookup is widened here.
- has no `DeleteModelPackageGroup`, so `destroy` of the training stack could never finish. It is
  added here the way moto's other deletes work: the group leaves the backend's table.
Nothing else of moto is changed.
"""

from __future__ import annotations

import sys
from typing import Any


def _patch() -> None:
    from moto.core.responses import ActionResult
    from moto.sagemaker import models, responses

    original = models.SageMakerModelBackend._get_resource_from_arn

    def lookup(self: Any, arn: str) -> Any:
        if ":feature-group/" in arn:
            for group in self.feature_groups.values():  # keyed by ARN; tagging may use another case
                if group.arn.lower() == arn.lower():
                    return group
        return original(self, arn)

    models.SageMakerModelBackend._get_resource_from_arn = lookup

    def delete_group(backend: Any, model_package_group_name: str) -> None:
        if backend.model_package_groups.pop(model_package_group_name, None) is None:
            backend.describe_model_package_group(model_package_group_name)  # raises moto's own not-found error

    def delete_group_response(self: Any) -> Any:
        self.sagemaker_backend.delete_model_package_group(self._get_param("ModelPackageGroupName"))
        return ActionResult({})

    models.SageMakerModelBackend.delete_model_package_group = delete_group
    responses.SageMakerResponse.delete_model_package_group = delete_group_response


def main() -> None:
    _patch()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
