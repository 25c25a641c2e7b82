"""A Step Functions state machine as this project deploys one: standard type, its definition as
jsonencode() of plain data, every execution's history logged to a KMS-encrypted log group and
traced with X-Ray (checkov CKV_AWS_284, CKV_AWS_285), its own role, and an alarm on failures."""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..terraform import Block, Resource, Value, interp, jsonencode
from . import iam

# Log delivery and X-Ray act on no resource that IAM can name: AWS documents these with "*"
# ("Logging Step Functions executions in CloudWatch Logs", IAM policies for logging; "X-Ray").
LOG_DELIVERY = ["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups"]
TRACING = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]


def log_group(ctx: StackContext, key_arn: Value, retention_days: int) -> Resource:
    """One log group for the stack's state machines; /aws/vendedlogs/ keeps the resource policy
    that log delivery writes small (AWS's advice for vended logs)."""
    group = Resource("aws_cloudwatch_log_group", "state_machines", {
        "name": f"/aws/vendedlogs/states/{ctx.name}-serving",
        "retention_in_days": retention_days,
        "kms_key_id": key_arn,
    })
    ctx.stack.add(group)
    return group


def observability_statements() -> list[dict[str, Any]]:
    return [iam.statement("LogDelivery", LOG_DELIVERY, "*"), iam.statement("Tracing", TRACING, "*")]


def state_machine(ctx: StackContext, resource_name: str, name: str, definition: dict[str, Any], role: Resource,
                  policy: Resource, logs: Resource) -> Resource:
    """The state machine, created after its role's policy (Step Functions checks the role's log
    delivery permissions when the logging configuration is set)."""
    machine = Resource("aws_sfn_state_machine", resource_name, {
        "name": name,
        "type": "STANDARD",
        "role_arn": role.attr("arn"),
        "definition": jsonencode(definition),
        "logging_configuration": Block({
            "log_destination": interp("", logs.attr("arn"), ":*"),
            "include_execution_data": True,
            "level": "ALL",
        }),
        "tracing_configuration": Block({"enabled": True}),
    }, depends_on=(policy,))
    ctx.stack.add(machine)
    return machine


def failed_executions_alarm(ctx: StackContext, machine: Resource, what: str, topic: Resource) -> Resource:
    """Any failed, timed-out or aborted execution in five minutes, to the topic."""
    arn = {"StateMachineArn": machine.attr("arn")}
    alarm = Resource("aws_cloudwatch_metric_alarm", f"{machine.name}_failed", {
        "alarm_name": f"{machine.body['name']}-failed",
        "alarm_description": f"An execution of {what} failed, timed out or was aborted",
        "comparison_operator": "GreaterThanThreshold",
        "threshold": 0,
        "evaluation_periods": 1,
        "treat_missing_data": "notBreaching",
        "metric_query": [
            Block({"id": "failed", "expression": "failed_ + timed_out + aborted", "label": "Unsuccessful executions",
                   "return_data": True}),
            *[Block({"id": qid, "metric": Block({"namespace": "AWS/States", "metric_name": metric,
                                                 "dimensions": arn, "period": 300, "stat": "Sum"})})
              for qid, metric in (("failed_", "ExecutionsFailed"), ("timed_out", "ExecutionsTimedOut"),
                                  ("aborted", "ExecutionsAborted"))],
        ],
        "alarm_actions": [topic.attr("arn")],
        "ok_actions": [topic.attr("arn")],
        "actions_enabled": True,
    })
    ctx.stack.add(alarm)
    return alarm
