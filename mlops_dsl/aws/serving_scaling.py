"""Application Auto Scaling of each served variant: a scalable target and a target-tracking policy."""

from __future__ import annotations

from ..context import StackContext
from ..templates.serving import ModelServing, Variant
from ..terraform import Block, Resource, interp


def render_scaling(t: ModelServing, ctx: StackContext, endpoint: Resource, endpoint_name: str,
                   variants: list[Variant], after: Resource) -> None:
    """Registered after the endpoint's update step, which deregisters a variant whose instance type changes."""
    a = t.autoscaling
    for v in variants if a is not None else ():
        slug = v.name.replace("-", "_")
        target = Resource("aws_appautoscaling_target", f"variant_{slug}", {
            "service_namespace": "sagemaker",
            "resource_id": interp("endpoint/", endpoint.attr("name"), f"/variant/{v.name}"),
            "scalable_dimension": "sagemaker:variant:DesiredInstanceCount",
            "min_capacity": a.min_capacity,
            "max_capacity": a.max_capacity,
        }, depends_on=(after,))
        ctx.stack.add(target, Resource("aws_appautoscaling_policy", f"variant_{slug}", {
            "name": f"{endpoint_name}-{v.name}-invocations",
            "policy_type": "TargetTrackingScaling",
            "service_namespace": target.attr("service_namespace"),
            "resource_id": target.attr("resource_id"),
            "scalable_dimension": target.attr("scalable_dimension"),
            "target_tracking_scaling_policy_configuration": Block({
                "target_value": a.target_invocations_per_instance,
                "scale_in_cooldown": a.scale_in_cooldown_seconds,
                "scale_out_cooldown": a.scale_out_cooldown_seconds,
                "predefined_metric_specification": Block({
                    "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"}),
            }),
        }))

