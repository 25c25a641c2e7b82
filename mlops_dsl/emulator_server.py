"""moto's server, with the few fixes the generated stacks need (run as `python -m mlops_dsl.emulator_server`).

moto 5.2.5, which pyproject pins for this reason:
- resolves SageMaker ARNs for tagging from a fixed table that lacks feature groups, so
  `ListTags` on one fails with an internal error and the AWS provider retries until it times
  out. The group is created by moto's own API; only the ARN lookup is widened here.
- has no `DeleteModelPackageGroup` and no `DeleteFeatureGroup`, and answers `DescribeFeatureGroup`
  for a missing group with an internal error instead of ResourceNotFound, so `destroy` of the
  training and feature stacks could never finish. The deletes are added the way moto's others
  work (the item leaves the backend's table), and a missing group is ResourceNotFound.
- has no `UpdateEndpoint`, which Terraform calls when an endpoint's configuration changes (a new
  pinned model version), so the second deployment of the model lifecycle could never apply. It is
  added as AWS documents it: the endpoint must exist, the configuration too, and the endpoint then
  serves the new configuration's variants (it is InService at once: moto runs no instances).
  To rehearse an alarm-triggered rollback, `mlops emulator rehearse-rollback --endpoint NAME`: the
  endpoint's next update leaves it on the configuration it runs, with a FailureReason, as SageMaker
  does (the names wait in the file named by MLOPS_EMULATOR_REHEARSALS; each is used once).
- drops a model package's `CustomerMetadataProperties` on every `UpdateModelPackage` that does not
  name them (an approval), where AWS keeps them; the artifact digest recorded at registration
  lives there, so an update that names none keeps them here too.
- ignores the conditions it cannot evaluate (the `Bool` operator, keys it has no value for), so a
  bucket policy's `DenyInsecureTransport` (`aws:SecureTransport` false) denied every object upload.
  In IAM a condition on a key the request does not carry does not hold, so the statement does not
  apply; the emulator now does the same (it stands in for AWS over HTTPS).
Nothing else of moto is changed, except that its development server answers with HTTP/1.0, one
connection per request. Over keep-alive connections one full apply in four failed here with
AlreadyExists on a CreateAlias that was sent once by Terraform and that the server had just
answered with success: the SDK's retry of a response lost on a reused connection is the likely
cause, and closing each connection removes the reuse.
"""

from __future__ import annotations

import sys
from typing import Any

REHEARSALS_ENV = "MLOPS_EMULATOR_REHEARSALS"  # the file `mlops emulator rehearse-rollback` writes


def _rehearsed_rollback(endpoint_name: str) -> bool:
    """True once for each time `endpoint_name` was written to the rehearsals file."""
    import os
    from pathlib import Path

    path = Path(os.environ.get(REHEARSALS_ENV) or "/nonexistent")
    try:
        names = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    if endpoint_name not in names:
        return False
    names.remove(endpoint_name)
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return True


def _patch() -> None:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker import models, responses
    from moto.sagemaker.exceptions import ResourceNotFound, ValidationError

    original = models.SageMakerModelBackend._get_resource_from_arn

    def lookup(self: Any, arn: str) -> Any:
        if ":feature-group/" in arn:
            for group in self.feature_groups.values():  # keyed by ARN; tagging may use another case
                if group.arn.lower() == arn.lower():
                    return group
        return original(self, arn)

    setattr(models.SageMakerModelBackend, "_get_resource_from_arn", lookup)  # noqa: B010 - patching moto

    def delete_group(backend: Any, model_package_group_name: str) -> None:
        if backend.model_package_groups.pop(model_package_group_name, None) is None:
            backend.describe_model_package_group(model_package_group_name)  # raises moto's own not-found error

    def delete_group_response(self: Any) -> Any:
        self.sagemaker_backend.delete_model_package_group(self._get_param("ModelPackageGroupName"))
        return ActionResult({})

    setattr(models.SageMakerModelBackend, "delete_model_package_group", delete_group)  # noqa: B010
    setattr(responses.SageMakerResponse, "delete_model_package_group", delete_group_response)  # noqa: B010

    describe_feature_group = models.SageMakerModelBackend.describe_feature_group

    def describe_feature_group_or_not_found(backend: Any, feature_group_name: str) -> Any:
        try:
            return describe_feature_group(backend, feature_group_name)
        except KeyError:
            raise ResourceNotFound(f"Resource Not Found: FeatureGroup {feature_group_name} not found") from None

    def delete_feature_group(self: Any) -> Any:
        name = self._get_param("FeatureGroupName")
        backend = self.sagemaker_backend
        backend.describe_feature_group(name)  # ResourceNotFound when there is no such group
        for arn in [a for a, g in backend.feature_groups.items() if g.feature_group_name.lower() == name.lower()]:
            del backend.feature_groups[arn]
        return ActionResult({})

    setattr(models.SageMakerModelBackend, "describe_feature_group", describe_feature_group_or_not_found)  # noqa: B010
    setattr(responses.SageMakerResponse, "delete_feature_group", delete_feature_group)  # noqa: B010

    def update_endpoint(self: Any) -> Any:
        backend = self.sagemaker_backend
        name, config_name = self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise ValidationError(message=f"Could not find endpoint \"{name}\".")
        try:
            config = backend.describe_endpoint_config(config_name)
        except (KeyError, ValidationError):
            raise ValidationError(message=f"Could not find endpoint configuration \"{config_name}\".") from None
        if _rehearsed_rollback(name):
            # A rehearsal of an alarm-triggered rollback: the endpoint stays on its configuration.
            endpoint.failure_reason = "Rolled back (emulated: mlops emulator rehearse-rollback)"
            endpoint.last_modified_time = utcnow()
            return ActionResult({"EndpointArn": endpoint.arn})
        endpoint.failure_reason = None
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.data_capture_config = config.get("DataCaptureConfig")
        endpoint.last_modified_time = utcnow()
        return ActionResult({"EndpointArn": endpoint.arn})

    setattr(responses.SageMakerResponse, "update_endpoint", update_endpoint)  # noqa: B010

    update_model_package = models.SageMakerModelBackend.update_model_package

    def update_model_package_keeping_metadata(backend: Any, model_package_arn: str, customer_metadata_properties: Any,
                                              **kwargs: Any) -> Any:
        if customer_metadata_properties is None:
            mapped = backend.model_package_name_mapping.get(model_package_arn, model_package_arn)
            package = backend.model_packages.get(mapped)
            customer_metadata_properties = package.customer_metadata_properties if package else None
        return update_model_package(backend, model_package_arn=model_package_arn,
                                    customer_metadata_properties=customer_metadata_properties, **kwargs)

    setattr(models.SageMakerModelBackend, "update_model_package", update_model_package_keeping_metadata)  # noqa: B010


def _patch_conditions() -> None:
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    is_action_permitted = IAMPolicyStatement.is_action_permitted

    def applies_only_when_its_condition_holds(statement: Any, action: str, resource: str = "*",
                                              principal: str | None = None,
                                              incoming_condition_values: dict[str, str] | None = None) -> Any:
        condition = statement._statement.get("Condition") or {}
        keys = {key for values in condition.values() if isinstance(values, dict) for key in values}
        if keys - set(incoming_condition_values or {}):
            return PermissionResult.NEUTRAL
        return is_action_permitted(statement, action, resource, principal, incoming_condition_values)

    setattr(IAMPolicyStatement, "is_action_permitted", applies_only_when_its_condition_holds)  # noqa: B010


def main() -> None:
    _patch()
    _patch_conditions()
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    MotoRequestHandler.protocol_version = "HTTP/1.0"
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
