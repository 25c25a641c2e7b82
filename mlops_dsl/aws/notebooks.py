"""Notebooks on AWS, opt-in per namespace (`notebooks.users` in namespaces.yaml): a SageMaker
Studio domain per platform in the training stack, and one user profile per listed user.

- **The domain**: IAM authentication, `VpcOnly` (the apps' traffic stays in the platform's
  private subnets, which have no internet route), the platform key on the home EFS volume
  (`kms_key_id`), and its own security group: HTTPS to the interface endpoints and to S3 through
  the gateway endpoint, and TCP 8192-65535 between its own members, which Studio's apps need
  (AWS, "Connect Studio notebooks in a VPC to external resources": the SageMaker API and runtime
  endpoints, which the data stack has, are what VpcOnly requires).
- **Its execution role** (every user's, `default_user_settings`): read the processed and
  experiments zones and decrypt with the key, log to the tracking server when the namespace has
  one, run Studio's own apps and spaces in this domain, and its logs. No job, no `iam:PassRole`,
  no write to a data zone, no admin.
- **Retention**: `home_efs_file_system = "Retain"` (also the provider's default; "Delete" would
  erase every user's home directory on destroy). A destroy therefore leaves the EFS file system,
  which the `notebooks_home_efs_id` output names so it is not left silently.
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.training import TrainingInfrastructure
from ..terraform import Block, CheckovSkip, Expr, Output, Resource, interp
from . import iam, tracking

READ_ZONES = ("processed", "experiments")
# Studio's apps talk to each other on these ports inside the domain's security group (AWS,
# "Connect Studio notebooks in a VPC to external resources", requirements of VPC only mode).
APP_PORTS = (8192, 65535)


def render_notebooks(t: TrainingInfrastructure, ctx: StackContext) -> None:
    """The domain, its security group and role, and the user profiles; nothing unless opted in."""
    users = ctx.namespace.notebook_users
    if not users:
        return
    data = t.data
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    group = _security_group(ctx, t)
    role = iam.role(ctx, "notebooks", "studio-execution", "sagemaker.amazonaws.com")
    domain = Resource("aws_sagemaker_domain", "notebooks", {
        "domain_name": ctx.name,
        "auth_mode": "IAM",
        "vpc_id": ctx.upstream_output(data, "vpc_id"),
        "subnet_ids": ctx.upstream_output(data, "private_subnet_ids"),
        "app_network_access_type": "VpcOnly",
        "kms_key_id": key_arn,
        "default_user_settings": Block({
            "execution_role": role.attr("arn"),
            "security_groups": [group.attr("id")],
        }),
        # User settings reach only private spaces ("SageMaker doesn't apply these settings to shared
        # spaces", botocore UserSettings.SecurityGroups); the role may create shared spaces, which
        # take these: the same role and the one group the endpoints admit.
        "default_space_settings": Block({
            "execution_role": role.attr("arn"),
            "security_groups": [group.attr("id")],
        }),
        "retention_policy": Block({"home_efs_file_system": "Retain"}),
    })
    policy = iam.inline_policy("notebooks", role, statements(t, ctx, domain.attr("id"), key_arn))
    ctx.stack.add(role, domain, policy)
    for user in users:
        ctx.stack.add(Resource("aws_sagemaker_user_profile", user.name.replace("-", "_"), {
            "domain_id": domain.attr("id"),
            "user_profile_name": user.name,
        }, depends_on=(policy,)))
    ctx.stack.add(
        Output("notebooks_domain_id", domain.attr("id"), description="The Studio domain"),
        Output("notebooks_home_efs_id", domain.attr("home_efs_file_system_id"),
               description="The users' home EFS volume, which a destroy retains (delete it by hand)"),
    )


def _security_group(ctx: StackContext, t: TrainingInfrastructure) -> Resource:
    """Studio's apps: HTTPS to the endpoints and S3, and app-to-app traffic inside the group."""
    data = t.data
    endpoints = ctx.upstream_output(data, "endpoints_security_group_id")
    group = Resource("aws_security_group", "notebooks", {
        "name": f"{ctx.name}-notebooks",
        "description": "SageMaker Studio apps of this platform: the VPC endpoints only",
        "vpc_id": ctx.upstream_output(data, "vpc_id"),
        "revoke_rules_on_delete": True,
    }, skips=(CheckovSkip("CKV2_AWS_5", "attached to the Studio domain's apps through its default user "
                                        "and space settings' security_groups, which the check does not follow"),))
    low, high = APP_PORTS
    ctx.stack.add(
        group,
        Resource("aws_vpc_security_group_egress_rule", "notebooks_endpoints", {
            "security_group_id": group.attr("id"), "description": "HTTPS to the interface VPC endpoints",
            "ip_protocol": "tcp", "from_port": 443, "to_port": 443, "referenced_security_group_id": endpoints,
        }),
        Resource("aws_vpc_security_group_egress_rule", "notebooks_s3", {
            "security_group_id": group.attr("id"), "description": "HTTPS to S3 through the gateway endpoint",
            "ip_protocol": "tcp", "from_port": 443, "to_port": 443,
            "prefix_list_id": ctx.upstream_output(data, "s3_prefix_list_id"),
        }),
        Resource("aws_vpc_security_group_ingress_rule", "notebooks_apps", {
            "security_group_id": group.attr("id"), "description": "Studio apps to each other",
            "ip_protocol": "tcp", "from_port": low, "to_port": high, "referenced_security_group_id": group.attr("id"),
        }),
        Resource("aws_vpc_security_group_egress_rule", "notebooks_apps", {
            "security_group_id": group.attr("id"), "description": "Studio apps to each other",
            "ip_protocol": "tcp", "from_port": low, "to_port": high, "referenced_security_group_id": group.attr("id"),
        }),
        # The endpoints' group (data stack) admits only the groups named in its ingress rules.
        Resource("aws_vpc_security_group_ingress_rule", "endpoints_from_notebooks", {
            "security_group_id": endpoints, "description": "HTTPS from SageMaker Studio apps",
            "ip_protocol": "tcp", "from_port": 443, "to_port": 443, "referenced_security_group_id": group.attr("id"),
        }),
    )
    return group


