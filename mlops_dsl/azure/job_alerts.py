"""Alerts on the Azure ML jobs a stack schedules (feature ingestion, batch scoring): an action group
of the namespace's alert emails, and an alert on the workspace's failed runs of one experiment."""

from __future__ import annotations

from ..context import StackContext
from ..terraform import Block, Resource, Value
from .common import compact, tagged


def email_group(ctx: StackContext, address: str, name: str, short_name: str, rg: Value) -> Resource:
    """An action group mailing the namespace's alert emails (none: a group without receivers)."""
    return Resource("azurerm_monitor_action_group", address, tagged(ctx, {
        "name": name,
        "resource_group_name": rg,
        "short_name": compact(short_name)[:12],
        **({"email_receiver": [Block({"name": f"email-{i}", "email_address": e, "use_common_alert_schema": True})
                               for i, e in enumerate(ctx.namespace.alert_emails)]}
           if ctx.namespace.alert_emails else {}),
    }))


def failed_runs_alert(ctx: StackContext, address: str, name: str, workspace: Value, rg: Value, group: Resource,
                      experiment: str, description: str) -> Resource:
    """`Failed Runs` (Azure Monitor, supported metrics of Microsoft.MachineLearningServices/workspaces)
    by its ExperimentName dimension: the jobs of `experiment`, not the workspace's other runs."""
    return Resource("azurerm_monitor_metric_alert", address, tagged(ctx, {
        "name": name,
        "resource_group_name": rg,
        "scopes": [workspace],
        "description": description,
        "severity": 2,
        "frequency": "PT15M",
        "window_size": "PT1H",
        "criteria": Block({"metric_namespace": "Microsoft.MachineLearningServices/workspaces",
                           "metric_name": "Failed Runs", "aggregation": "Total", "operator": "GreaterThan",
                           "threshold": 0,
                           "dimension": Block({"name": "ExperimentName", "operator": "Include",
                                               "values": [experiment]})}),
        "action": Block({"action_group_id": group.attr("id")}),
    }))


__all__ = ["email_group", "failed_runs_alert"]
