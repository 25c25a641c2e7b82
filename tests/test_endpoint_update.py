"""The serving stack's update step against a fake SageMaker (botocore's Stubber) that succeeds,
rolls back and rejects, and the stack that runs it."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from mlops_dsl import BlueGreen, Rolling, Variant
from mlops_dsl import endpoint_update as eu
from mlops_dsl.errors import OperationError
from mlops_dsl.runner.terraform import _last_error

EP = "churn-prod-serving"
RID = f"endpoint/{EP}/variant/champion"
DIM = "sagemaker:variant:DesiredInstanceCount"
POLICY = {"PolicyName": f"{EP}-champion-invocations", "PolicyType": "TargetTrackingScaling",
          "TargetTrackingScalingPolicyConfiguration": {
              "TargetValue": 100.0, "PredefinedMetricSpecification": {
                  "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}}


def _config(name: str, instance_type: str) -> dict:
    return {"EndpointConfigName": name, "EndpointConfigArn": f"arn:aws:sagemaker:eu-west-1:1:endpoint-config/{name}",
            "CreationTime": "2026-12-01T00:00:00Z",
            "ProductionVariants": [{"VariantName": "champion", "ModelName": "m", "InstanceType": instance_type,
                                    "InitialInstanceCount": 3}]}


def _endpoint(status: str, config: str, reason: str | None = None) -> dict:
    out = {"EndpointName": EP, "EndpointArn": f"arn:aws:sagemaker:eu-west-1:1:endpoint/{EP}",
           "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": "2026-12-01T00:00:00Z",
           "LastModifiedTime": "2026-12-01T00:00:00Z"}
    if reason:
        out["FailureReason"] = reason
    return out


@pytest.fixture
def fake():
    sm = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    aas = boto3.client("application-autoscaling", region_name="eu-west-1", aws_access_key_id="x",
                       aws_secret_access_key="x")
    with Stubber(sm) as s, Stubber(aas) as a:
        yield eu.Clients(sm, aas, poll_seconds=0, sleep=lambda _: None), s, a
        s.assert_no_pending_responses()
        a.assert_no_pending_responses()


def _expect_update(s: Stubber, new: str, deployment: dict | None = None) -> None:
    s.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/x"},
                   eu.update_request(EP, new, deployment))


def test_update_keeps_counts_and_applies_weights_and_capture(fake):
    c, s, _a = fake
    s.add_response("describe_endpoint", _endpoint("InService", "old"), {"EndpointName": EP})
    s.add_response("describe_endpoint_config", _config("old", "ml.m5.large"), {"EndpointConfigName": "old"})
    s.add_response("describe_endpoint_config", _config("new", "ml.m5.large"), {"EndpointConfigName": "new"})
    _expect_update(s, "new")
    s.add_response("describe_endpoint", _endpoint("Updating", "old"), {"EndpointName": EP})
    s.add_response("describe_endpoint", _endpoint("InService", "new"), {"EndpointName": EP})
    said: list[str] = []
    eu.update(c, EP, "new", None, 3600, said.append)
    request = eu.update_request(EP, "new", None)
    assert request["RetainAllVariantProperties"] is True
    assert request["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]
    assert said[-1] == f"{EP}: runs new"


def test_instance_type_change_deregisters_autoscaling_first_and_restores_it(fake):
    c, s, a = fake
    s.add_response("describe_endpoint", _endpoint("InService", "old"), {"EndpointName": EP})
    s.add_response("describe_endpoint_config", _config("old", "ml.m5.large"), {"EndpointConfigName": "old"})
    s.add_response("describe_endpoint_config", _config("new", "ml.c5.xlarge"), {"EndpointConfigName": "new"})
    a.add_response("describe_scalable_targets", {"ScalableTargets": [{
        "ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIM, "MinCapacity": 3,
        "MaxCapacity": 12, "RoleARN": "arn:aws:iam::1:role/x", "CreationTime": "2026-12-01T00:00:00Z"}]},
        {"ServiceNamespace": "sagemaker", "ResourceIds": [RID], "ScalableDimension": DIM})
    a.add_response("describe_scaling_policies", {"ScalingPolicies": [{
        **POLICY, "PolicyARN": "arn:aws:autoscaling:eu-west-1:1:scalingPolicy:x", "ServiceNamespace": "sagemaker",
        "ResourceId": RID, "ScalableDimension": DIM, "CreationTime": "2026-12-01T00:00:00Z", "Alarms": []}]},
        {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIM})
    a.add_response("deregister_scalable_target", {},
                   {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIM})
    # Only after deregistering does the update go out: AWS refuses it otherwise.
    _expect_update(s, "new")
    s.add_response("describe_endpoint", _endpoint("InService", "new"), {"EndpointName": EP})
    a.add_response("register_scalable_target", {}, {"ServiceNamespace": "sagemaker", "ResourceId": RID,
                                                    "ScalableDimension": DIM, "MinCapacity": 3, "MaxCapacity": 12})
    a.add_response("put_scaling_policy", {"PolicyARN": "arn:aws:autoscaling:eu-west-1:1:scalingPolicy:y"},
                   {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIM, **POLICY})
    eu.update(c, EP, "new", None, 3600, lambda _: None)


def test_rollback_fails_naming_the_configuration_still_running(fake):
    c, s, _a = fake
    deployment = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"{EP}-champion-5xx-rate"}]}}
    s.add_response("describe_endpoint", _endpoint("InService", "old"), {"EndpointName": EP})
    s.add_response("describe_endpoint_config", _config("old", "ml.m5.large"), {"EndpointConfigName": "old"})
    s.add_response("describe_endpoint_config", _config("new", "ml.m5.large"), {"EndpointConfigName": "new"})
    _expect_update(s, "new", deployment)
    s.add_response("describe_endpoint", _endpoint("RollingBack", "old"), {"EndpointName": EP})
    s.add_response("describe_endpoint", _endpoint("InService", "old", "Alarm churn-5xx-rate in ALARM"),
                   {"EndpointName": EP})
    with pytest.raises(OperationError, match=r"rolled the update of endpoint .* back: it runs configuration old, "
                                             r"not new.*Alarm churn-5xx-rate"):
        eu.update(c, EP, "new", deployment, 3600, lambda _: None)


def test_a_rejected_update_fails_with_sagemakers_reason_and_restores_autoscaling(fake):
    c, s, a = fake
    s.add_response("describe_endpoint", _endpoint("InService", "old"), {"EndpointName": EP})
    s.add_response("describe_endpoint_config", _config("old", "ml.m5.large"), {"EndpointConfigName": "old"})
    s.add_response("describe_endpoint_config", _config("new", "ml.c5.xlarge"), {"EndpointConfigName": "new"})
    a.add_response("describe_scalable_targets", {"ScalableTargets": [{
        "ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIM, "MinCapacity": 1,
        "MaxCapacity": 4, "RoleARN": "arn:aws:iam::1:role/x", "CreationTime": "2026-12-01T00:00:00Z"}]}, None)
    a.add_response("describe_scaling_policies", {"ScalingPolicies": []}, None)
    a.add_response("deregister_scalable_target", {}, None)
    s.add_client_error("update_endpoint", "ValidationException", "The instance type ml.c5.xlarge is not supported",
                       expected_params=eu.update_request(EP, "new", None))
    a.add_response("register_scalable_target", {}, {"ServiceNamespace": "sagemaker", "ResourceId": RID,
                                                    "ScalableDimension": DIM, "MinCapacity": 1, "MaxCapacity": 4})
    with pytest.raises(OperationError, match=r"UpdateEndpoint .*ValidationException: The instance type"):
        eu.update(c, EP, "new", None, 3600, lambda _: None)


def test_an_endpoint_already_on_the_configuration_is_left_alone(fake):
    c, s, _a = fake
    s.add_response("describe_endpoint", _endpoint("Creating", "new"), {"EndpointName": EP})
    s.add_response("describe_endpoint", _endpoint("InService", "new"), {"EndpointName": EP})
    said: list[str] = []
    eu.update(c, EP, "new", None, 3600, said.append)
    assert said[-1] == f"{EP}: already runs new"


def test_a_failed_endpoint_on_the_configuration_is_not_success(fake):
    c, s, _a = fake
    s.add_response("describe_endpoint", _endpoint("Failed", "new", "image not found"), {"EndpointName": EP})
    with pytest.raises(OperationError, match="is Failed on new: image not found"):
        eu.update(c, EP, "new", None, 3600, lambda _: None)


def test_waiting_gives_up_with_a_clear_message(fake):
    c, s, _a = fake
    times = iter([0.0, 0.0, 100.0])
    c.clock = lambda: next(times)
    s.add_response("describe_endpoint", _endpoint("Updating", "old"), {"EndpointName": EP})
    s.add_response("describe_endpoint", _endpoint("Updating", "old"), {"EndpointName": EP})
    with pytest.raises(OperationError, match="still Updating after 1 min"):
        eu.wait(c, EP, 60, lambda _: None)


@pytest.mark.parametrize("deployment", [
    BlueGreen(traffic="CANARY"), BlueGreen(traffic="LINEAR", linear_step_percent=25), BlueGreen(), Rolling()])
def test_the_rendered_update_step_sends_what_update_endpoint_accepts(deployment):
    """Every deployment kind's request, as the stack renders it, validates against botocore's model."""
    from botocore.session import get_session

    from .test_aws_templates import _platform, _stacks

    serving = {"deployment": deployment, "retrain_on_drift": False,
               "variants": [Variant("main", initial_instance_count=2)] if isinstance(deployment, Rolling) else
               [Variant("champion", weight=0.9, initial_instance_count=2),
                Variant("challenger", weight=0.1, initial_instance_count=2)]}
    stack = _stacks(_platform(serving_kwargs=serving))["serving"].stack
    step = next(r for r in stack.resources if r.type == "terraform_data" and r.name == "endpoint_update")
    local_exec = step.body["provisioner"]
    assert local_exec.labels == ("local-exec",)
    command = "".join(p if isinstance(p, str) else "${" + p.text + "}" for p in local_exec.body["command"].parts)
    assert command == ("mlops update-endpoint --region eu-west-1 --endpoint churn-prod-serving --config "
                       "${aws_sagemaker_endpoint_configuration.main.name} --timeout-minutes "
                       f"{-(-deployment.max_execution_timeout_seconds // 60) + 30}")
    assert [t.text for t in step.body["triggers_replace"]] == ["aws_sagemaker_endpoint_configuration.main.name"]
    alarms = {r.address for r in stack.resources if r.type == "aws_cloudwatch_metric_alarm"
              and r.name.startswith(("latency_", "errors_"))}
    assert {d.address for d in step.depends_on} == {"aws_sagemaker_endpoint.main", *alarms}
    targets = [r for r in stack.resources if r.type == "aws_appautoscaling_target"]
    assert targets and all(d.address == "terraform_data.endpoint_update" for t in targets for d in t.depends_on)
    config = local_exec.body["environment"]["MLOPS_DEPLOYMENT_CONFIG"].args[0]
    shape = get_session().get_service_model("sagemaker").operation_model("UpdateEndpoint").input_shape
    report = ParamValidator().validate(eu.update_request("e", "c", config), shape)
    assert not report.has_errors(), report.generate_report()
    assert len(config["AutoRollbackConfiguration"]["Alarms"]) == 2 * len(serving["variants"])


def test_a_provisioner_failure_surfaces_its_own_message():
    stderr = """
