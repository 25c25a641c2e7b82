"""DataInfrastructure on AWS: a KMS key, one S3 bucket per zone and an access-log bucket.

Every bucket is versioned, blocks public access, disables ACLs (BucketOwnerEnforced), expires
old versions and abandoned uploads, and refuses plain-HTTP requests. Zone buckets are encrypted
with the platform's key and log their access to the log bucket.
"""

from __future__ import annotations

from ..context import StackContext
from ..templates.data import DataInfrastructure
from ..terraform import Block, CheckovSkip, Output, Resource, interp, jsonencode
from . import budget, iam
from .naming import s3_bucket_problems, zone_bucket
from .network import render_network
from .provider import partition

SKIP_REPLICATION = CheckovSkip(
    "CKV_AWS_144", "cross-region replication needs a bucket and key in a second region; opt in per platform")
LOG_BUCKET_SKIPS = (
    CheckovSkip("CKV_AWS_18", "this is the access-log target; logging it into itself would loop"),
    CheckovSkip("CKV_AWS_145", "S3 server access logs can only be delivered to SSE-S3 (AES256) buckets"),
    CheckovSkip("CKV2_AWS_62", "log objects need no event notifications; they would only add EventBridge cost"),
    SKIP_REPLICATION,
)


def _resource_name(zone: str) -> str:
    return zone.replace("-", "_")


def _deny_insecure_transport(bucket: Resource) -> dict[str, object]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket.attr("arn"), interp("", bucket.attr("arn"), "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _bucket_basics(name: str, bucket: Resource, lifecycle_rules: list[Block],
                   encryption: Block) -> list[Resource]:
    """Versioning, encryption, public access block, ownership and lifecycle for one bucket."""
    versioning = Resource("aws_s3_bucket_versioning", name, {
        "bucket": bucket.attr("id"),
        "versioning_configuration": Block({"status": "Enabled"}),
    })
    public_access = Resource("aws_s3_bucket_public_access_block", name, {
        "bucket": bucket.attr("id"),
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    })
    return [
        versioning,
        Resource("aws_s3_bucket_server_side_encryption_configuration", name, {
            "bucket": bucket.attr("id"),
            "rule": encryption,
        }),
        public_access,
        Resource("aws_s3_bucket_ownership_controls", name, {
            "bucket": bucket.attr("id"),
            "rule": Block({"object_ownership": "BucketOwnerEnforced"}),
        }),
        # Lifecycle rules act on versions, so versioning must exist first (provider docs).
        Resource("aws_s3_bucket_lifecycle_configuration", name, {
            "bucket": bucket.attr("id"),
            "rule": lifecycle_rules,
        }, depends_on=(versioning,)),
    ]


def _expire_rule(t: DataInfrastructure, current_days: int | None = None) -> Block:
    body: dict[str, object] = {
        "id": "expire-old-versions-and-uploads",
        "status": "Enabled",
        "filter": Block({}),
        "abort_incomplete_multipart_upload": Block({"days_after_initiation": t.abort_multipart_days}),
        "noncurrent_version_expiration": Block({"noncurrent_days": t.noncurrent_version_days}),
    }
    if current_days is not None:
        body["expiration"] = Block({"days": current_days})
    return Block(body)  # type: ignore[arg-type]


def _consumers(ctx: StackContext, t: DataInfrastructure) -> list[str]:
    """Accounts of the namespaces that serve models from this namespace's registry."""
    if "models" not in t.zones:
        return []
    return [iam.account_root(ctx, account) for account in ctx.namespace.consumer_accounts]


def _registry_key_grant(ctx: StackContext, t: DataInfrastructure) -> list[dict[str, object]]:
    """The serving namespaces' accounts may decrypt the registry's artifacts, through S3 only."""
    consumers = _consumers(ctx, t)
    aws = ctx.namespace.aws
    assert aws is not None
    return [{
        "Sid": "ServingNamespacesReadModelArtifacts",
        "Effect": "Allow",
        "Principal": {"AWS": consumers},
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{aws.region}.amazonaws.com"}},
    }] if consumers else []


