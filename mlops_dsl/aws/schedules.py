"""An EventBridge Scheduler schedule that starts one target, as every schedule of the platform is made.

Each schedule has its own group (its metrics and alarms are its own), its own role that may start
only its target, retries, a KMS-encrypted dead-letter queue for what it could not deliver, and
alarms on dropped invocations, target errors and the queue, to the topic given: a schedule that
silently never starts its target is the failure this guards against. The training pipeline's weekly
run (training.py) and the drift jobs (serving_drift.py) are both made here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..context import StackContext
from ..terraform import Block, Resource, Value
from . import iam


@dataclass(frozen=True)
class Schedule:
    """What differs between the schedules: names, the expression, and what they start."""

    prefix: str  # of the queue's and the alarms' Terraform addresses: "" or e.g. "drift_"
    title: str  # the group's and the schedule's address, and their AWS names: <platform>-<namespace>-<title>
    role: str  # the scheduler role's address
    role_name: str  # its name: <platform>-<namespace>-<role_name>
    description: str
    expression: str
    target_arn: Value
    start: dict[str, Any]  # the IAM statement that lets the role start the target
    what: str  # for the alarms: "the pipeline", "the drift jobs"
    target_input: str | None = None


def render_schedule(ctx: StackContext, s: Schedule, key_arn: Value, topic: Resource) -> Resource:
    group = Resource("aws_scheduler_schedule_group", s.title, {"name": f"{ctx.name}-{s.title}"})
    queue = Resource("aws_sqs_queue", f"{s.prefix}schedule_dead_letters", {
        "name": f"{ctx.name}-{s.title}-schedule-dlq",
        "kms_master_key_id": key_arn,
        "message_retention_seconds": 1209600,  # the maximum, 14 days: time to notice and replay
    })
    scheduler = iam.role(ctx, s.role, s.role_name, "scheduler.amazonaws.com")
    ctx.stack.add(group, queue, scheduler, iam.inline_policy(s.role, scheduler, [
        s.start,
        iam.statement("DeadLetters", ["sqs:SendMessage"], [queue.attr("arn")]),
        # The schedule is encrypted with the platform's key (kms_key_arn), and so is the queue.
        iam.statement("PlatformKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
    ]))
    target: dict[str, Value] = {"arn": s.target_arn, "role_arn": scheduler.attr("arn")}
    if s.target_input is not None:
        target["input"] = s.target_input
    target |= {
        "retry_policy": Block({"maximum_retry_attempts": 2, "maximum_event_age_in_seconds": 3600}),
        "dead_letter_config": Block({"arn": queue.attr("arn")}),
    }
    schedule = Resource("aws_scheduler_schedule", s.title, {
        "name": f"{ctx.name}-{s.title}",
        "group_name": group.attr("name"),
        "description": s.description,
        "schedule_expression": s.expression,
        "schedule_expression_timezone": "UTC",
        "kms_key_arn": key_arn,
        "flexible_time_window": Block({"mode": "OFF"}),
        "target": Block(target),
    })
    ctx.stack.add(schedule)
    schedule_alarms(ctx, s.prefix, f"{ctx.name}-{s.title}", s.what, group, queue, topic)
    return schedule


def schedule_alarms(ctx: StackContext, prefix: str, name: str, what: str, group: Resource, queue: Resource,
                    topic: Resource) -> list[Resource]:
    """Alarms on a schedule group and its dead-letter queue: dropped invocations (retries exhausted),
    target errors (permissions, key, throttling) and undelivered invocations waiting in the queue.
    `prefix` starts their addresses, `name` their names, `what` says what the schedule starts."""
    notify = {"alarm_actions": [topic.attr("arn")], "ok_actions": [topic.attr("arn")], "actions_enabled": True,
              "comparison_operator": "GreaterThanThreshold", "threshold": 0, "evaluation_periods": 1,
              "period": 300, "statistic": "Sum", "treat_missing_data": "notBreaching"}
    alarms = [Resource("aws_cloudwatch_metric_alarm", f"{prefix}{metric_id}", {
        "alarm_name": f"{name}-{metric_id.replace('_', '-')}",
        "alarm_description": f"EventBridge Scheduler: {description.format(what=what)}",
        "namespace": "AWS/Scheduler", "metric_name": metric,
        "dimensions": {"ScheduleGroup": group.attr("name")}, **notify})
        for metric_id, metric, description in (
            ("schedule_dropped", "InvocationDroppedCount", "the schedule gave up starting {what} (retries exhausted)"),
            ("schedule_target_errors", "TargetErrorCount", "starting {what} failed (permissions, key, throttling)"))]
    alarms.append(Resource("aws_cloudwatch_metric_alarm", f"{prefix}schedule_dead_letters", {
        "alarm_name": f"{name}-schedule-dead-letters",
        "alarm_description": f"Invocations of the schedule that starts {what} wait in its dead-letter queue",
        "namespace": "AWS/SQS", "metric_name": "ApproximateNumberOfMessagesVisible",
        "dimensions": {"QueueName": queue.attr("name")}, **{**notify, "statistic": "Maximum"}}))
    ctx.stack.add(*alarms)
    return alarms


__all__ = ["Schedule", "render_schedule", "schedule_alarms"]
