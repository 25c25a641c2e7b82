"""A served model that reads online features: no network isolation, its own role, its groups in its environment.

A variant with `online_features` (templates/serving_api.py) calls the Feature Store runtime from
its container (serving/online_features.py), which a network-isolated container cannot: SageMaker's
EnableNetworkIsolation gives the container no network at all ("Run Training and Inference
Containers in Internet-Free Mode"). Such a model runs without isolation, still in the private
subnets and the `sagemaker` security group, whose only egress is HTTPS to the interface endpoints
(the data stack's `sagemaker.featurestore-runtime` among them) and to S3's gateway endpoint.

Its role is the hosting role's statements (training_role.hosting_statements: artifacts, image,
logs, metrics, the subnets) plus `sagemaker:GetRecord` and `sagemaker:BatchGetRecord` on exactly
the groups the variant names (the Service Authorization Reference lists both on the feature-group
resource) and kms:Decrypt on the platform key that encrypts their online store. One role per such
variant, so a variant reads only its own groups.
"""

from __future__ import annotations

import json
from typing import Any

from ..context import StackContext
from ..serving_pins import Pinned
from ..templates.serving import ModelServing
from ..templates.serving_api import stored_features
from ..terraform import Block, CheckovSkip, Resource, jsonencode
from . import iam
from .repositories import repository_name
from .training_role import hosting_statements

# SageMaker's ContainerDefinition.Environment: "Maximum length of each key and value in the
# Environment map is 1024 bytes" (CreateModel API reference); group names are at most 64 characters.
ENVIRONMENT_VALUE_LIMIT = 1024
GROUP_NAME_LIMIT = 64
ISOLATION_SKIP = CheckovSkip(
    "CKV_AWS_370", "the variant reads its features from the Feature Store runtime per request "
                   "(Variant(online_features=...)); an isolated container has no network")


class _Repository:
    """The serving repository of the training stack, by its ARN (hosting_statements reads only `.attr('arn')`)."""

    def __init__(self, arn: str):
        self.arn = arn

    def attr(self, path: str) -> str:
        assert path == "arn"
        return self.arn


def render_online_features(t: ModelServing, ctx: StackContext, models: dict[str, Resource],
                           served: list[Pinned]) -> None:
    """Give each served variant with online_features its role, its environment and no isolation."""
    reading = [p for p in served if p.variant.online_features is not None]
    if not reading:
        return
    assert t.features is not None  # templates/serving_api.py: online_feature_problems
    data = t.training.data
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    names = ctx.upstream_output(t.features, "feature_group_names")
    arns = ctx.upstream_output(t.features, "feature_group_arns")
    aws = ctx.namespace.aws
    assert aws is not None
    repository = _Repository(iam.arn(ctx, "ecr", "repository/" + repository_name(
        ctx.platform, ctx.namespace.name, t.training.serving_image.repository)))
    base = hosting_statements(t.training, ctx, {"serving": repository},  # type: ignore[dict-item]
                              ctx.upstream_output(data, "bucket_arns"), key_arn,
                              ctx.upstream_output(data, "sagemaker_security_group_id"))
    for p in reading:
        online = p.variant.online_features
        assert online is not None
        groups = list(online.groups)
        config: dict[str, Any] = {
            "groups": [{"name": names[g], "record_id": _record_id(t, g), "features": stored_features(t, g)}
                       for g in groups],
            "region": aws.region, "timeout_ms": online.timeout_ms}
        longest = json.dumps({**config, "groups": [{**c, "name": "x" * GROUP_NAME_LIMIT} for c in config["groups"]]})
        if len(longest) > ENVIRONMENT_VALUE_LIMIT:
            count = sum(len(c["features"]) for c in config["groups"])
            raise ctx.error(f"{p.field}.online_features", f"the groups' {count} features make ONLINE_FEATURES "
                                                          f"{len(longest)} bytes; SageMaker allows "
                                                          f"{ENVIRONMENT_VALUE_LIMIT} per environment value: name "
                                                          f"fewer groups")
        suffix = p.variant.name.replace("-", "_")
        role = iam.role(ctx, f"online_features_{suffix}", f"{t.name}-{p.variant.name}-features",
                        "sagemaker.amazonaws.com")
        policy = iam.inline_policy(f"online_features_{suffix}", role, [*base,
            iam.statement("ReadOnlineFeatures", ["sagemaker:GetRecord", "sagemaker:BatchGetRecord"],
                          [arns[g] for g in groups]),
            iam.statement("DecryptOnlineStore", ["kms:Decrypt", "kms:DescribeKey"], [key_arn]),
        ])
        ctx.stack.add(role, policy)
        model = models[p.variant.name]
        container = model.body["primary_container"]
        assert isinstance(container, Block)
        environment = dict(container.body.get("environment") or {})  # type: ignore[call-overload]
        environment["ONLINE_FEATURES"] = jsonencode(config)
        model.body["primary_container"] = Block({**container.body, "environment": environment}, container.labels)
        model.body["execution_role_arn"] = role.attr("arn")
        model.body["enable_network_isolation"] = False
        model.skips = (*model.skips, ISOLATION_SKIP)
        # The model is created only once its role may do what the container does on its first request.
        model.depends_on = (*model.depends_on, policy)


def _record_id(t: ModelServing, group: str) -> str:
    assert t.features is not None
    return next(g.record_id for g in t.features.groups if g.name == group)


__all__ = ["render_online_features"]
