"""How a served endpoint changes: the endpoint itself, its guarded update policy, and the update step.

Terraform creates the endpoint on its first configuration and then leaves the configuration to
the update step (`terraform_data.endpoint_update`, re-created whenever the configuration's name
changes), which runs `mlops update-endpoint` (mlops_dsl/endpoint_update.py): UpdateEndpoint with
`RetainAllVariantProperties`, autoscaling deregistered around an instance-type change, and a
failure when SageMaker rolls the update back. Because the old configuration is replaced
`create_before_destroy` and its destroy waits for the update step, a rolled-back update leaves
the configuration the endpoint still runs in place, and the next apply tries again.
"""

from __future__ import annotations

import math
from typing import Any

from ..context import StackContext
from ..templates.serving import BlueGreen, ModelServing
from ..terraform import Block, Lifecycle, Resource, interp, jsonencode

UPDATE_MARGIN_MINUTES = 30  # new instances start before the deployment's own timeout runs


def deployment_config(t: ModelServing, alarm_names: list[str]) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig (the API's own shape, checked against botocore's model)."""
    d = t.deployment
    rollback = {"Alarms": [{"AlarmName": name} for name in alarm_names]}
    if isinstance(d, BlueGreen):
        routing: dict[str, Any] = {"Type": d.traffic, "WaitIntervalInSeconds": d.wait_seconds}
        if d.traffic == "CANARY":
            routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": d.canary_percent}
        elif d.traffic == "LINEAR":
            routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": d.linear_step_percent}
        return {"BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": d.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": d.max_execution_timeout_seconds,
        }, "AutoRollbackConfiguration": rollback}
    return {"RollingUpdatePolicy": {
        "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": d.batch_percent},
        "WaitIntervalInSeconds": d.wait_seconds,
        "MaximumExecutionTimeoutInSeconds": d.max_execution_timeout_seconds,
        "RollbackMaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": d.rollback_batch_percent},
    }, "AutoRollbackConfiguration": rollback}


def render_endpoint(t: ModelServing, ctx: StackContext, endpoint_name: str, config: Resource,
                    log_group: Resource, alarms: list[Resource]) -> tuple[Resource, Resource]:
    """The endpoint and the step that updates it; returns both (scaling registers after the step)."""
    endpoint = Resource("aws_sagemaker_endpoint", "main", {
        "name": endpoint_name,
        "endpoint_config_name": config.attr("name"),
    }, depends_on=(log_group,),
        # The update step owns every later configuration change (module docstring).
        lifecycle=Lifecycle(ignore_changes=("endpoint_config_name",)))
    deployment = deployment_config(t, [str(a.body["alarm_name"]) for a in alarms])
    timeout = math.ceil(t.deployment.max_execution_timeout_seconds / 60) + UPDATE_MARGIN_MINUTES
    environment: dict[str, Any] = {"MLOPS_DEPLOYMENT_CONFIG": jsonencode(deployment)}
    aws = ctx.namespace.aws
    assert aws is not None  # an AWS stack
    if aws.endpoint:
        environment["AWS_ENDPOINT_URL"] = aws.endpoint  # the local emulator
    step = Resource("terraform_data", "endpoint_update", {
        "triggers_replace": [config.attr("name")],
        "provisioner": Block({
            "command": interp(f"mlops update-endpoint --region {aws.region} --endpoint {endpoint_name} --config ",
                              config.attr("name"), f" --timeout-minutes {timeout}"),
            "environment": environment,
        }, labels=("local-exec",)),
    }, depends_on=(endpoint, *alarms))
    ctx.stack.add(endpoint, step)
    return endpoint, step


__all__ = ["deployment_config", "render_endpoint"]
