"""Retraining on drift, bounded (opt-in, only where the namespace owns the registry and so the pipeline).

    drift job runs ─> DriftDetected ─> alarm: N periods in a row with a drifted run, any variant
      ─> EventBridge rule: that alarm's change to ALARM ─> retraining state machine:
           a pipeline execution Executing or Stopping ─> end ("running execution")
           a cooldown execution running             ─> end ("cooldown")
           otherwise StartPipelineExecution (token of the alarm transition, PendingManualApproval)
                     and a cooldown execution (a Wait of retrain_cooldown_hours)

One alarm over all variants (the maximum of their DriftDetected), not one per variant: two
variants drifting in the same hour would be two alarm transitions, two tokens, and two executions
racing past the running-execution check. The alarm's M of N is N of N: evaluation_periods =
datapoints_to_alarm = retrain_after_drifted_runs, period = the schedule's interval. A run over an
empty capture window still sends DriftDetected 0 (serving/drift/cli.py), because CloudWatch
evaluates the latest datapoints that exist (alarms-and-missing-data); a period with no run at all
(a failed job) is missing, `notBreaching`. CloudWatch emits a state-change event only when
the state changes, so a drift that persists is one event until the alarm returns to OK; see
serving_workflows.py for how duplicates of that event are made harmless.
"""

from __future__ import annotations

from ..context import StackContext
from ..templates.serving import ModelServing
from ..terraform import Block, Resource, jsonencode
from . import iam
from .serving_drift import METRICS_NAMESPACE, Drift, drift_dimensions
from .serving_workflows import cooldown_definition, retraining_definition
from .state_machines import failed_executions_alarm, observability_statements, state_machine


def retraining_alarm(t: ModelServing, ctx: StackContext, drift: Drift, topic: Resource) -> Resource:
    """ALARM after retrain_after_drifted_runs consecutive periods in which some variant drifted."""
    n = t.retrain_after_drifted_runs
    period = drift.interval_hours * 3600
    queries = [Block({"id": f"v{i}", "return_data": False, "metric": Block({
        "namespace": METRICS_NAMESPACE, "metric_name": "DriftDetected",
        "dimensions": drift_dimensions(drift.endpoint_name, variant), "period": period, "stat": "Maximum"})})
        for i, variant in enumerate(drift.variants)]
    ids = ", ".join(f"v{i}" for i in range(len(drift.variants)))
    alarm = Resource("aws_cloudwatch_metric_alarm", "retrain_on_drift", {
        "alarm_name": f"{drift.endpoint_name}-retrain-on-drift",
        "alarm_description": f"{n} drifted drift-job run(s) in a row: retraining starts (unless a pipeline "
                             f"execution runs, or one started in the last {t.retrain_cooldown_hours} hours)",
        "comparison_operator": "GreaterThanThreshold",
        "threshold": 0,
        "evaluation_periods": n,
        "datapoints_to_alarm": n,
        "treat_missing_data": "notBreaching",
        "metric_query": [
            Block({"id": "drifted", "expression": f"MAX([{ids}])" if len(drift.variants) > 1 else "v0",
                   "label": "Any variant drifted", "return_data": True}),
            *queries,
        ],
        "alarm_actions": [topic.attr("arn")],
        "ok_actions": [topic.attr("arn")],
        "actions_enabled": True,
    })
    ctx.stack.add(alarm)
    return alarm


def render_retraining(t: ModelServing, ctx: StackContext, drift: Drift, topic: Resource, logs: Resource) -> None:
    training = t.training
    pipeline_arn = ctx.upstream_output(training, "pipeline_arn")
    pipeline_name = ctx.upstream_output(training, "pipeline_name")
    alarm = retraining_alarm(t, ctx, drift, topic)

    cooldown_role = iam.role(ctx, "retrain_cooldown", "retrain-cooldown", "states.amazonaws.com")
    cooldown_policy = iam.inline_policy("retrain_cooldown", cooldown_role, observability_statements())
    ctx.stack.add(cooldown_role, cooldown_policy)
    cooldown = state_machine(ctx, "retrain_cooldown", f"{ctx.name}-retrain-cooldown",
                             cooldown_definition(t.retrain_cooldown_hours), cooldown_role, cooldown_policy, logs)

    role = iam.role(ctx, "retrain_workflow", "retrain-workflow", "states.amazonaws.com")
    policy = iam.inline_policy("retrain_workflow", role, [
        iam.statement("ReadAndStartTrainingPipeline", ["sagemaker:ListPipelineExecutions",
                                                       "sagemaker:StartPipelineExecution"], [pipeline_arn]),
        iam.statement("Cooldown", ["states:ListExecutions", "states:StartExecution"], [cooldown.attr("arn")]),
        *observability_statements(),
    ])
    ctx.stack.add(role, policy)
    machine = state_machine(ctx, "retrain", f"{ctx.name}-retrain", retraining_definition(
        pipeline_name, cooldown.attr("arn"), f"Retrain {ctx.platform} when {drift.endpoint_name} drifts, bounded"),
        role, policy, logs)
    failed_executions_alarm(ctx, machine, "the retraining on drift", topic)

    rule = Resource("aws_cloudwatch_event_rule", "retrain_on_drift", {
        "name": f"{drift.endpoint_name}-retrain-on-drift",
        "description": f"The drift alarm went to ALARM ({t.retrain_after_drifted_runs} drifted runs in a row): "
                       f"retrain, bounded",
        # CloudWatch's "CloudWatch Alarm State Change" event (CloudWatch User Guide, alarm events).
        "event_pattern": jsonencode({
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "resources": [alarm.attr("arn")],
            "detail": {"state": {"value": ["ALARM"]}},
        }),
    })
    events_role = iam.role(ctx, "retrain_events", "retrain-on-drift", "events.amazonaws.com")
    ctx.stack.add(rule, events_role, iam.inline_policy("retrain_events", events_role, [
        iam.statement("StartRetraining", ["states:StartExecution"], [machine.attr("arn")]),
    ]), Resource("aws_cloudwatch_event_target", "retrain_on_drift", {
        "rule": rule.attr("name"),
        "arn": machine.attr("arn"),
        "role_arn": events_role.attr("arn"),
        "retry_policy": Block({"maximum_retry_attempts": 8, "maximum_event_age_in_seconds": 3600}),
    }))
    # A rule that cannot start the retraining (its role, throttling) would fail silently otherwise.
    ctx.stack.add(Resource("aws_cloudwatch_metric_alarm", "retrain_on_drift_failed_invocations", {
        "alarm_name": f"{drift.endpoint_name}-retrain-on-drift-failed-invocations",
        "alarm_description": "EventBridge could not start the retraining state machine for a drift alarm",
        "namespace": "AWS/Events", "metric_name": "FailedInvocations", "statistic": "Sum",
        "dimensions": {"RuleName": rule.attr("name")}, "period": 300, "evaluation_periods": 1,
        "comparison_operator": "GreaterThanThreshold", "threshold": 0, "treat_missing_data": "notBreaching",
        "alarm_actions": [topic.attr("arn")], "ok_actions": [topic.attr("arn")], "actions_enabled": True,
    }))


__all__ = ["render_retraining", "retraining_alarm"]
