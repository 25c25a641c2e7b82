"""The terraform block, provider and state backend of every AWS stack."""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..terraform import Backend, Block, Provider, RequiredProvider, Settings, Value

REQUIRED_VERSION = ">= 1.10"  # the S3 backend's native lock file (use_lockfile) needs 1.10
AWS_PROVIDER = RequiredProvider("hashicorp/aws", ">= 5.100, < 7.0")


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# Every service the AWS stacks call, pointed at the emulator in a namespace with `aws.endpoint`.
EMULATED_SERVICES = ("applicationautoscaling", "cloudwatch", "ec2", "ecr", "events", "glue", "iam", "kms", "logs",
                     "s3", "sagemaker", "scheduler", "sfn", "sns", "sqs", "sts")
# The emulator has no instance metadata and accepts any credentials: don't look for either.
_EMULATOR_SKIPS: dict[str, Value] = {
    "skip_credentials_validation": True,
    "skip_metadata_api_check": True,
}


def settings(ctx: StackContext) -> tuple[Settings, list[Provider]]:
    aws = ctx.namespace.aws
    assert aws is not None
    backend: dict[str, Value] = {
        "bucket": aws.backend.bucket,
        "key": ctx.state_key(ctx.template.name),
        "region": aws.backend.region,
        "encrypt": True,
        "use_lockfile": True,
        "kms_key_id": aws.backend.kms_key_id,
        **_backend_emulator(aws.endpoint),
    }
    body: dict[str, Value] = {
        "region": aws.region,
        # Refuses to run against any other account: a dev config can never touch prod.
        "allowed_account_ids": [aws.account_id],
        "default_tags": Block({"tags": ctx.tags(":")}),
    }
    if aws.endpoint:
        body.update(_EMULATOR_SKIPS)
        body["s3_use_path_style"] = True
        body["endpoints"] = Block({service: aws.endpoint for service in EMULATED_SERVICES})
    provider = Provider("aws", body)
    return Settings(REQUIRED_VERSION, {"aws": AWS_PROVIDER}, Backend("s3", backend)), [provider]


def remote_state(ctx: StackContext, upstream: str) -> dict[str, Any]:
    aws = ctx.namespace.aws
    assert aws is not None
    return {
        "backend": "s3",
        "config": {
            "bucket": aws.backend.bucket,
            "key": ctx.state_key(upstream),
            "region": aws.backend.region,
            **_backend_emulator(aws.endpoint),
        },
    }


def _backend_emulator(endpoint: str | None) -> dict[str, Value]:
    """The S3 backend's settings for state kept in the emulator (the backend cannot ask STS there)."""
    if not endpoint:
        return {}
    return {"endpoints": {"s3": endpoint, "sts": endpoint}, "use_path_style": True,
            "skip_requesting_account_id": True, **_EMULATOR_SKIPS}
