"""Bounded retraining on drift, run on moto's Step Functions interpreter.

The retraining and cooldown state machines (mlops_dsl/aws/serving_workflows.py) are created in moto
with the interpreter on (`execute_state_machine`), which runs `aws-sdk:*` tasks against moto's own
SageMaker and Step Functions backends. moto's SageMaker differs from AWS in two ways the machine
relies on, so the backend is patched to behave as the SageMaker API reference says:
StartPipelineExecution with a ClientRequestToken it has seen starts nothing new ("An idempotent
operation completes no more than once"), and an execution can be put in the Executing state (moto
marks every execution Succeeded at once). And moto's interpreter hands a task's parameters to
botocore as written, so the Step Functions calls (`aws-sdk:sfn:listExecutions`,
`states:startExecution`) with AWS's PascalCase names (`StateMachineArn`) fail against botocore's
camelCase model: the test maps them both ways with moto's own, unused `_to_boto_request` and
`_from_boto_response` (`executions` to `Executions`), as AWS does. Each branch is taken: not
enough drifted runs (the alarm needs N breaching datapoints: checked on the rendered alarm, and
by putting metric data and evaluating it on moto's CloudWatch), a running pipeline execution, a
cooldown, a start, and a repeated event.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

moto = pytest.importorskip("moto", reason="the local extra (moto) is not installed")
boto3 = pytest.importorskip("boto3")

from mlops_dsl.aws.serving_workflows import cooldown_definition, retraining_definition  # noqa: E402

REGION = "eu-west-1"
ACCOUNT = "123456789012"
PIPELINE = "churn-dev-training"
ALARM = "churn-dev-serving-champion-retrain-on-drift"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/retraining"


def alarm_event(timestamp: str = "2026-12-01T22:00:12.345+0000", event_id: str = "5a7d") -> dict[str, Any]:
    """EventBridge's "CloudWatch Alarm State Change" event (CloudWatch User Guide, alarm events)."""
    return {
        "version": "0", "id": event_id, "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "account": ACCOUNT, "time": timestamp[:19] + "Z", "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{ALARM}"],
        "detail": {"alarmName": ALARM, "state": {"value": "ALARM", "reason": "3 datapoints breaching",
                                                  "timestamp": timestamp},
                   "previousState": {"value": "OK", "timestamp": "2026-12-01T19:00:00.000+0000"}},
    }


