"""IAM roles and least-privilege inline policies, built as plain statement dicts."""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..terraform import Resource, Value, jsonencode
from .provider import partition


def statement(sid: str, actions: list[str], resources: Value, condition: dict[str, Any] | None = None,
              effect: str = "Allow") -> dict[str, Any]:
    out: dict[str, Any] = {"Sid": sid, "Effect": effect, "Action": actions, "Resource": resources}
    if condition:
        out["Condition"] = condition
    return out


def role(ctx: StackContext, resource_name: str, purpose: str, service: str) -> Resource:
    """A role only `service` may assume, and only on behalf of this account (confused-deputy guard)."""
    aws = ctx.namespace.aws
    assert aws is not None
    name = f"{ctx.name}-{purpose}"
    if len(name) > 64:
        raise ctx.error("name", f"the IAM role name {name!r} is {len(name)} characters; IAM allows 64")
    return Resource("aws_iam_role", resource_name, {
        "name": name,
        "description": f"{purpose} for {ctx.platform} in {ctx.namespace.name}",
        "assume_role_policy": jsonencode({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": aws.account_id}},
            }],
        }),
    })


def inline_policy(resource_name: str, role_resource: Resource, statements: list[dict[str, Any]]) -> Resource:
    return Resource("aws_iam_role_policy", resource_name, {
        "name": resource_name.replace("_", "-"),
        "role": role_resource.attr("id"),
        "policy": jsonencode({"Version": "2012-10-17", "Statement": statements}),
    })


def arn(ctx: StackContext, service: str, resource: str, region: bool = True) -> str:
    """`arn:<partition>:<service>:<region>:<account>:<resource>` for this namespace."""
    aws = ctx.namespace.aws
    assert aws is not None
    return f"arn:{partition(aws.region)}:{service}:{aws.region if region else ''}:{aws.account_id}:{resource}"


def account_root(ctx: StackContext, account_id: str) -> str:
    """The principal that stands for a whole account in a resource policy."""
    aws = ctx.namespace.aws
    assert aws is not None
    return f"arn:{partition(aws.region)}:iam::{account_id}:root"
