"""The SageMaker execution role of the training pipeline's jobs: this platform's data, key, images and jobs."""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..pins import group_name
from ..templates.training import TrainingInfrastructure
from ..terraform import Expr, Resource, interp
from . import iam, tracking
from .naming import zone_bucket
from .provider import partition

# The SageMaker job names a pipeline generates start with this.
PIPELINE_JOBS = "pipelines-*"
# What only the namespace that trains needs.
TRAINING_ONLY = {"ReadFeatures", "LogToTrackingServer"}


def registry_group_name(ctx: StackContext) -> str:
    """The model package group of this platform in the namespace that owns the registry."""
    return group_name(ctx.platform, ctx.namespace.registry)


def network_statements(ctx: StackContext, security_group: Expr) -> list[dict[str, Any]]:
    """What a SageMaker job or model in the private subnets needs: its network interfaces there."""
    return [
        iam.statement("NetworkInterfaces", ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                                            "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"], [
            iam.arn(ctx, "ec2", "network-interface/*"),
            iam.arn(ctx, "ec2", "subnet/*"),
            interp(iam.arn(ctx, "ec2", "security-group/"), security_group),
        ], {"StringEquals": {"aws:ResourceAccount": ctx.namespace.aws.account_id}}),  # type: ignore[union-attr]
        iam.statement("DescribeNetwork", ["ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
                                          "ec2:DescribeSecurityGroups", "ec2:DescribeDhcpOptions"], "*"),
    ]


def execution_statements(t: TrainingInfrastructure, ctx: StackContext, repos: dict[str, Resource],
                         bucket_arns: Expr, key_arn: Expr, security_group: Expr) -> list[dict[str, Any]]:
    """The jobs' statements: read the zones, write models and experiments, pull the images, log;
    in a namespace that serves from another's registry, read that registry's artifacts. Starting
    jobs, registering models and passing this role are the pipeline's (pipeline_statements)."""
    data = t.data
    zone_objects = [interp("", bucket_arns[z], "/*") for z in data.zones]
    statements = [
        iam.statement("ListDataZones", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket_arns[z] for z in data.zones]),
        iam.statement("ReadDataZones", ["s3:GetObject"], zone_objects),
        iam.statement("WriteModelsAndExperiments", ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                      [interp("", bucket_arns[z], "/*") for z in data.zones if z in ("models", "experiments")]
                      or zone_objects),
        iam.statement("PlatformKey", ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                                      "kms:DescribeKey", "kms:CreateGrant"], [key_arn]),
        iam.statement("PullImages", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                     "ecr:BatchCheckLayerAvailability"], [r.attr("arn") for r in repos.values()]),
        # GetAuthorizationToken acts on the registry, which has no ARN to scope it to.
        iam.statement("RegistryLogin", ["ecr:GetAuthorizationToken"], "*"),
        iam.statement("JobLogs", ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                      [iam.arn(ctx, "logs", "log-group:/aws/sagemaker/*")]),
        iam.statement("JobMetrics", ["cloudwatch:PutMetricData"], "*",
                      {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}}),
        *network_statements(ctx, security_group),
    ]
    if t.features is not None:
        groups = ctx.upstream_output(t.features, "feature_group_arns")
        statements.append(iam.statement("ReadFeatures", [
            "sagemaker:GetRecord", "sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup"],
            [groups[g.name] for g in t.features.groups]))
    if ctx.namespace.tracking_server is not None:
        statements.append(tracking.log_statement(tracking.server_arn(ctx)))  # the training job logs there
    if not ctx.namespace.owns_registry:
        # No pipeline runs here: the role runs the namespace's monitoring jobs only.
        statements = [s for s in statements if s["Sid"] not in TRAINING_ONLY]
    return statements


