"""A multi-model variant on AWS: one SageMaker model in `MultiModel` mode over an S3 prefix whose
objects are Terraform-managed copies of the pinned artifacts, one per model the variant serves.

SageMaker's contract (botocore's CreateModel ContainerDefinition): `Mode = "MultiModel"` and
`ModelDataUrl` an S3 prefix ending in "/"; an invocation names its archive under that prefix
(`TargetModel = "champion-v5.tar.gz"`), which SageMaker copies to the instance and the container loads
on first use (serving/multi_model.py: load, list, unload, invoke, at most MLOPS_MULTI_MODEL_MAX_LOADED
held). Each object's key holds the pinned version: SageMaker caches an archive by its name and does not
notice one overwritten in place ("Multi-model endpoints": add a model under a new name rather than
overwrite), so a promotion adds a new object and removes the old one, a reviewed diff of two
resources; the output `target_models` says which name to invoke for each model.

The copies are encrypted with the data zones' key and tagged with the package and the artifact's
digest, like a served model, so what serves is traceable to the registry. Models, image and
container are the namespace's: every pinned model of the variant must run the same serving image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..context import StackContext
from ..pins import TAG_PACKAGE, TAG_SHA256, TAG_VARIANT, Pin, path_for
from ..serving_pins import Pinned
from ..templates.serving import ModelServing, Variant
from ..terraform import Block, Resource, interp
from .naming import sagemaker_name
from .network import sagemaker_vpc_config
from .serving_models import package_arn
from .training import image_uri

MAX_LOADED_ENV = "MLOPS_MULTI_MODEL_MAX_LOADED"  # read by serving/multi_model.py


@dataclass(frozen=True)
class MultiModelServed:
    """The pinned models of a multi-model variant, by model name, and the variant's pin for the
    endpoint (the first model's: its image runs the fleet)."""

    variant: Pinned
    models: dict[str, Pin]


def target_model(name: str, pin: Pin) -> str:
    """The archive's name under the prefix, the `TargetModel` of an invocation: a new version is a new name."""
    return f"{name}-v{pin.version}.tar.gz"


def prefix(endpoint_name: str, variant: str) -> str:
    return f"multi-model/{endpoint_name}/{variant}/"


def served_models(t: ModelServing, ctx: StackContext, index: int, v: Variant) -> MultiModelServed | None:
    """The variant's models that are pinned (a note for each that is not); None when none is. Every
    pinned model must run one serving image: a multi-model container serves all of them."""
    assert v.multi_model is not None
    pins = ctx.namespace.pins.get(ctx.platform, {})
    source = path_for(Path(ctx.namespace.source), ctx.namespace.name)
    models = {m: pins[m] for m in v.multi_model.models if m in pins}
    for m in v.multi_model.models:
        if m not in pins:
            ctx.stack.notes.append(f"{v.name}: model {m}: no version pinned ({source}), so it is not served")
    if not models:
        return None
    images = sorted({p.image for p in models.values()})
    if len(images) > 1:
        raise ctx.error(f"variants[{index}].multi_model.models",
                        f"{source}: the pinned models of {v.name} run different serving images "
                        f"({', '.join(f'{m}: {p.image}' for m, p in models.items())}); one multi-model "
                        f"container serves them all: pin versions built for one image")
    first = next(iter(models.values()))
    return MultiModelServed(Pinned(f"variants[{index}]", v, first), models)


def artifact_copies(t: ModelServing, ctx: StackContext, endpoint_name: str, served: MultiModelServed) -> list[Resource]:
    """One object per pinned model under the variant's prefix in the `models` zone."""
    data = t.training.data
    aws, registry = ctx.namespace.aws, ctx.namespace.registry_aws
    assert aws is not None and registry is not None
    bucket = ctx.upstream_output(data, "bucket_names")["models"]
    v = served.variant.variant
    copies = []
    for name, pin in served.models.items():
        source = pin.artifact.removeprefix("s3://")
        copies.append(Resource("aws_s3_object_copy", f"model_{v.name}_{name}".replace("-", "_"), {
            "bucket": bucket,
            "key": prefix(endpoint_name, v.name) + target_model(name, pin),
            "source": source,
            # The owners are checked by S3 on the copy: a bucket of another account under the same
            # name (S3 names are global) is refused rather than read or written.
            "expected_bucket_owner": aws.account_id,
            "expected_source_bucket_owner": registry.account_id,
            "server_side_encryption": "aws:kms",
            "kms_key_id": ctx.upstream_output(data, "kms_key_arn"),
            "bucket_key_enabled": True,
            "tagging_directive": "REPLACE",
            "tags": {TAG_VARIANT: name, TAG_PACKAGE: package_arn(ctx, pin), TAG_SHA256: pin.sha256},
        }))
    return copies


def model(t: ModelServing, ctx: StackContext, endpoint_name: str, served: MultiModelServed,
          copies: list[Resource]) -> Resource:
    """The fleet's model: the serving image in MultiModel mode over the prefix. Its name holds the
    image, not the versions: a promotion changes the objects under the prefix, not the model."""
    training, data = t.training, t.training.data
    v, pin = served.variant.variant, served.variant.pin
    assert v.multi_model is not None
    name = sagemaker_name(ctx, f"{served.variant.field}.name", f"{ctx.name}-{v.name}-mm-{pin.image[:8]}")
    repository = ctx.upstream_output(training, "repository_urls")["serving"]
    bucket = ctx.upstream_output(data, "bucket_names")["models"]
    container: dict[str, Any] = {
        "image": image_uri(repository, pin.image),
        "mode": "MultiModel",
        "model_data_url": interp("s3://", bucket, "/" + prefix(endpoint_name, v.name)),
        "multi_model_config": Block({"model_cache_setting": "Enabled" if v.multi_model.model_cache else "Disabled"}),
        "environment": {"SAGEMAKER_CONTAINER_LOG_LEVEL": "20", MAX_LOADED_ENV: str(v.multi_model.max_loaded)},
    }
    return Resource("aws_sagemaker_model", f"variant_{v.name.replace('-', '_')}", {
        "name": name,
        "execution_role_arn": ctx.upstream_output(training, "hosting_role_arn"),
        "enable_network_isolation": True,
        "primary_container": Block(container),
        "vpc_config": sagemaker_vpc_config(ctx, data),
        "tags": {TAG_VARIANT: v.name},
    }, depends_on=tuple(copies))


__all__ = ["MAX_LOADED_ENV", "MultiModelServed", "artifact_copies", "model", "prefix", "served_models",
           "target_model"]
