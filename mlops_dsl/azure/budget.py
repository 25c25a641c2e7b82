"""The namespace's monthly cost budget on Azure: a consumption budget on the platform's resource group.

Why the resource group: every resource of a platform in a namespace lives in it, so its spend is
the platform's. The start date must be the first of a month and is fixed here so the rendered
Terraform stays byte-identical between runs; Azure keeps the budget running monthly from it.
"""

from __future__ import annotations

from ..context import StackContext
from ..terraform import Block, Resource

START = "2026-12-01T00:00:00Z"
THRESHOLDS = ((80, "Actual"), (100, "Actual"), (100, "Forecasted"))


def render(ctx: StackContext, group: Resource) -> None:
    monthly = ctx.namespace.budget_monthly
    if monthly is None:
        return
    ctx.stack.add(Resource("azurerm_consumption_budget_resource_group", "monthly", {
        "name": f"{ctx.name}-monthly",
        "resource_group_id": group.attr("id"),
        "amount": monthly,
        "time_grain": "Monthly",
        "time_period": Block({"start_date": START}),
        "notification": [Block({
            "enabled": True,
            "threshold": percent,
            "threshold_type": kind,
            "operator": "GreaterThan",
            "contact_emails": list(ctx.namespace.alert_emails),
        }) for percent, kind in THRESHOLDS],
    }))
