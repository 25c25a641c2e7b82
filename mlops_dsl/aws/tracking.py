"""A SageMaker managed MLflow tracking server per platform, opt-in per namespace (`tracking.server`
in namespaces.yaml): it is billed around the clock, so no namespace gets one unasked.

- **The server** (`aws_sagemaker_mlflow_tracking_server`, hashicorp/aws 5.100): its artifact store
  is the `mlflow/` prefix of the platform's models zone. Neither the resource nor the API it calls
  (CreateMlflowTrackingServer in botocore's service model: TrackingServerName, ArtifactStoreUri,
  TrackingServerSize, MlflowVersion, RoleArn, AutomaticModelRegistration,
  WeeklyMaintenanceWindowStart, Tags) takes a KMS key: the artifacts are encrypted by the bucket's
  default SSE-KMS, the platform key. Automatic registration into the SageMaker Model Registry is
  off: the pipeline registers the gated model into its own model package group.
- **Its own role**: list, read and write exactly that prefix, and the platform key (the API's
  documentation suggests AmazonS3FullAccess; a prefix is all it uses).
- **Who logs to it**: the pipeline's training (or tuning) job, with `MLFLOW_TRACKING_URI` set to the
  server's ARN (the `sagemaker-mlflow` plugin in the training image resolves it). Such a job cannot
  be network-isolated (an isolated container has no network at all); it reaches the server through
  the `aws.sagemaker.<region>.experiments` interface endpoint (data stack, when the namespace opts
  in) and may call `sagemaker-mlflow:*` on this server's ARN only (`log_statement`).
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..terraform import Expr, Resource, Value, interp
from . import iam

ARTIFACT_PREFIX = "mlflow"
# Sunday night UTC, away from the weekly training schedule (Mondays 03:00 UTC).
MAINTENANCE_WINDOW = "Sun:01:00"
# The VPC endpoint service of SageMaker MLflow: not `com.amazonaws.<region>.*` like the others
# (AWS, "Connecting to an MLflow tracking server through an Interface VPC Endpoint").
ENDPOINT_SERVICE = "aws.sagemaker.{region}.experiments"


def opted_in(ctx: StackContext) -> bool:
    return ctx.namespace.tracking_server is not None


def server_name(ctx: StackContext) -> str:
    """`<platform>-<namespace>`: letters, digits and single hyphens, as the API's pattern asks."""
    return ctx.name


def render_tracking_server(ctx: StackContext, models_bucket: Value, models_bucket_arn: Value,
                           key_arn: Value) -> Resource | None:
    """The server and its role in the training stack; None when the namespace has not opted in."""
    if not opted_in(ctx):
        return None
    role = iam.role(ctx, "tracking", "mlflow-tracking", "sagemaker.amazonaws.com")
    policy = iam.inline_policy("tracking", role, server_statements(models_bucket_arn, key_arn))
    server = Resource("aws_sagemaker_mlflow_tracking_server", "main", {
        "tracking_server_name": server_name(ctx),
        "artifact_store_uri": interp("s3://", models_bucket, f"/{ARTIFACT_PREFIX}/"),
        "tracking_server_size": ctx.namespace.tracking_server,
        "role_arn": role.attr("arn"),
        "automatic_model_registration": False,
        "weekly_maintenance_window_start": MAINTENANCE_WINDOW,
    }, depends_on=(policy,))
    ctx.stack.add(role, policy, server)
    return server


def server_statements(models_bucket_arn: Value, key_arn: Value) -> list[dict[str, Any]]:
    """What the server does as its role: the artifact prefix and the key that encrypts it."""
    return [
        iam.statement("ListArtifactPrefix", ["s3:ListBucket"], [models_bucket_arn],
                      {"StringLike": {"s3:prefix": [f"{ARTIFACT_PREFIX}/*", ARTIFACT_PREFIX]}}),
        # Apart: a GetBucketLocation request carries no s3:prefix, so under the condition above it
        # would never be allowed.
        iam.statement("ArtifactBucketLocation", ["s3:GetBucketLocation"], [models_bucket_arn]),
        iam.statement("ArtifactObjects", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                          "s3:AbortMultipartUpload"],
                      [interp("", models_bucket_arn, f"/{ARTIFACT_PREFIX}/*")]),
        iam.statement("ArtifactKey", ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], [key_arn]),
    ]


def log_statement(server_arn: Expr) -> dict[str, Any]:
    """A job's or a notebook's access to the server: the MLflow REST API on this server only
    (the `sagemaker-mlflow` IAM service prefix, AWS "Set up IAM permissions for MLflow")."""
    return iam.statement("LogToTrackingServer", ["sagemaker-mlflow:*"], [server_arn])


def server_arn(ctx: StackContext) -> str:
    """The server's ARN, built from its name: the execution role is declared before the server."""
    return iam.arn(ctx, "sagemaker", f"mlflow-tracking-server/{server_name(ctx)}")


def tracking_endpoint(ctx: StackContext, vpc: Resource, subnets: list[Resource],
                      security_group: Resource) -> list[Resource]:
    """The data stack's interface endpoint to SageMaker MLflow, only where the namespace opts in."""
    if not opted_in(ctx):
        return []
    aws = ctx.namespace.aws
    assert aws is not None
    return [Resource("aws_vpc_endpoint", "sagemaker_experiments", {
        "vpc_id": vpc.attr("id"),
        "service_name": ENDPOINT_SERVICE.format(region=aws.region),
        "vpc_endpoint_type": "Interface",
        "private_dns_enabled": True,
        "subnet_ids": [s.attr("id") for s in subnets],
        "security_group_ids": [security_group.attr("id")],
        "tags": {"Name": f"{ctx.name}-sagemaker-experiments"},
    })]