def pipeline_statements(ctx: StackContext, repos: dict[str, Resource], jobs_role: Resource, models_bucket_arn: Expr,
                        key_arn: Expr) -> list[dict[str, Any]]:
    """What SageMaker Pipelines does as the pipeline's own role: start and watch the steps' jobs
    (which run as the jobs' role, passed to SageMaker only), register the model version, and read
    the evaluation report its quality gate's JsonGet reads from the execution's outputs."""
    group_name = registry_group_name(ctx)
    return [
        iam.statement("RunPipelineJobs", [
            "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
            "sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob",
            "sagemaker:StopHyperParameterTuningJob", "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
            "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
            "sagemaker:AddTags",
        ], [
            iam.arn(ctx, "sagemaker", f"training-job/{PIPELINE_JOBS}"),
            # A tuning job's name holds at most 32 characters, too few for the pipelines-<execution>-
            # prefix the other jobs carry: the pipeline's role may act on the account's tuning jobs.
            iam.arn(ctx, "sagemaker", "hyper-parameter-tuning-job/*"),
            iam.arn(ctx, "sagemaker", f"processing-job/{PIPELINE_JOBS}"),
        ]),
        iam.statement("RegisterModels", ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                                         "sagemaker:DescribeModelPackageGroup", "sagemaker:AddTags"], [
            iam.arn(ctx, "sagemaker", f"model-package-group/{group_name}"),
            iam.arn(ctx, "sagemaker", f"model-package/{group_name}/*"),
        ]),
        iam.statement("PassJobRoleToSageMaker", ["iam:PassRole"], [jobs_role.attr("arn")],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        iam.statement("ReadStepOutputs", ["s3:GetObject"], [interp("", models_bucket_arn, "/executions/*")]),
        iam.statement("DecryptStepOutputs", ["kms:Decrypt", "kms:DescribeKey"], [key_arn]),
        # CreateModelPackage checks that the inference image exists in the repository.
        iam.statement("DescribeServingImage", ["ecr:DescribeImages", "ecr:BatchGetImage"],
                      [repos["serving"].attr("arn")]),
    ]


def hosting_statements(t: TrainingInfrastructure, ctx: StackContext, repos: dict[str, Resource],
                       bucket_arns: Expr, key_arn: Expr, security_group: Expr) -> list[dict[str, Any]]:
    """The role the served models run with, and nothing more: read model artifacts, pull the serving
    image, write the endpoints' logs and metrics, attach to the private subnets, and read the
    rollback alarms, which the endpoints' deployment guardrails do with this role (SageMaker,
    "Auto-Rollback Configuration and Monitoring"). It cannot start jobs or pass roles."""
    models = [interp("", bucket_arns[z], "/*") for z in t.data.zones if z == "models"] or \
        [interp("", bucket_arns[z], "/*") for z in t.data.zones]
    statements = [
        iam.statement("ReadModelArtifacts", ["s3:GetObject"], models),
        iam.statement("DecryptModelArtifacts", ["kms:Decrypt", "kms:DescribeKey"], [key_arn]),
        iam.statement("PullServingImage", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                           "ecr:BatchCheckLayerAvailability"], [repos["serving"].attr("arn")]),
        # GetAuthorizationToken acts on the registry, which has no ARN to scope it to.
        iam.statement("RegistryLogin", ["ecr:GetAuthorizationToken"], "*"),
        iam.statement("EndpointLogs", ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                      [iam.arn(ctx, "logs", "log-group:/aws/sagemaker/Endpoints/*")]),
        iam.statement("EndpointMetrics", ["cloudwatch:PutMetricData"], "*",
                      {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}}),
        iam.statement("ReadRollbackAlarms", ["cloudwatch:DescribeAlarms"], [
            iam.arn(ctx, "cloudwatch", f"alarm:{ctx.name}-*")]),
        *network_statements(ctx, security_group),
    ]
    if not ctx.namespace.owns_registry:
        statements += _registry_reads(ctx)
    return statements


def _registry_reads(ctx: StackContext) -> list[dict[str, Any]]:
    """The pinned artifacts live in the registry's models bucket, under the registry's key."""
    registry = ctx.namespace.registry_aws
    assert registry is not None
    return [
        iam.statement("ReadRegistryArtifacts", ["s3:GetObject"],
                      [f"arn:{partition(registry.region)}:s3:::"
                       f"{zone_bucket(ctx.platform, ctx.namespace.registry, 'models', registry.account_id)}/*"]),
        iam.statement("DecryptRegistryArtifacts", ["kms:Decrypt", "kms:DescribeKey"],
                      [f"arn:{partition(registry.region)}:kms:{registry.region}:{registry.account_id}:key/*"],
                      {"StringEquals": {"kms:ViaService": f"s3.{registry.region}.amazonaws.com"}}),
    ]