Error: local-exec provisioner error

  with terraform_data.endpoint_update,
  on main.tf line 20, in resource "terraform_data" "endpoint_update":

Error running command 'mlops update-endpoint ...': exit status 1.
Output: churn: Updating (0 min)
Error: SageMaker rolled the update of endpoint x back: it runs configuration
a-0001, not b-0002 (status InService)
"""
    assert _last_error(stderr) == ("a provisioner failed: Error: SageMaker rolled the update of endpoint x back: "
                                   "it runs configuration a-0001, not b-0002 (status InService)")


def test_a_change_of_variants_is_updated_without_the_guardrails_that_exclude_it(fake):
    """SageMaker's blue/green and rolling updates need the same variant names in both configurations."""
    c, s, _a = fake
    deployment = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"{EP}-champion-5xx-rate"}]}}
    challenger = _config("new", "ml.m5.large")
    challenger["ProductionVariants"].append({"VariantName": "challenger", "ModelName": "m2",
                                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1})
    s.add_response("describe_endpoint", _endpoint("InService", "old"), {"EndpointName": EP})
    s.add_response("describe_endpoint_config", _config("old", "ml.m5.large"), {"EndpointConfigName": "old"})
    s.add_response("describe_endpoint_config", challenger, {"EndpointConfigName": "new"})
    _expect_update(s, "new", None)  # no DeploymentConfig
    s.add_response("describe_endpoint", _endpoint("InService", "new"), {"EndpointName": EP})
    said: list[str] = []
    eu.update(c, EP, "new", deployment, 3600, said.append)
    assert any("the variants change" in line for line in said)