def _registry_bucket_grant(ctx: StackContext, t: DataInfrastructure, bucket: Resource,
                           zone: str) -> list[dict[str, object]]:
    """The serving namespaces' accounts may read model artifacts (the objects, not list the bucket)."""
    consumers = _consumers(ctx, t) if zone == "models" else []
    return [{
        "Sid": "ServingNamespacesReadModelArtifacts",
        "Effect": "Allow",
        "Principal": {"AWS": consumers},
        "Action": "s3:GetObject",
        "Resource": interp("", bucket.attr("arn"), "/*"),
    }] if consumers else []


def render(t: DataInfrastructure, ctx: StackContext) -> None:
    aws = ctx.namespace.aws
    assert aws is not None
    part = partition(aws.region)
    account_root = f"arn:{part}:iam::{aws.account_id}:root"

    names = {zone: zone_bucket(ctx.platform, ctx.namespace.name, zone, aws.account_id) for zone in t.zones}
    log_bucket_name = f"{ctx.name}-access-logs-{aws.account_id}"
    for zone, bucket_name in names.items():
        problems = s3_bucket_problems(bucket_name)
        if problems:
            raise ctx.error("zones", f"zone {zone!r} gives the S3 bucket name {bucket_name!r}, which "
                                     + "; ".join(problems))
    problems = s3_bucket_problems(log_bucket_name)
    if problems:
        raise ctx.error("name", f"the access-log bucket name {log_bucket_name!r} " + "; ".join(problems)
                        + " (shorten the platform or namespace name)")

    key = Resource("aws_kms_key", "data", {
        "description": f"Encrypts the {ctx.platform} data zones in {ctx.namespace.name}",
        "enable_key_rotation": True,
        "deletion_window_in_days": t.key_deletion_window_days,
        "is_enabled": True,
        "policy": jsonencode({
            "Version": "2012-10-17",
            "Statement": [
                {
                    # The account, not any principal, administers the key; IAM policies then grant use.
                    "Sid": "AccountAdministration",
                    "Effect": "Allow",
                    "Principal": {"AWS": account_root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    # CloudWatch Logs encrypts this account's log groups with the key, and nothing else.
                    "Sid": "CloudWatchLogsOfThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{aws.region}.amazonaws.com"},
                    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                               "kms:Describe*"],
                    "Resource": "*",
                    "Condition": {"ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": iam.arn(ctx, "logs", "log-group:*")}},
                },
                *_registry_key_grant(ctx, t),
            ],
        }),
    })
    alias = Resource("aws_kms_alias", "data", {
        "name": f"alias/{ctx.name}-data",
        "target_key_id": key.attr("key_id"),
    })
    ctx.stack.add(key, alias)

    # The access-log bucket: SSE-S3, because S3 server access logging cannot write to SSE-KMS.
    logs = Resource("aws_s3_bucket", "access_logs", {
        "bucket": log_bucket_name,
        "force_destroy": t.force_destroy,
    }, skips=LOG_BUCKET_SKIPS)
    ctx.stack.add(logs, *_bucket_basics(
        "access_logs", logs,
        [_expire_rule(t, current_days=t.access_log_retention_days)],
        Block({"apply_server_side_encryption_by_default": Block({"sse_algorithm": "AES256"})}),
    ))

    zone_buckets: dict[str, Resource] = {}
    for zone, bucket_name in names.items():
        rname = _resource_name(zone)
        bucket = Resource("aws_s3_bucket", rname, {
            "bucket": bucket_name,
            "force_destroy": t.force_destroy,
        }, skips=(SKIP_REPLICATION,))
        zone_buckets[zone] = bucket
        basics = _bucket_basics(rname, bucket, [_expire_rule(t)], Block({
            "apply_server_side_encryption_by_default": Block({
                "sse_algorithm": "aws:kms",
                "kms_master_key_id": key.attr("arn"),
            }),
            "bucket_key_enabled": True,
        }))
        public_access = next(r for r in basics if r.type == "aws_s3_bucket_public_access_block")
        ctx.stack.add(bucket, *basics)
        ctx.stack.add(
            Resource("aws_s3_bucket_policy", rname, {
                "bucket": bucket.attr("id"),
                "policy": jsonencode({"Version": "2012-10-17", "Statement": [
                    _deny_insecure_transport(bucket), *_registry_bucket_grant(ctx, t, bucket, zone)]}),
            }, depends_on=(public_access,)),
            # EventBridge notifications let pipelines start on new data without polling.
            Resource("aws_s3_bucket_notification", rname, {
                "bucket": bucket.attr("id"),
                "eventbridge": True,
            }),
        )

    logs_public_access = next(r for r in ctx.stack.resources
                              if r.address == "aws_s3_bucket_public_access_block.access_logs")
    logs_policy = Resource("aws_s3_bucket_policy", "access_logs", {
        "bucket": logs.attr("id"),
        "policy": jsonencode({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "S3ServerAccessLogsFromThisPlatform",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": interp("", logs.attr("arn"), "/*"),
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": [b.attr("arn") for b in zone_buckets.values()]},
                        "StringEquals": {"aws:SourceAccount": aws.account_id},
                    },
                },
                _deny_insecure_transport(logs),
            ],
        }),
    }, depends_on=(logs_public_access,))
    ctx.stack.add(logs_policy)
    # S3 checks that the target bucket lets the logging service write before it accepts a logging
    # configuration (InvalidTargetBucketForLogging), so the policy must exist first.
    for zone, bucket in zone_buckets.items():
        ctx.stack.add(Resource("aws_s3_bucket_logging", _resource_name(zone), {
            "bucket": bucket.attr("id"),
            "target_bucket": logs.attr("id"),
            "target_prefix": f"{zone}/",
        }, depends_on=(logs_policy,)))

    render_network(t, ctx, key)
    _render_catalog(t, ctx, key, zone_buckets)
    budget.render(ctx)

    ctx.stack.add(
        Output("bucket_names", {z: b.attr("bucket") for z, b in zone_buckets.items()},
               description="S3 bucket name of each data zone"),
        Output("bucket_arns", {z: b.attr("arn") for z, b in zone_buckets.items()},
               description="S3 bucket ARN of each data zone"),
        Output("kms_key_arn", key.attr("arn"), description="ARN of the KMS key that encrypts the data zones"),
        Output("kms_key_id", key.attr("key_id"), description="Id of the KMS key that encrypts the data zones"),
        Output("access_log_bucket_name", logs.attr("bucket"), description="S3 bucket receiving access logs"),
    )


def _render_catalog(t: DataInfrastructure, ctx: StackContext, key: Resource,
                    buckets: dict[str, Resource]) -> None:
    """The Glue database over the data lake, and the account-wide settings this stack owns."""
    database = Resource("aws_glue_catalog_database", "lake", {
        # Glue and Athena names take no hyphens or capitals.
        "name": ctx.name.replace("-", "_"),
        "description": f"Tables over the {ctx.platform} data lake in {ctx.namespace.name}",
    })
    if "processed" in buckets:
        database.body["location_uri"] = interp("s3://", buckets["processed"].attr("bucket"), "/tables/")
    ctx.stack.add(database, Output("glue_database_name", database.attr("name"),
                                   description="Glue catalog database of the data lake"))
    if not t.manage_account_settings:
        return
    # The catalog is the account's, not this platform's: under the platform's key every Glue, Athena
    # and Lake Formation user of the account would need a grant on it (Athena: "access encrypted data
    # in the Glue Data Catalog"), and destroying the platform would leave what it encrypted unreadable
    # ("existing encrypted objects will remain encrypted" when encryption is turned off:
    # https://docs.aws.amazon.com/glue/latest/dg/encrypt-glue-data-catalog.html). With no key named,
    # Glue uses the AWS managed key aws/glue, which every principal of the account may use through
    # Glue and which is never deleted.
    ctx.stack.add(Resource("aws_glue_data_catalog_encryption_settings", "account", {
        "data_catalog_encryption_settings": Block({
            "connection_password_encryption": Block({"return_connection_password_encrypted": True}),
            "encryption_at_rest": Block({"catalog_encryption_mode": "SSE-KMS"}),
        }),
    }, skips=(CheckovSkip("CKV_AWS_94", "encrypted with the AWS managed key aws/glue, which checkov cannot see "
                                       "as no key is named: the account's catalog must not depend on one "
                                       "platform's key"),)))
    # SageMaker would create these on first use, unencrypted and kept forever.
    for kind in ("TrainingJobs", "ProcessingJobs"):
        ctx.stack.add(Resource("aws_cloudwatch_log_group", f"sagemaker_{kind.lower()}", {
            "name": f"/aws/sagemaker/{kind}",
            "retention_in_days": t.log_retention_days,
            "kms_key_id": key.attr("arn"),
        }))
