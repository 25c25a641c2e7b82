"""ModelServing(api=Api(...)) on AWS: an API Gateway REST API that calls SageMaker's InvokeEndpoint itself.

No code of ours sits between the client and the endpoint: `POST /invocations` is an AWS service
integration (type AWS) to the SageMaker runtime's InvokeEndpoint of this stack's endpoint, signed
with a role that may only `sagemaker:InvokeEndpoint` that endpoint (the path form is aws-cdk-lib's
`SagemakerIntegration`: `arn:<partition>:apigateway:<region>:runtime.sagemaker:path/endpoints/<name>/invocations`).
The body passes through untouched (no mapping templates), with Content-Type, Accept and
X-Amzn-SageMaker-Target-Variant mapped to the call and the answer's Content-Type and invoked
variant mapped back.

- Authorisation: AWS_IAM (SigV4, `execute-api:Invoke`), and the resource policy admits only this
  account's principals (and, for a private API, only through this VPC's execute-api endpoint).
  `Api(require_api_key=True)` adds the usage plan's API key.
- Throttling: stage-wide method settings (rate and burst, every caller); with `require_api_key`, a
  usage plan on the stage too (its limits and daily quota count per API key, so without keys there
  is none).
- Logs: access logs to a KMS-encrypted log group; execution logs at ERROR without bodies
  (data trace off), to their log group created here, encrypted, before API Gateway would create it
  unencrypted; X-Ray tracing on. Both need the account's API Gateway CloudWatch role, an
  account-and-region setting this stack sets when the DataInfrastructure manages account settings.
- `access: private` (the default): a PRIVATE endpoint type and an execute-api interface endpoint in
  the platform's VPC, reachable on 443 from the VPC's CIDR; `public`: a REGIONAL endpoint.
- WAF: an existing regional web ACL is associated when `waf_web_acl_arn` is given.
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.serving import ModelServing
from ..templates.serving_api import Api
from ..terraform import Block, Call, CheckovSkip, Lifecycle, Output, Resource, interp, jsonencode
from . import iam
from .provider import partition

STAGE = "v1"
# API Gateway's integration timeout for REST APIs: 50 ms to 29 s ("Amazon API Gateway quotas").
INTEGRATION_TIMEOUT_MS = 29000
# Passed to InvokeEndpoint and back (InvokeEndpoint's request and response headers, botocore model).
REQUEST_HEADERS = {"Content-Type": "Content-Type", "Accept": "Accept",
                   "X-Amzn-SageMaker-Target-Variant": "X-Amzn-SageMaker-Target-Variant"}
RESPONSE_HEADERS = ("Content-Type", "X-Amzn-Invoked-Production-Variant")
# For AWS integrations the selection pattern matches the backend's HTTP status ("Set up an
# integration response"); the body, SageMaker's error naming the model's status, passes through.
RESPONSES = (("200", None), ("400", r"4\d{2}"), ("500", r"5\d{2}"))
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn", "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod", "resourcePath": "$context.resourcePath", "status": "$context.status",
    "protocol": "$context.protocol", "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency", "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency", "apiKeyId": "$context.identity.apiKeyId",
}
CACHE_SKIP = CheckovSkip(
    "CKV_AWS_120", "POST /invocations answers a body: API Gateway's cache keys are paths, query strings "
                   "and headers, never the body, so a cache would answer one request's prediction to another")
CACHE_SETTING_SKIP = CheckovSkip("CKV_AWS_225", CACHE_SKIP.reason)
CLIENT_CERT_SKIP = CheckovSkip(
    "CKV2_AWS_51", "the backend is SageMaker's API, called signed with the integration role over HTTPS; a "
                   "client certificate authenticates API Gateway to HTTP backends only")
WAF_SKIP = CheckovSkip(
    "CKV2_AWS_29", "WAF is opt-in (Api(waf_web_acl_arn=...)); every request is already SigV4-authenticated "
                   "and throttled")


def render_api(t: ModelServing, ctx: StackContext, endpoint: Resource) -> None:
    """The REST API in front of the endpoint, when the template asks for one."""
    api = t.api
    if api is None:
        return
    aws = ctx.namespace.aws
    assert aws is not None
    data = t.training.data
    key_arn = ctx.upstream_output(data, "kms_key_arn")
    name = f"{ctx.name}-{t.name}"
    private = api.access == "private"
    vpc_endpoint = _execute_api_endpoint(t, ctx, name) if private else None

    rest = Resource("aws_api_gateway_rest_api", "inference", {
        "name": name,
        "description": f"Inference API of {t.name} ({ctx.platform}, {ctx.namespace.name}): POST /{STAGE}/invocations",
        "endpoint_configuration": Block({
            "types": ["PRIVATE" if private else "REGIONAL"],
            "vpc_endpoint_ids": [vpc_endpoint.attr("id")] if vpc_endpoint else None,
        }),
    }, lifecycle=Lifecycle(create_before_destroy=True))  # a replaced API answers until its successor does
    # Headers are checked before the call: a request without Content-Type is refused (400) by API
    # Gateway itself, as InvokeEndpoint's body means nothing without it; bodies pass through unchecked.
    validator = Resource("aws_api_gateway_request_validator", "headers", {
        "rest_api_id": rest.attr("id"), "name": "headers", "validate_request_parameters": True,
        "validate_request_body": False})
    invocations = Resource("aws_api_gateway_resource", "invocations", {
        "rest_api_id": rest.attr("id"), "parent_id": rest.attr("root_resource_id"), "path_part": "invocations"})
    method = Resource("aws_api_gateway_method", "invocations", {
        "rest_api_id": rest.attr("id"), "resource_id": invocations.attr("id"), "http_method": "POST",
        "authorization": "AWS_IAM",
        "api_key_required": api.require_api_key,
        "request_parameters": {f"method.request.header.{h}": h == "Content-Type" for h in REQUEST_HEADERS},
        "request_validator_id": validator.attr("id"),
    })
    role = _api_gateway_role(ctx, "inference_api", f"{t.name}-api")
    policy = iam.inline_policy("inference_api", role, [
        iam.statement("InvokeThisEndpoint", ["sagemaker:InvokeEndpoint"], [endpoint.attr("arn")]),
    ])
    integration = Resource("aws_api_gateway_integration", "invocations", {
        "rest_api_id": rest.attr("id"), "resource_id": invocations.attr("id"),
        "http_method": method.attr("http_method"),
        "type": "AWS",
        "integration_http_method": "POST",
        "uri": interp(f"arn:{partition(aws.region)}:apigateway:{aws.region}:runtime.sagemaker:path/endpoints/",
                      endpoint.attr("name"), "/invocations"),
        "credentials": role.attr("arn"),
        "passthrough_behavior": "WHEN_NO_TEMPLATES",  # no templates: every body passes through as sent
        "request_parameters": {f"integration.request.header.{to}": f"method.request.header.{source}"
                               for source, to in REQUEST_HEADERS.items()},
        "timeout_milliseconds": INTEGRATION_TIMEOUT_MS,
    }, depends_on=(policy,))
    ctx.stack.add(rest, validator, invocations, method, role, policy, integration)
    answers = []
    for status, pattern in RESPONSES:
        method_response = Resource("aws_api_gateway_method_response", f"invocations_{status}", {
            "rest_api_id": rest.attr("id"), "resource_id": invocations.attr("id"),
            "http_method": method.attr("http_method"), "status_code": status,
            "response_parameters": {f"method.response.header.{h}": False for h in RESPONSE_HEADERS},
        })
        answer = Resource("aws_api_gateway_integration_response", f"invocations_{status}", {
            "rest_api_id": rest.attr("id"), "resource_id": invocations.attr("id"),
            "http_method": method.attr("http_method"), "status_code": method_response.attr("status_code"),
            "selection_pattern": pattern,
            "response_parameters": {f"method.response.header.{h}": f"integration.response.header.{h}"
                                    for h in RESPONSE_HEADERS},
        }, depends_on=(integration,))
        ctx.stack.add(method_response, answer)
        answers.append(answer)

    statements: list[dict[str, Any]] = [{
        "Sid": "ThisAccountsPrincipals", "Effect": "Allow", "Principal": {"AWS": iam.account_root(ctx, aws.account_id)},
        "Action": "execute-api:Invoke", "Resource": interp("", rest.attr("execution_arn"), "/*"),
    }]
    if vpc_endpoint is not None:
        statements.append({
            "Sid": "OnlyThroughThePlatformsVpcEndpoint", "Effect": "Deny", "Principal": "*",
            "Action": "execute-api:Invoke", "Resource": interp("", rest.attr("execution_arn"), "/*"),
            "Condition": {"StringNotEquals": {"aws:SourceVpce": vpc_endpoint.attr("id")}},
        })
    resource_policy = Resource("aws_api_gateway_rest_api_policy", "inference", {
        "rest_api_id": rest.attr("id"), "policy": jsonencode({"Version": "2012-10-17", "Statement": statements})})
    # A deployment is a snapshot: a new one whenever what it snapshots changes (the provider's
    # documented `triggers` pattern), created before the old one is destroyed.
    deployment = Resource("aws_api_gateway_deployment", "inference", {
        "rest_api_id": rest.attr("id"),
        "triggers": {"redeployment": Call("sha1", (jsonencode([
            invocations.attr("id"), method.attr("id"), integration.attr("id"), integration.attr("uri"),
            resource_policy.attr("policy"), *[a.attr("id") for a in answers]]),))},
    }, depends_on=(method, integration, *answers, resource_policy), lifecycle=Lifecycle(create_before_destroy=True))
    ctx.stack.add(resource_policy, deployment)

    after = _logging(t, ctx, api, name, key_arn)
    access_logs = after[0]
    execution_logs = Resource("aws_cloudwatch_log_group", "api_execution", {
        # API Gateway's own name for a stage's execution logs ("Set up CloudWatch logging for REST APIs").
        "name": interp("API-Gateway-Execution-Logs_", rest.attr("id"), f"/{STAGE}"),
        "retention_in_days": api.log_retention_days,
        "kms_key_id": key_arn,
    })
    ctx.stack.add(execution_logs)
    stage = Resource("aws_api_gateway_stage", "inference", {
        "rest_api_id": rest.attr("id"),
        "deployment_id": deployment.attr("id"),
        "stage_name": STAGE,
        "xray_tracing_enabled": True,
        "cache_cluster_enabled": False,
        "access_log_settings": Block({"destination_arn": access_logs.attr("arn"),
                                      "format": jsonencode(ACCESS_LOG_FORMAT)}),
    }, depends_on=(*after, execution_logs), skips=(CACHE_SKIP, CLIENT_CERT_SKIP) + (
        () if api.waf_web_acl_arn else (WAF_SKIP,)))
    settings = Resource("aws_api_gateway_method_settings", "all", {
        "rest_api_id": rest.attr("id"), "stage_name": stage.attr("stage_name"), "method_path": "*/*",
        "settings": Block({
            "metrics_enabled": True,
            "logging_level": "ERROR",
            "data_trace_enabled": False,  # request and response bodies stay out of the logs
            "throttling_rate_limit": api.rate_limit,
            "throttling_burst_limit": api.burst_limit,
            "caching_enabled": False,
            "cache_data_encrypted": True,
        }),
    }, skips=(CACHE_SETTING_SKIP,))
    ctx.stack.add(stage, settings)
    plan = None
    if api.require_api_key:
        # A usage plan's limits count per API key ("Usage plans and API keys"): without keys it would
        # limit nothing, and the stage's method settings above already throttle every caller.
        plan = Resource("aws_api_gateway_usage_plan", "inference", {
            "name": name,
            "description": f"Throttling{' and quota' if api.daily_quota else ''} per API key of {name}",
            "api_stages": Block({"api_id": rest.attr("id"), "stage": stage.attr("stage_name")}),
            "throttle_settings": Block({"rate_limit": api.rate_limit, "burst_limit": api.burst_limit}),
            "quota_settings": Block({"limit": api.daily_quota, "period": "DAY"}) if api.daily_quota else None,
        })
        ctx.stack.add(plan)
    if api.waf_web_acl_arn:
        ctx.stack.add(Resource("aws_wafv2_web_acl_association", "inference", {
            "resource_arn": stage.attr("arn"), "web_acl_arn": api.waf_web_acl_arn}))
    ctx.stack.add(
        Output("api_invoke_url", interp("", stage.attr("invoke_url"), "/invocations"),
               description="POST here, signed with SigV4 for execute-api (README: An inference API)"),
        Output("api_id", rest.attr("id"), description="The inference REST API"),
    )
    if plan is not None:
        ctx.stack.add(Output("api_usage_plan_id", plan.attr("id"), description="Usage plan that API keys are added to"))


def _logging(t: ModelServing, ctx: StackContext, api: Api, name: str, key_arn: Any) -> tuple[Resource, ...]:
    """The access log group, and the account's CloudWatch role for API Gateway when this platform sets it."""
    access_logs = Resource("aws_cloudwatch_log_group", "api_access", {
        "name": f"/aws/apigateway/mlops/{ctx.platform}/{ctx.namespace.name}/{t.name}",
        "retention_in_days": api.log_retention_days,
        "kms_key_id": key_arn,
    })
    ctx.stack.add(access_logs)
    if not t.training.data.manage_account_settings:
        return (access_logs,)
    role = _api_gateway_role(ctx, "api_gateway_logs", "apigateway-logs")
    # What AWS's AmazonAPIGatewayPushToCloudWatchLogs allows, on the groups API Gateway writes for the
    # platforms of this account: execution logs (its own names) and the platforms' access logs.
    groups = [iam.arn(ctx, "logs", "log-group:API-Gateway-Execution-Logs_*"),
              iam.arn(ctx, "logs", "log-group:/aws/apigateway/mlops/*")]
    policy = iam.inline_policy("api_gateway_logs", role, [
        iam.statement("WriteApiLogs", ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
                                       "logs:GetLogEvents", "logs:FilterLogEvents"],
                      [*groups, *[g + ":*" for g in groups]]),
        iam.statement("FindLogGroups", ["logs:DescribeLogGroups"], [iam.arn(ctx, "logs", "log-group:*")]),
    ])
    account = Resource("aws_api_gateway_account", "main", {
        # No reset_on_delete: deprecated in 5.x and gone from 6.x; a destroy leaves the account's
        # setting naming the deleted role until another stack sets it.
        "cloudwatch_role_arn": role.attr("arn"),
    }, depends_on=(policy,))
    ctx.stack.add(role, policy, account)
    return access_logs, account


