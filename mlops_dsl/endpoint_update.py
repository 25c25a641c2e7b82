"""Moving a live SageMaker endpoint to the configuration Terraform rendered, as AWS documents it.

Terraform creates the endpoint and every configuration; this step, run by Terraform itself (a
`terraform_data` provisioner in the serving stack, re-created whenever the configuration's name
changes), performs the update. It exists because the provider cannot do three things:

- keep the autoscaled instance counts: hashicorp/aws 5.100's UpdateEndpoint sends only the name,
  the configuration and the deployment config (internal/service/sagemaker/endpoint.go), so every
  update resets each variant to `initial_instance_count` under load. Here
  `RetainAllVariantProperties` keeps the counts, and `ExcludeRetainedVariantProperties` still
  applies the blueprint's weights and data capture.
- change a variant's instance type under autoscaling: "If the update would change the instance type
  for any model that is a target for auto scaling, the update fails ... delete any scaling policies
  configured for it and deregister the variant as a scalable target"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html). Here those
  variants are deregistered first and registered again, with their policies, afterwards.
- notice a rollback: when an alarm trips, SageMaker returns the endpoint to InService on the old
  configuration and the provider reports success (hashicorp/terraform-provider-aws#48997). Here the
  endpoint's configuration is compared after the update, and a rollback fails the step, so
  Terraform keeps the configuration the endpoint still runs (its destroy waits for this step) and
  the next apply tries again.

The decisions are plain functions over DescribeEndpoint / DescribeEndpointConfig answers; the
calls are made by `update()` with clients passed in, so the tests drive it with botocore's Stubber.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import OperationError
from .registry import aws_call  # an AWS call's failure as an OperationError naming it

IN_SERVICE = "InService"
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# Kept from the live endpoint: the autoscaled instance count. Taken from the new configuration: the
# blueprint's weights. (botocore's VariantProperty documents DataCaptureConfig as "Not currently
# supported", so it is not named: data capture comes with the configuration.)
EXCLUDED = [{"VariantPropertyType": "DesiredWeight"}]
# PutScalingPolicy takes these fields of a DescribeScalingPolicies entry back as they were.
POLICY_FIELDS = ("PolicyName", "PolicyType", "StepScalingPolicyConfiguration",
                 "TargetTrackingScalingPolicyConfiguration", "PredictiveScalingPolicyConfiguration")


@dataclass(frozen=True)
class Registration:
    """A variant's scalable target and policies, as Application Auto Scaling described them."""

    target: dict[str, Any]
    policies: list[dict[str, Any]]


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def retyped_variants(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Variants present in both configurations whose instance type changes (serverless has none)."""
    if old is None:
        return []
    before = {v["VariantName"]: v.get("InstanceType") for v in old.get("ProductionVariants", [])}
    return [v["VariantName"] for v in new.get("ProductionVariants", [])
            if v["VariantName"] in before and before[v["VariantName"]] != v.get("InstanceType")]


def same_variants(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether both configurations have the same production variant names: a blue/green or rolling
    update needs it ("your new endpoint configuration must have the same variant name as the old",
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html)."""
    if old is None:
        return False
    return ({v["VariantName"] for v in old.get("ProductionVariants", [])}
            == {v["VariantName"] for v in new.get("ProductionVariants", [])})


def update_request(endpoint: str, config: str, deployment: dict[str, Any] | None) -> dict[str, Any]:
    request: dict[str, Any] = {"EndpointName": endpoint, "EndpointConfigName": config,
                               "RetainAllVariantProperties": True, "ExcludeRetainedVariantProperties": EXCLUDED}
    if deployment:
        request["DeploymentConfig"] = deployment
    return request


def rollback_message(endpoint: str, wanted: str, described: dict[str, Any]) -> str | None:
    """Why the endpoint does not run `wanted` after its update, or None when it does."""
    status, running = described.get("EndpointStatus"), described.get("EndpointConfigName")
    reason = described.get("FailureReason")
    if status == IN_SERVICE and running == wanted:
        return None
    if running != wanted:
        return (f"SageMaker rolled the update of endpoint {endpoint} back: it runs configuration {running}, "
                f"not {wanted} (status {status}{'; ' + reason if reason else ''}). The configuration it runs "
                "is kept; see the rollback alarms on the alarm topic, fix the cause, and apply again")
    return f"endpoint {endpoint} is {status} on {wanted}{': ' + reason if reason else ''}"


class Clients:
    """The SageMaker and Application Auto Scaling clients, and how long to wait between looks."""

    def __init__(self, sagemaker: Any, autoscaling: Any, poll_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.sagemaker, self.autoscaling = sagemaker, autoscaling
        self.poll_seconds, self.clock, self.sleep = poll_seconds, clock, sleep


def _config(c: Clients, name: str) -> dict[str, Any] | None:
    """The configuration, or None when it no longer exists (deleted by an older apply: #48997)."""
    from botocore.exceptions import ClientError

    try:
        return c.sagemaker.describe_endpoint_config(EndpointConfigName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationException":
            return None
        raise OperationError(f"DescribeEndpointConfig {name}: {exc}") from None


def wait(c: Clients, endpoint: str, timeout: float, say: Callable[[str], None]) -> dict[str, Any]:
    """DescribeEndpoint until the endpoint is no longer busy, saying each status change and the time."""
    start, last = c.clock(), None
    while True:
        described = aws_call(f"DescribeEndpoint {endpoint}", c.sagemaker.describe_endpoint, EndpointName=endpoint)
        status = described.get("EndpointStatus")
        elapsed = c.clock() - start
        if status != last:
            say(f"{endpoint}: {status} ({elapsed / 60:.0f} min)")
            last = status
        if status not in BUSY:
            return described
        if elapsed > timeout:
            raise OperationError(f"endpoint {endpoint} still {status} after {timeout / 60:.0f} min; "
                                 "the update goes on in SageMaker: look at it with DescribeEndpoint, then apply again")
        c.sleep(c.poll_seconds)


def deregister(c: Clients, endpoint: str, variants: list[str], say: Callable[[str], None]) -> list[Registration]:
    """Deregister the variants' scalable targets, remembering them and their policies."""
    if not variants:
        return []
    ids = [resource_id(endpoint, v) for v in variants]
    targets = aws_call("DescribeScalableTargets", c.autoscaling.describe_scalable_targets,
                    ServiceNamespace="sagemaker", ResourceIds=ids, ScalableDimension=SCALABLE_DIMENSION)
    saved = []
    for target in targets.get("ScalableTargets", []):
        rid = target["ResourceId"]
        policies = aws_call(f"DescribeScalingPolicies {rid}", c.autoscaling.describe_scaling_policies,
                         ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION)
        saved.append(Registration(target, policies.get("ScalingPolicies", [])))
        # Deregistering also deletes the target's scaling policies (RegisterScalableTarget docs).
        aws_call(f"DeregisterScalableTarget {rid}", c.autoscaling.deregister_scalable_target,
              ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION)
        say(f"{rid}: autoscaling deregistered while its instance type changes")
    return saved


def register(c: Clients, saved: list[Registration], say: Callable[[str], None]) -> None:
    """Register the targets again with the limits and policies they had."""
    for r in saved:
        rid = r.target["ResourceId"]
        aws_call(f"RegisterScalableTarget {rid}", c.autoscaling.register_scalable_target,
              ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION,
              MinCapacity=r.target["MinCapacity"], MaxCapacity=r.target["MaxCapacity"])
        for policy in r.policies:
            aws_call(f"PutScalingPolicy {policy['PolicyName']}", c.autoscaling.put_scaling_policy,
                  ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION,
                  **{k: policy[k] for k in POLICY_FIELDS if k in policy})
        say(f"{rid}: autoscaling registered again ({len(r.policies)} policies)")


def update(c: Clients, endpoint: str, config: str, deployment: dict[str, Any] | None, timeout: float,
           say: Callable[[str], None] = print) -> None:
    """Bring `endpoint` to `config`; raise OperationError when SageMaker refuses or rolls it back."""
    current = wait(c, endpoint, timeout, say)
    if current.get("EndpointConfigName") == config:
        problem = rollback_message(endpoint, config, current)
        if problem:
            raise OperationError(problem)
        say(f"{endpoint}: already runs {config}")
        return
    old = _config(c, current["EndpointConfigName"])
    new = _config(c, config)
    if new is None:
        raise OperationError(f"endpoint configuration {config} does not exist")
    if deployment and not same_variants(old, new):
        say(f"{endpoint}: the variants change, which SageMaker's guarded updates exclude: this update is not "
            "shifted in steps and its rollback alarms are not watched")
        deployment = None
    saved = deregister(c, endpoint, retyped_variants(old, new), say)
    try:
        say(f"{endpoint}: updating from {current['EndpointConfigName']} to {config}, instance counts kept")
        aws_call(f"UpdateEndpoint {endpoint}", c.sagemaker.update_endpoint,
                 **update_request(endpoint, config, deployment))
        finished = wait(c, endpoint, timeout, say)
    finally:
        register(c, saved, say)
    problem = rollback_message(endpoint, config, finished)
    if problem:
        raise OperationError(problem)
    say(f"{endpoint}: runs {config}")


def deployment_from_env(text: str | None) -> dict[str, Any] | None:
    """The DeploymentConfig the stack rendered (JSON in MLOPS_DEPLOYMENT_CONFIG), or None."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise OperationError(f"MLOPS_DEPLOYMENT_CONFIG: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise OperationError("MLOPS_DEPLOYMENT_CONFIG: expected a JSON object")
    return value


__all__ = ["Clients", "Registration", "deployment_from_env", "retyped_variants", "rollback_message",
           "update", "update_request"]