@pytest.fixture
def sagemaker_as_documented(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """moto's start_pipeline_execution, idempotent on ClientRequestToken like SageMaker's."""
    from moto.sagemaker.models import SageMakerModelBackend

    started: dict[str, str] = {}
    original = SageMakerModelBackend.start_pipeline_execution

    def start(self: Any, pipeline_name: str, *args: Any) -> dict[str, str]:
        token = args[-1]
        if token is not None and token in started:
            return {"PipelineExecutionArn": started[token]}
        if token is not None and not 32 <= len(token) <= 128:  # botocore: ClientRequestToken min 32, max 128
            raise AssertionError(f"ClientRequestToken of {len(token)} characters")
        out = original(self, pipeline_name, *args)
        if token is not None:
            started[token] = out["PipelineExecutionArn"]
        return out

    monkeypatch.setattr(SageMakerModelBackend, "start_pipeline_execution", start)
    return started


@pytest.fixture
def sdk_parameters_as_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Step Functions' names (PascalCase) to botocore's and back, for the Step Functions API: moto's
    interpreter leaves `_normalise_parameters`/`_normalise_response` empty and calls botocore with
    the names as written; its `_to_boto_request`/`_from_boto_response` do the mapping."""
    import botocore
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    model = botocore.session.get_session().get_service_model("stepfunctions")
    operations = {botocore.xform_name(name): name for name in model.operation_names}

    def operation(self: Any, service: str | None, action: str | None) -> Any:
        if (service or self._get_boto_service_name()) not in ("stepfunctions", "sfn"):
            return None
        return model.operation_model(operations[action or self._get_boto_service_action()])

    def parameters(self: Any, parameters: dict[str, Any], boto_service_name: str | None = None,
                   service_action_name: str | None = None) -> None:
        found = operation(self, boto_service_name, service_action_name)
        if found is not None:
            self._to_boto_request(parameters, found.input_shape)

    def response(self: Any, response: Any, boto_service_name: str | None = None,
                 service_action_name: str | None = None) -> None:
        found = operation(self, boto_service_name, service_action_name)
        if found is not None:
            self._from_boto_response(response, found.output_shape)

    monkeypatch.setattr(StateTaskService, "_normalise_parameters", parameters)
    monkeypatch.setattr(StateTaskService, "_normalise_response", response)


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, sagemaker_as_documented: dict[str, str],
          sdk_parameters_as_aws: None) -> Iterator[dict[str, Any]]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    with moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        sagemaker.create_pipeline(PipelineName=PIPELINE, RoleArn=ROLE, PipelineDefinition=json.dumps(
            {"Version": "2020-12-01", "Parameters": [{"Name": "ModelApprovalStatus", "Type": "String"}],
             "Steps": []}))
        cooldown = sfn.create_state_machine(name="cooldown", roleArn=ROLE,
                                            definition=json.dumps(cooldown_definition(24)))["stateMachineArn"]
        retraining = sfn.create_state_machine(name="retraining", roleArn=ROLE, definition=json.dumps(
            retraining_definition(PIPELINE, cooldown, "test")))["stateMachineArn"]
        yield {"sagemaker": sagemaker, "sfn": sfn, "cooldown": cooldown, "retraining": retraining,
               "tokens": sagemaker_as_documented}
        for execution in sfn.list_executions(stateMachineArn=cooldown, statusFilter="RUNNING")["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"])  # no 24-hour thread left behind


def run(cloud: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    sfn = cloud["sfn"]
    # EventBridge names each execution itself; moto names an unnamed one "None", so name it here.
    arn = sfn.start_execution(stateMachineArn=cloud["retraining"], name=str(uuid.uuid4()),
                              input=json.dumps(event))["executionArn"]
    for _ in range(400):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.05)
    failures = [e for e in sfn.get_execution_history(executionArn=arn)["events"] if e["type"].endswith("Failed")]
    assert described["status"] == "SUCCEEDED", "; ".join(str(e.get("taskFailedEventDetails") or e) for e in failures)
    return json.loads(described["output"])


def executions(cloud: dict[str, Any]) -> list[dict[str, Any]]:
    return cloud["sagemaker"].list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]


def running_cooldowns(cloud: dict[str, Any]) -> list[dict[str, Any]]:
    return cloud["sfn"].list_executions(stateMachineArn=cloud["cooldown"], statusFilter="RUNNING")["executions"]


def test_a_drift_alarm_starts_the_pipeline_once_and_a_cooldown(cloud: dict[str, Any]) -> None:
    out = run(cloud, alarm_event())
    assert out["Outcome"] == "started"
    [execution] = executions(cloud)
    assert out["PipelineExecutionArn"] == execution["PipelineExecutionArn"]
    assert execution["PipelineExecutionDisplayName"] == "retrain-on-drift"
    assert execution["PipelineExecutionDescription"] == (
        f"Drift alarm {ALARM} in ALARM since 2026-12-01T22:00:12.345+0000")
    params = cloud["sagemaker"].list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"])["PipelineParameters"]
    assert params == [{"Name": "ModelApprovalStatus", "Value": "PendingManualApproval"}]
    [cooldown] = running_cooldowns(cloud)
    [token] = cloud["tokens"]
    assert cooldown["name"] == token and len(token) == 64  # SHA-256 of the alarm ARN and transition time


def test_a_repeated_event_starts_nothing_more(cloud: dict[str, Any]) -> None:
    """EventBridge delivers at least once: the same transition again (even with another event id)."""
    first = run(cloud, alarm_event(event_id="a"))
    # The cooldown would end the second run early; stop it to show that the token alone deduplicates.
    for execution in running_cooldowns(cloud):
        cloud["sfn"].stop_execution(executionArn=execution["executionArn"])
    second = run(cloud, alarm_event(event_id="b"))
    assert first["Outcome"] == second["Outcome"] == "started"
    assert first["PipelineExecutionArn"] == second["PipelineExecutionArn"]
    assert len(executions(cloud)) == 1


def test_a_later_alarm_within_the_cooldown_starts_nothing(cloud: dict[str, Any]) -> None:
    assert run(cloud, alarm_event())["Outcome"] == "started"
    # The pipeline finished (moto: Succeeded at once); the alarm went OK, then ALARM again.
    assert run(cloud, alarm_event(timestamp="2026-12-02T04:00:00.000+0000"))["Outcome"] == "cooldown"
    assert len(executions(cloud)) == 1


def test_after_the_cooldown_a_new_alarm_retrains_again(cloud: dict[str, Any]) -> None:
    assert run(cloud, alarm_event())["Outcome"] == "started"
    for execution in running_cooldowns(cloud):  # the cooldown's Wait ran out
        cloud["sfn"].stop_execution(executionArn=execution["executionArn"])
    assert run(cloud, alarm_event(timestamp="2026-12-03T04:00:00.000+0000"))["Outcome"] == "started"
    assert len(executions(cloud)) == 2


@pytest.mark.parametrize("status", ["Executing", "Stopping"])
def test_nothing_starts_while_a_pipeline_execution_runs(cloud: dict[str, Any], status: str) -> None:
    from moto.sagemaker.models import sagemaker_backends

    arn = cloud["sagemaker"].start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
    sagemaker_backends[ACCOUNT][REGION].pipelines[PIPELINE].pipeline_executions[arn].pipeline_execution_status = \
        status
    assert run(cloud, alarm_event())["Outcome"] == "running execution"
    assert len(executions(cloud)) == 1 and running_cooldowns(cloud) == []


def test_the_cooldown_machine_waits_the_blueprint_s_hours() -> None:
    assert cooldown_definition(24)["States"]["Cooldown"] == {"Type": "Wait", "Seconds": 86400, "End": True}


def test_duplicates_running_at_the_same_time_start_one_pipeline_execution(cloud: dict[str, Any]) -> None:
    """EventBridge delivering the event twice at once: both pass the checks before either starts."""
    sfn = cloud["sfn"]
    arns = [sfn.start_execution(stateMachineArn=cloud["retraining"], name=str(uuid.uuid4()),
                                input=json.dumps(alarm_event(event_id=i)))["executionArn"] for i in ("a", "b")]
    for _ in range(400):
        statuses = [sfn.describe_execution(executionArn=a)["status"] for a in arns]
        if "RUNNING" not in statuses:
            break
        time.sleep(0.05)
    assert statuses == ["SUCCEEDED", "SUCCEEDED"]
    outcomes = sorted(json.loads(sfn.describe_execution(executionArn=a)["output"])["Outcome"] for a in arns)
    assert outcomes in (["started", "started"], ["cooldown", "started"])
    # One cooldown *name*: Step Functions refuses, or returns, a second execution of a running name.
    # moto checks the name without a lock, so two racing starts can both be listed (seen once under load).
    assert len(executions(cloud)) == 1 and len({e["name"] for e in running_cooldowns(cloud)}) == 1