def statements(t: TrainingInfrastructure, ctx: StackContext, domain_id: Expr, key_arn: Expr) -> list[dict[str, Any]]:
    """The notebook users' role: read data, the tracking server, Studio's own apps in this domain."""
    buckets = ctx.upstream_output(t.data, "bucket_arns")
    zones = [z for z in t.data.zones if z in READ_ZONES] or list(t.data.zones)
    out = [
        iam.statement("ListReadableZones", ["s3:ListBucket", "s3:GetBucketLocation"], [buckets[z] for z in zones]),
        iam.statement("ReadZones", ["s3:GetObject"], [interp("", buckets[z], "/*") for z in zones]),
        iam.statement("DecryptZones", ["kms:Decrypt", "kms:DescribeKey"], [key_arn]),
        # Studio's UI and apps act as this role: its spaces and apps, in this domain only.
        iam.statement("StudioAppsInThisDomain", [
            "sagemaker:CreateApp", "sagemaker:DeleteApp", "sagemaker:DescribeApp",
            "sagemaker:CreateSpace", "sagemaker:UpdateSpace", "sagemaker:DeleteSpace", "sagemaker:DescribeSpace",
            "sagemaker:DescribeUserProfile", "sagemaker:DescribeDomain", "sagemaker:AddTags", "sagemaker:ListTags",
        ], [
            interp(iam.arn(ctx, "sagemaker", "domain/"), domain_id),
            interp(iam.arn(ctx, "sagemaker", "user-profile/"), domain_id, "/*"),
            interp(iam.arn(ctx, "sagemaker", "space/"), domain_id, "/*"),
            interp(iam.arn(ctx, "sagemaker", "app/"), domain_id, "/*"),
        ]),
        # List* calls name no resource (Service Authorization Reference: no resource type).
        iam.statement("StudioListings", ["sagemaker:ListApps", "sagemaker:ListSpaces", "sagemaker:ListUserProfiles",
                                         "sagemaker:ListDomains"], "*"),
        iam.statement("StudioLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                      [iam.arn(ctx, "logs", "log-group:/aws/sagemaker/studio*")]),
    ]
    if tracking.opted_in(ctx):
        out.append(tracking.log_statement(tracking.server_arn(ctx)))
    return out
