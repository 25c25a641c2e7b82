"""CPU-based autoscale of each online deployment (Azure Monitor autoscale on the deployment's id,
as learn.microsoft.com/azure/machine-learning/how-to-autoscale-endpoints does it)."""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..templates.serving import ModelServing
from ..terraform import Block, Resource
from .alerts import METRICS
from .common import location, tagged


def autoscale(t: ModelServing, ctx: StackContext, name: str, rg: Any,
              deployments: dict[str, Resource]) -> list[Resource]:
    a = t.autoscaling
    out = []
    for v in t.variants if a is not None else ():
        assert a is not None
        target = deployments[v.name].attr("id")

        def rule(operator: str, threshold: int, direction: str, target: Any = target) -> Block:
            return Block({
                "metric_trigger": Block({
                    "metric_name": "CpuUtilizationPercentage",
                    "metric_resource_id": target,
                    "metric_namespace": f"{METRICS}/deployments",
                    "time_grain": "PT1M", "statistic": "Average", "time_window": "PT5M",
                    "time_aggregation": "Average", "operator": operator, "threshold": threshold,
                }),
                "scale_action": Block({"direction": direction, "type": "ChangeCount", "value": 1,
                                       "cooldown": "PT5M"}),
            })

        out.append(Resource("azurerm_monitor_autoscale_setting", v.name.replace("-", "_"), tagged(ctx, {
            "name": f"autoscale-{name}-{v.name}",
            "location": location(ctx),
            "resource_group_name": rg,
            "target_resource_id": target,
            "profile": Block({
                "name": "default",
                "capacity": Block({"default": v.initial_instance_count, "minimum": a.min_capacity,
                                   "maximum": a.max_capacity}),
                "rule": [rule("GreaterThan", 70, "Increase"), rule("LessThan", 25, "Decrease")],
            }),
        })))
    return out