def _api_gateway_role(ctx: StackContext, resource_name: str, purpose: str) -> Resource:
    """A role API Gateway assumes. Its trust has no aws:SourceAccount condition (iam.role's): API
    Gateway's guides trust the service principal alone and do not say that it sends the key, so the
    condition could refuse every request. Another account cannot use the role anyway: naming it as an
    integration's credentials or the account's CloudWatch role takes iam:PassRole on it, which only
    this account's principals can be granted."""
    role = iam.role(ctx, resource_name, purpose, "apigateway.amazonaws.com")
    role.body["assume_role_policy"] = jsonencode({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    return role


def _execute_api_endpoint(t: ModelServing, ctx: StackContext, name: str) -> Resource:
    """The platform VPC's interface endpoint for execute-api, open on 443 to the VPC's own addresses."""
    aws = ctx.namespace.aws
    assert aws is not None
    data = t.training.data
    group = Resource("aws_security_group", "execute_api", {
        "name": f"{name}-execute-api",
        "description": "The execute-api VPC endpoint of the private inference API",
        "vpc_id": ctx.upstream_output(data, "vpc_id"),
        "revoke_rules_on_delete": True,
    })
    ingress = Resource("aws_vpc_security_group_ingress_rule", "execute_api_https", {
        "security_group_id": group.attr("id"),
        "description": "HTTPS from applications in the platform's VPC",
        "ip_protocol": "tcp", "from_port": 443, "to_port": 443,
        "cidr_ipv4": data.vpc_cidr,
    })
    endpoint = Resource("aws_vpc_endpoint", "execute_api", {
        "vpc_id": ctx.upstream_output(data, "vpc_id"),
        "service_name": f"com.amazonaws.{aws.region}.execute-api",
        "vpc_endpoint_type": "Interface",
        "private_dns_enabled": True,  # https://<api-id>.execute-api.<region>.amazonaws.com resolves to it
        "subnet_ids": ctx.upstream_output(data, "private_subnet_ids"),
        "security_group_ids": [group.attr("id")],
        "tags": {"Name": f"{name}-execute-api"},
    })
    ctx.stack.add(group, ingress, endpoint)
    return endpoint


__all__ = ["render_api"]
