"""The platform's private network: no internet path in or out; AWS services through VPC endpoints.

Subnets are private only, in at least two availability zones. SageMaker jobs, models and monitors
run in the `sagemaker` security group, which may reach only the endpoints' security group (443),
the S3 gateway endpoint and itself (distributed training). Flow logs go to an encrypted log group.
"""

from __future__ import annotations

import ipaddress

from ..context import StackContext
from ..templates.base import Template
from ..templates.data import DataInfrastructure
from ..terraform import Block, CheckovSkip, Output, Resource, interp
from . import iam
from .tracking import tracking_endpoint

INTERFACE_ENDPOINTS = (
    "sagemaker.api", "sagemaker.runtime", "sagemaker.featurestore-runtime",
    "ecr.api", "ecr.dkr", "sts", "logs", "monitoring", "kms",
)


def _service(region: str, name: str) -> str:
    return f"com.amazonaws.{region}.{name}"


def render_network(t: DataInfrastructure, ctx: StackContext, key: Resource) -> None:
    aws = ctx.namespace.aws
    assert aws is not None
    network = ipaddress.ip_network(t.vpc_cidr)
    subnets = list(network.subnets(new_prefix=min(network.prefixlen + 4, 28)))[: t.availability_zones]

    # Literal zone names, not a data source: the set is visible in review and cannot silently change.
    zones = [f"{aws.region}{letter}" for letter in "abcdef"[: t.availability_zones]]
    vpc = Resource("aws_vpc", "main", {
        "cidr_block": t.vpc_cidr,
        # Private DNS names of interface endpoints need both.
        "enable_dns_support": True,
        "enable_dns_hostnames": True,
        "tags": {"Name": ctx.name},
    })
    ctx.stack.add(vpc)
    private = []
    for i, cidr in enumerate(subnets):
        subnet = Resource("aws_subnet", f"private_{i}", {
            "vpc_id": vpc.attr("id"),
            "cidr_block": str(cidr),
            "availability_zone": zones[i],
            "map_public_ip_on_launch": False,
            "tags": {"Name": f"{ctx.name}-private-{i}"},
        })
        private.append(subnet)
    routes = Resource("aws_route_table", "private", {"vpc_id": vpc.attr("id"),
                                                     "tags": {"Name": f"{ctx.name}-private"}})
    ctx.stack.add(*private, routes)
    ctx.stack.add(*[
        Resource("aws_route_table_association", f"private_{i}", {
            "subnet_id": s.attr("id"), "route_table_id": routes.attr("id")})
        for i, s in enumerate(private)
    ])
    # The default security group allows all traffic between its members; strip every rule.
    ctx.stack.add(Resource("aws_default_security_group", "default", {"vpc_id": vpc.attr("id")}))

    sagemaker_sg = Resource("aws_security_group", "sagemaker", {
        "name": f"{ctx.name}-sagemaker",
        "description": "SageMaker training, processing, models and monitors of this platform",
        "vpc_id": vpc.attr("id"),
        "revoke_rules_on_delete": True,
    }, skips=(CheckovSkip("CKV2_AWS_5", "attached by SageMaker jobs, models and monitors declared in the "
                                        "training and serving stacks, which read its id from remote state"),))
    endpoint_sg = Resource("aws_security_group", "endpoints", {
        "name": f"{ctx.name}-endpoints",
        "description": "Interface VPC endpoints, reachable from the SageMaker group only",
        "vpc_id": vpc.attr("id"),
        "revoke_rules_on_delete": True,
    })
    s3 = Resource("aws_vpc_endpoint", "s3", {
        "vpc_id": vpc.attr("id"),
        "service_name": _service(aws.region, "s3"),
        "vpc_endpoint_type": "Gateway",
        "route_table_ids": [routes.attr("id")],
        "tags": {"Name": f"{ctx.name}-s3"},
    })
    ctx.stack.add(sagemaker_sg, endpoint_sg, s3)
    ctx.stack.add(
        Resource("aws_vpc_security_group_ingress_rule", "endpoints_https", {
            "security_group_id": endpoint_sg.attr("id"),
            "description": "HTTPS from SageMaker workloads",
            "ip_protocol": "tcp", "from_port": 443, "to_port": 443,
            "referenced_security_group_id": sagemaker_sg.attr("id"),
        }),
        Resource("aws_vpc_security_group_ingress_rule", "sagemaker_self", {
            "security_group_id": sagemaker_sg.attr("id"),
            "description": "Traffic between instances of one distributed training job",
            "ip_protocol": "-1",
            "referenced_security_group_id": sagemaker_sg.attr("id"),
        }),
        Resource("aws_vpc_security_group_egress_rule", "sagemaker_self", {
            "security_group_id": sagemaker_sg.attr("id"),
            "description": "Traffic between instances of one distributed training job",
            "ip_protocol": "-1",
            "referenced_security_group_id": sagemaker_sg.attr("id"),
        }),
        Resource("aws_vpc_security_group_egress_rule", "sagemaker_endpoints", {
            "security_group_id": sagemaker_sg.attr("id"),
            "description": "HTTPS to the interface VPC endpoints",
            "ip_protocol": "tcp", "from_port": 443, "to_port": 443,
            "referenced_security_group_id": endpoint_sg.attr("id"),
        }),
        Resource("aws_vpc_security_group_egress_rule", "sagemaker_s3", {
            "security_group_id": sagemaker_sg.attr("id"),
            "description": "HTTPS to S3 through the gateway endpoint",
            "ip_protocol": "tcp", "from_port": 443, "to_port": 443,
            "prefix_list_id": s3.attr("prefix_list_id"),
        }),
    )
    for service in INTERFACE_ENDPOINTS:
        ctx.stack.add(Resource("aws_vpc_endpoint", service.replace(".", "_").replace("-", "_"), {
            "vpc_id": vpc.attr("id"),
            "service_name": _service(aws.region, service),
            "vpc_endpoint_type": "Interface",
            "private_dns_enabled": True,
            "subnet_ids": [s.attr("id") for s in private],
            "security_group_ids": [endpoint_sg.attr("id")],
            "tags": {"Name": f"{ctx.name}-{service}"},
        }))
    ctx.stack.add(*tracking_endpoint(ctx, vpc, private, endpoint_sg))  # only where tracking is opted in

    flow_group = Resource("aws_cloudwatch_log_group", "flow_logs", {
        "name": f"/mlops/{ctx.platform}/{ctx.namespace.name}/vpc-flow-logs",
        "retention_in_days": t.log_retention_days,
        "kms_key_id": key.attr("arn"),
    })
    flow_role = iam.role(ctx, "flow_logs", "vpc-flow-logs", "vpc-flow-logs.amazonaws.com")
    ctx.stack.add(flow_group, flow_role, iam.inline_policy("flow_logs", flow_role, [
        iam.statement("WriteFlowLogs", ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                      [flow_group.attr("arn"), interp("", flow_group.attr("arn"), ":*")]),
    ]))
    ctx.stack.add(Resource("aws_flow_log", "main", {
        "vpc_id": vpc.attr("id"),
        "traffic_type": "ALL",
        "log_destination_type": "cloud-watch-logs",
        "log_destination": flow_group.attr("arn"),
        "iam_role_arn": flow_role.attr("arn"),
        "max_aggregation_interval": 60,
    }))

    ctx.stack.add(
        Output("vpc_id", vpc.attr("id"), description="The platform's VPC"),
        Output("private_subnet_ids", [s.attr("id") for s in private],
               description="Private subnets, one per availability zone"),
        Output("sagemaker_security_group_id", sagemaker_sg.attr("id"),
               description="Security group for SageMaker jobs, models and monitors"),
        # Studio's own security group reaches the endpoints and S3 (aws/notebooks.py).
        Output("endpoints_security_group_id", endpoint_sg.attr("id"), description="The interface endpoints' group"),
        Output("s3_prefix_list_id", s3.attr("prefix_list_id"), description="The S3 gateway endpoint's prefix list"),
    )


def sagemaker_vpc_config(ctx: StackContext, data: Template) -> Block:
    """`vpc_config` for a SageMaker model or monitor in a downstream stack."""
    return Block({
        "security_group_ids": [ctx.upstream_output(data, "sagemaker_security_group_id")],
        "subnets": ctx.upstream_output(data, "private_subnet_ids"),
    })
