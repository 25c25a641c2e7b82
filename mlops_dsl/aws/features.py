"""FeatureStore on AWS: SageMaker feature groups with encrypted online and offline stores.

The offline store lives under `feature-store/` in the chosen data zone; SageMaker registers its
Glue tables in the `sagemaker_featurestore` database (it refuses a custom catalog unless table
creation is turned off). The role may touch exactly those objects and the platform's key. The
groups that declare `ingestion` get their ingestion jobs here too (feature_ingestion.py).
"""

from __future__ import annotations

from ..context import StackContext
from ..templates.features import FeatureStore
from ..terraform import Block, Lifecycle, Output, Resource, interp
from . import iam
from .feature_ingestion import render_ingestion
from .feature_training_set import OFFLINE_PREFIX

FEATURE_TYPES = {"integral": "Integral", "fractional": "Fractional", "string": "String"}
GLUE_DATABASE = "sagemaker_featurestore"
PREFIX = OFFLINE_PREFIX


def render(t: FeatureStore, ctx: StackContext) -> None:
    key_arn = ctx.upstream_output(t.data, "kms_key_arn")
    bucket = ctx.upstream_output(t.data, "bucket_names")[t.offline_zone]
    bucket_arn = ctx.upstream_output(t.data, "bucket_arns")[t.offline_zone]

    names = {g.name: f"{ctx.name}-{g.name}" for g in t.groups}
    for group, name in names.items():
        if len(name) > 64:
            raise ctx.error("groups", f"group {group!r} gives the feature group name {name!r}, which is "
                                      f"{len(name)} characters; SageMaker allows 64")

    role = iam.role(ctx, "feature_store", "feature-store", "sagemaker.amazonaws.com")
    policy = iam.inline_policy("feature_store", role, [
        # PutObjectAcl as in AWS's AmazonSageMakerFeatureStoreAccess policy: the offline store sets the
        # bucket-owner-full-control ACL on what it writes (accepted under BucketOwnerEnforced).
        iam.statement("OfflineStoreObjects", ["s3:PutObject", "s3:PutObjectAcl", "s3:GetObject", "s3:GetBucketAcl"],
                      [interp("", bucket_arn, f"/{PREFIX}/*")]),
        iam.statement("OfflineStoreBucket", ["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:ListBucket"],
                      [bucket_arn]),
        iam.statement("PlatformKey", ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                      [key_arn]),
        iam.statement("OfflineStoreTables", ["glue:GetDatabase", "glue:CreateTable", "glue:GetTable",
                                             "glue:UpdateTable"], [
            iam.arn(ctx, "glue", "catalog"),
            iam.arn(ctx, "glue", f"database/{GLUE_DATABASE}"),
            *[iam.arn(ctx, "glue", f"table/{GLUE_DATABASE}/{name.replace('-', '_')}*") for name in names.values()],
        ]),
    ])
    ctx.stack.add(role, policy)

    groups = {}
    for g in t.groups:
        body = {
            "feature_group_name": names[g.name],
            "description": g.description,
            "record_identifier_feature_name": g.record_id,
            "event_time_feature_name": g.event_time,
            "role_arn": role.attr("arn"),
            "feature_definition": [
                Block({"feature_name": f.name, "feature_type": FEATURE_TYPES[f.type]}) for f in g.features
            ],
        }
        if g.online:
            body["online_store_config"] = Block({
                "enable_online_store": True,
                "security_config": Block({"kms_key_id": key_arn}),
            })
        if g.offline:
            body["offline_store_config"] = Block({
                "disable_glue_table_creation": False,
                "s3_storage_config": Block({
                    "s3_uri": interp("s3://", bucket, f"/{PREFIX}"),
                    "kms_key_id": key_arn,
                }),
            })
        # A changed feature definition replaces the group, deleting its records: refuse by default.
        resource = Resource("aws_sagemaker_feature_group", g.name.replace("-", "_"), body,  # type: ignore[arg-type]
                            depends_on=(policy,), lifecycle=Lifecycle(prevent_destroy=t.protect_from_destroy))
        groups[g.name] = resource
        ctx.stack.add(resource)

    render_ingestion(t, ctx, groups, key_arn)
    ctx.stack.add(
        Output("feature_group_names", {n: r.attr("feature_group_name") for n, r in groups.items()},
               description="SageMaker feature group name of each declared group"),
        Output("feature_group_arns", {n: r.attr("arn") for n, r in groups.items()},
               description="SageMaker feature group ARN of each declared group"),
        Output("feature_store_role_arn", role.attr("arn"), description="Role the feature groups write with"),
    )

