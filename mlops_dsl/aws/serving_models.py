"""The models behind an endpoint, one per pinned variant, and the endpoint configuration that weighs them.

Each model runs the namespace's serving image at the pinned tag over the pinned package's
artifact; its name holds the template, the version and the image, so a new pin is a new model and a new
endpoint configuration, rolled out by the endpoint's guarded update. The package ARN and the
artifact's digest are tags on the model, so what serves is traceable to the registry.

Why the artifact and not `model_package_name`: a model built from a package runs the image the
package was registered with, from the registry account's repository, so a fix of the serving code
would mean registering every version again and every serving account pulling images across
accounts; here the serving image stays this namespace's, a one-line change of the pin.
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..pins import TAG_PACKAGE, TAG_SHA256, TAG_VARIANT, Pin
from ..serving_pins import Pinned
from ..templates.serving import ModelServing, Variant
from ..terraform import Block, CheckovSkip, Lifecycle, Resource, interp
from .instances import has_local_storage
from .naming import sagemaker_name
from .network import sagemaker_vpc_config
from .provider import partition
from .serving_serverless import NETWORK_ISOLATION_SKIP, VOLUME_KEY_SKIP, serverless_config
from .training import image_uri


def package_arn(ctx: StackContext, pin: Pin) -> str:
    registry = ctx.namespace.registry_aws
    assert registry is not None
    return pin.package_arn(partition(registry.region), registry.region, registry.account_id)


def model(t: ModelServing, ctx: StackContext, p: Pinned) -> Resource:
    training, data = t.training, t.training.data
    # Models are named once per account and region, and two ModelServing templates may serve the
    # same variant name and pin (`lookup` beside `serving`; a serverless copy): the name holds the
    # template's, so theirs differ (mlops_dsl/unique_names.py checks it at synth).
    name = sagemaker_name(ctx, f"{p.field}.name",
                          f"{ctx.name}-{t.name}-{p.variant.name}-v{p.pin.version}-{p.pin.image[:8]}")
    repository = ctx.upstream_output(training, "repository_urls")["serving"]
    serverless = p.variant.serverless is not None  # no VPC, no isolation (serving_serverless.py)
    return Resource("aws_sagemaker_model", f"variant_{p.variant.name.replace('-', '_')}", {
        "name": name,
        "execution_role_arn": ctx.upstream_output(training, "hosting_role_arn"),
        "enable_network_isolation": not serverless,
        "primary_container": Block({
            "image": image_uri(repository, p.pin.image),
            "model_data_url": p.pin.artifact,
            "environment": {"SAGEMAKER_CONTAINER_LOG_LEVEL": "20"},
        }),
        "vpc_config": None if serverless else sagemaker_vpc_config(ctx, data),
        "tags": {TAG_VARIANT: p.variant.name, TAG_PACKAGE: package_arn(ctx, p.pin), TAG_SHA256: p.pin.sha256},
    }, skips=(NETWORK_ISOLATION_SKIP,) if serverless else ())


def _variant_block(v: Variant, model: Resource) -> dict[str, Any]:
    if v.serverless is not None:
        return {"variant_name": v.name, "model_name": model.attr("name"),
                "serverless_config": Block(serverless_config(v))}
    return {
        "variant_name": v.name,
        "model_name": model.attr("name"),
        "instance_type": v.instance_type,
        "initial_instance_count": v.initial_instance_count,
        "initial_variant_weight": v.weight,
    }


def endpoint_configuration(t: ModelServing, ctx: StackContext, endpoint_name: str, production: list[Pinned],
                           shadow: Pinned | None, models: dict[str, Resource]) -> Resource:
    """Replaced before it is destroyed (`name_prefix`, `create_before_destroy`): every change rolls out."""
    data = t.training.data
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    buckets = ctx.upstream_output(data, "bucket_names")
    instance_types = [p.variant.instance_type for p in production] + ([shadow.variant.instance_type] if shadow else [])
    nvme = any(has_local_storage(it) for it in instance_types)
    serverless = t.serverless  # no instance volume, no capture (serving_serverless.py)
    body: dict[str, Any] = {
        "name_prefix": f"{endpoint_name}-",
        "kms_key_arn": None if nvme or serverless else key_arn,
        "production_variants": [Block(_variant_block(p.variant, models[p.variant.name])) for p in production],
        "shadow_production_variants": Block(_variant_block(shadow.variant, models[shadow.variant.name]))
        if shadow else None,
        "data_capture_config": None if t.data_capture_percent == 0 else Block({
            "enable_capture": True,
            "initial_sampling_percentage": t.data_capture_percent,
            "destination_s3_uri": interp("s3://", buckets[t.capture_zone], f"/data-capture/{endpoint_name}"),
            "kms_key_id": key_arn,
            "capture_options": [Block({"capture_mode": "Input"}), Block({"capture_mode": "Output"})],
            "capture_content_type_header": Block({
                "csv_content_types": ["text/csv"],
                "json_content_types": ["application/json"],
            }),
        }),
    }
    skips = (CheckovSkip("CKV_AWS_98", "NVMe instance storage cannot be encrypted with KMS; SageMaker rejects "
                                      "kms_key_arn for these instance types"),) if nvme and not serverless else ()
    skips += (VOLUME_KEY_SKIP,) if serverless else ()
    return Resource("aws_sagemaker_endpoint_configuration", "main", body,
                    lifecycle=Lifecycle(create_before_destroy=True), skips=skips)


__all__ = ["endpoint_configuration", "model", "package_arn"]
