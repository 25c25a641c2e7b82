"""The namespace's monthly cost budget on AWS: AWS Budgets filtered on the project's tags.

Why the platform tag: every namespace has its own account, so the budget (created in that account)
filters on `mlops:platform` (set on every resource through the provider's default_tags) and holds
that platform's spend. AWS only filters on a tag once it is activated as a cost allocation tag in
the management (payer) account; until then the filter matches nothing (README: Cost).
"""

from __future__ import annotations

from ..context import StackContext
from ..terraform import Block, Resource

THRESHOLDS = ((80, "ACTUAL"), (100, "ACTUAL"), (100, "FORECASTED"))


def render(ctx: StackContext) -> None:
    monthly = ctx.namespace.budget_monthly
    if monthly is None:
        return
    ctx.stack.add(Resource("aws_budgets_budget", "monthly", {
        "name": f"{ctx.name}-monthly",
        "budget_type": "COST",
        "limit_amount": f"{monthly:.2f}",
        "limit_unit": "USD",
        "time_unit": "MONTHLY",
        "cost_filter": [Block({"name": "TagKeyValue", "values": [f"user:mlops:platform${ctx.platform}"]})],
        "notification": [Block({
            "comparison_operator": "GREATER_THAN",
            "threshold": percent,
            "threshold_type": "PERCENTAGE",
            "notification_type": kind,
            "subscriber_email_addresses": list(ctx.namespace.alert_emails),
        }) for percent, kind in THRESHOLDS],
    }))
