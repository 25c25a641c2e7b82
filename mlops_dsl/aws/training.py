"""TrainingInfrastructure on AWS: image repositories, the SageMaker execution role, the model
registry group, the training pipeline and the schedule that starts it."""

from __future__ import annotations

from ..context import StackContext
from ..templates.training import TrainingInfrastructure
from ..terraform import Block, DataSource, Expr, Interp, Output, Resource, Value, interp, jsonencode
from . import iam
from .pipeline import PipelineInputs, definition

# The SageMaker job names a pipeline generates start with this.
PIPELINE_JOBS = "pipelines-*"


def repository_name(platform: str, namespace: str, repository: str) -> str:
    """The ECR repository of an image; `mlops images` pushes to the same name."""
    return f"{platform}-{namespace}/{repository}"


def registry(account_id: str, region: str) -> str:
    suffix = ".com.cn" if region.startswith("cn-") else ".com"
    return f"{account_id}.dkr.ecr.{region}.amazonaws{suffix}"


def image_uri(repository_url: Value, tag: Expr) -> Interp:
    return interp("", repository_url, ":", tag)  # type: ignore[arg-type]


def render(t: TrainingInfrastructure, ctx: StackContext) -> None:
    data = t.data
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    bucket_names = ctx.upstream_output(data, "bucket_names")
    bucket_arns = ctx.upstream_output(data, "bucket_arns")
    subnets = ctx.upstream_output(data, "private_subnet_ids")
    security_group = ctx.upstream_output(data, "sagemaker_security_group_id")
    data_zone = "processed" if "processed" in data.zones else data.zones[0]

    repos = {}
    for role_name, image in t.images.items():
        name = image.repository
        repo = Resource("aws_ecr_repository", role_name, {
            "name": repository_name(ctx.platform, ctx.namespace.name, name),
            # Tags are content hashes: a tag must always mean the same image.
            "image_tag_mutability": "IMMUTABLE",
            "image_scanning_configuration": Block({"scan_on_push": True}),
            "encryption_configuration": Block({"encryption_type": "KMS", "kms_key": key_arn}),
        })
        repos[role_name] = repo
        ctx.stack.add(repo, Resource("aws_ecr_lifecycle_policy", role_name, {
            "repository": repo.attr("name"),
            "policy": jsonencode({"rules": [{
                "rulePriority": 1,
                "description": f"Keep the last {t.keep_images} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": t.keep_images},
                "action": {"type": "expire"},
            }]}),
        }))

    group_name = ctx.name
    if len(group_name) > 63:
        raise ctx.error("name", f"the model package group name {group_name!r} is over SageMaker's 63 characters")
    group = Resource("aws_sagemaker_model_package_group", "models", {
        "model_package_group_name": group_name,
        "model_package_group_description": f"Models of {ctx.platform} trained in {ctx.namespace.name}",
    })
    role = iam.role(ctx, "execution", "sagemaker-execution", "sagemaker.amazonaws.com")
    pipeline_name = f"{ctx.name}-training"
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
        iam.statement("JobNetworkInterfaces", ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                                               "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"], [
            iam.arn(ctx, "ec2", "network-interface/*"),
            iam.arn(ctx, "ec2", "subnet/*"),
            interp(iam.arn(ctx, "ec2", "security-group/"), security_group),
        ], {"StringEquals": {"aws:ResourceAccount": ctx.namespace.aws.account_id}}),  # type: ignore[union-attr]
        iam.statement("DescribeNetwork", ["ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
                                          "ec2:DescribeSecurityGroups", "ec2:DescribeDhcpOptions"], "*"),
        iam.statement("RunPipelineJobs", [
            "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
            "sagemaker:CreateHyperParameterTuningJob", "sagemaker:DescribeHyperParameterTuningJob",
            "sagemaker:StopHyperParameterTuningJob", "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
            "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
            "sagemaker:AddTags",
        ], [
            iam.arn(ctx, "sagemaker", f"training-job/{PIPELINE_JOBS}"),
            iam.arn(ctx, "sagemaker", f"hyper-parameter-tuning-job/{PIPELINE_JOBS}"),
            iam.arn(ctx, "sagemaker", f"processing-job/{PIPELINE_JOBS}"),
        ]),
        iam.statement("RegisterModels", ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                                         "sagemaker:DescribeModelPackageGroup", "sagemaker:AddTags"], [
            group.attr("arn"),
            iam.arn(ctx, "sagemaker", f"model-package/{group_name}/*"),
        ]),
        iam.statement("PassOwnRoleToSageMaker", ["iam:PassRole"], [
            iam.arn(ctx, "iam", f"role/{ctx.name}-sagemaker-execution", region=False)],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
    ]
    if t.features is not None:
        groups = ctx.upstream_output(t.features, "feature_group_arns")
        statements.append(iam.statement("ReadFeatures", [
            "sagemaker:GetRecord", "sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup"],
            [groups[g.name] for g in t.features.groups]))
    policy = iam.inline_policy("execution", role, statements)
    ctx.stack.add(group, role, policy)

    training_image = image_uri(repos["training"].attr("repository_url"), ctx.image_tag(t.image))
    serving_image = image_uri(repos["serving"].attr("repository_url"), ctx.image_tag(t.serving_image))
    analyzer = DataSource("aws_sagemaker_prebuilt_ecr_image", "model_monitor", {
        "repository_name": "sagemaker-model-monitor-analyzer"})
    ctx.stack.add(analyzer)
    pipeline = Resource("aws_sagemaker_pipeline", "training", {
        "pipeline_name": pipeline_name,
        "pipeline_display_name": pipeline_name,
        "pipeline_description": f"Train, evaluate, gate on {t.gate.metric} >= {t.gate.threshold}, register",
        "role_arn": role.attr("arn"),
        "pipeline_definition": jsonencode(definition(t, PipelineInputs(
            role_arn=role.attr("arn"),
            training_image=training_image,
            serving_image=serving_image,
            data_bucket=bucket_names[data_zone],
            models_bucket=bucket_names["models"] if "models" in data.zones else bucket_names[data_zone],
            key_arn=key_arn,
            subnets=subnets,
            security_group_ids=[security_group],
            model_package_group=group.attr("model_package_group_name"),
            monitor_image=analyzer.attr("registry_path"),
        ))),
    }, depends_on=(policy,))
    ctx.stack.add(pipeline)

    if t.schedule is not None:
        scheduler = iam.role(ctx, "scheduler", "training-scheduler", "scheduler.amazonaws.com")
        ctx.stack.add(scheduler, iam.inline_policy("scheduler", scheduler, [
            iam.statement("StartTrainingPipeline", ["sagemaker:StartPipelineExecution"], [pipeline.attr("arn")]),
        ]))
        ctx.stack.add(Resource("aws_scheduler_schedule", "training", {
            "name": pipeline_name,
            "description": f"Starts the {ctx.platform} training pipeline in {ctx.namespace.name}",
            "schedule_expression": t.schedule,
            "schedule_expression_timezone": "UTC",
            "kms_key_arn": key_arn,
            "flexible_time_window": Block({"mode": "OFF"}),
            "target": Block({
                "arn": pipeline.attr("arn"),
                "role_arn": scheduler.attr("arn"),
                "retry_policy": Block({"maximum_retry_attempts": 2, "maximum_event_age_in_seconds": 3600}),
            }),
        }))

    ctx.stack.add(
        Output("repository_urls", {n: r.attr("repository_url") for n, r in repos.items()},
               description="ECR repository URL of each image"),
        Output("training_image_uri", training_image, description="The training image, tagged by content hash"),
        Output("serving_image_uri", serving_image, description="The serving image, tagged by content hash"),
        Output("execution_role_arn", role.attr("arn"), description="Role of SageMaker jobs and models"),
        Output("pipeline_arn", pipeline.attr("arn"), description="The training pipeline"),
        Output("pipeline_name", pipeline.attr("pipeline_name"), description="The training pipeline's name"),
        Output("model_package_group_name", group.attr("model_package_group_name"),
               description="Model registry group the pipeline registers into"),
    )
