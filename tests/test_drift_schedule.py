"""The scheduled drift job on AWS as rendered: the Processing job request in the state machine
(checked against botocore's CreateProcessingJob shape), its roles, schedule and alarms; the
retraining alarm and rule; the Model Monitor opt-in; and the blueprint errors around them.

moto's Step Functions interpreter cannot run `sagemaker:createProcessingJob.sync` (its parser
lists "sagemaker" among the unsupported optimized integrations). So the drift state machine is
tested by its definition's shape and the request check, and run on moto with that one task made
the plain `aws-sdk:sagemaker:createProcessingJob` call, same Parameters, against moto's SageMaker:
the job names and report URIs the intrinsic functions compute, the parallel branches, and a failed
variant failing the execution after the other ran. The waiting for the job (`.sync`) is not run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from mlops_dsl import Variant
from mlops_dsl.aws import pipeline_requests, state_machine_requests
from mlops_dsl.aws.serving_workflows import JOB_PREFIX_LIMIT
from mlops_dsl.errors import BlueprintError
from mlops_dsl.namespaces import parse
from mlops_dsl.templates.serving import schedule_interval_hours

from .conftest import NAMESPACES
from .test_aws_templates import TAGS, _platform, _resources, _stacks, _text, pin

ARTIFACT = pin().artifact  # s3://churn-prod-models-333333333333/executions/e7/model.tar.gz


def serving(**kwargs: Any):
    return _stacks(_platform(serving_kwargs={"variants": [Variant("champion"), Variant("challenger")], **kwargs}))[
        "serving"].stack


def definition(stack, name: str = "drift") -> dict[str, Any]:
    return _resources(stack, "aws_sfn_state_machine")[name].body["definition"].args[0]


def policy(stack, name: str) -> dict[str, Any]:
    return {s["Sid"]: s for s in _resources(stack, "aws_iam_role_policy")[name].body["policy"].args[0]["Statement"]}


def test_one_processing_job_per_pinned_variant_with_the_served_package_as_baseline() -> None:
    stack = serving()
    machine = definition(stack)
    branches = machine["States"]["Variants"]["Branches"]
    assert [b["StartAt"] for b in branches] == ["Drift champion", "Drift challenger"]
    task = branches[0]["States"]["Drift champion"]
    assert task["Resource"] == "arn:aws:states:::sagemaker:createProcessingJob.sync"
    request = task["Parameters"]
    app = request["AppSpecification"]
    assert app["ContainerEntrypoint"] == ["python", "-m", "serving.drift"]
    assert _text(app["ImageUri"]) == '"${data.terraform_remote_state.training.outputs.repository_urls["serving"]}' \
                                     ':cccccccccccc"'
    args = app["ContainerArguments"]
    assert args[args.index("--baseline") + 1] == ARTIFACT
    assert _text(args[args.index("--data") + 1]) == (
        '"s3://${data.terraform_remote_state.data.outputs.bucket_names["experiments"]}'
        '/data-capture/churn-prod-serving/churn-prod-serving/champion/"')
    assert args[args.index("--since-hours") + 1] == "1"  # the hourly default schedule
    endpoint, variant = (args[i + 1] for i, a in enumerate(args) if a == "--dimension")
    assert variant == "Variant=champion" and _text(endpoint) == '"Endpoint=churn-prod-serving"'
    assert {"--exit-zero-on-drift", "cloudwatch"} <= {a for a in args if isinstance(a, str)}
    # It calls S3 and CloudWatch: not network-isolated, but in the private subnets.
    assert request["NetworkConfig"]["EnableNetworkIsolation"] is False
    assert _text(request["NetworkConfig"]["VpcConfig"]["Subnets"]) == \
        "data.terraform_remote_state.data.outputs.private_subnet_ids"
    assert request["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"].text == \
        "data.terraform_remote_state.data.outputs.kms_key_arn"
    assert request["RoleArn"].text == "aws_iam_role.drift.arn"
    assert request["Environment"] == {"AWS_DEFAULT_REGION": "eu-west-1"}
    assert machine["States"]["Any failed?"]["Choices"][0]["Or"] == [
        {"Variable": "$.results[0].Error", "IsPresent": True}, {"Variable": "$.results[1].Error", "IsPresent": True}]


def test_the_processing_request_matches_botocore_s_create_processing_job() -> None:
    problems, checked = state_machine_requests.check_definition(definition(serving()), "serving")
    assert problems == [] and checked > 40
    name = state_machine_requests.request(definition(serving())["States"]["Variants"]["Branches"][1]["States"][
        "Drift challenger"]["Parameters"])["ProcessingJobName"]
    assert name == "churn-prod-drift1-" + "a" * 32  # <prefix><index>-<MD5 of the execution ARN>


def test_the_request_check_finds_what_sagemaker_would_refuse() -> None:
    machine = definition(serving())
    request = machine["States"]["Variants"]["Branches"][0]["States"]["Drift champion"]["Parameters"]
    broken = {**request, "ProcessingResources": {"ClusterConfig": {"InstanceCount": "1", "InstanceType": "ml.m5.large",
                                                                   "VolumeSizeInGB": 30}},
              "StopingCondition": {"MaxRuntimeInSeconds": 60},
              "ProcessingJobName.$": "States.Format('" + "x" * 40 + "{}', States.Hash($$.Execution.Id, 'MD5'))"}
    problems, _ = pipeline_requests.check_request(pipeline_requests.service_model(), "CreateProcessingJob",
                                                  state_machine_requests.request(broken), "drift")
    assert any("ClusterConfig.InstanceCount: expects an integer" in p for p in problems)
    assert any("StopingCondition: no such member of CreateProcessingJobRequest; did you mean 'StoppingCondition'" in p
               for p in problems)
    assert any("ProcessingJobName: ProcessingJobName allows at most 63 characters; got 72" in p for p in problems)


def test_nvme_instances_get_no_volume_key() -> None:
    request = definition(serving(drift_instance_type="ml.m5d.large"))["States"]["Variants"]["Branches"][0]["States"][
        "Drift champion"]["Parameters"]
    assert "VolumeKmsKeyId" not in request["ProcessingResources"]["ClusterConfig"]
    assert request["ProcessingOutputConfig"]["KmsKeyId"].text == "data.terraform_remote_state.data.outputs.kms_key_arn"


def test_the_drift_job_role_reads_its_capture_and_packages_and_writes_only_its_namespace() -> None:
    statements = policy(serving(), "drift")
    assert statements["DriftMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MLOps/Drift"}}
    assert statements["ListCapture"]["Condition"] == {
        "StringLike": {"s3:prefix": ["data-capture/churn-prod-serving/*"]}}
    assert statements["ReadServedPackages"]["Resource"] == [
        "arn:aws:s3:::churn-prod-models-333333333333/executions/e7/model.tar.gz"]
    assert [_text(r) for r in statements["WriteReports"]["Resource"]] == [
        '"${data.terraform_remote_state.data.outputs.bucket_arns["experiments"]}/drift-reports/churn-prod-serving/*"']
    assert statements["PullServingImage"]["Resource"] == [
        "arn:aws:ecr:eu-west-1:333333333333:repository/churn-prod/serving"]
    assert not any(a.startswith(("sagemaker:", "iam:")) for s in statements.values() for a in s["Action"])


def test_the_state_machine_may_run_drift_jobs_and_pass_only_their_role() -> None:
    statements = policy(serving(), "drift_workflow")
    assert statements["RunDriftJobs"]["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:333333333333:processing-job/churn-prod-drift*"]
    assert [r.text for r in statements["PassDriftJobRole"]["Resource"]] == ["aws_iam_role.drift.arn"]
    assert statements["PassDriftJobRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert statements["WatchJobsForSync"]["Resource"] == [
        "arn:aws:events:eu-west-1:333333333333:rule/StepFunctionsGetEventsForSageMakerProcessingJobsRule"]
    machine = _resources(serving(), "aws_sfn_state_machine")["drift"].body
    assert machine["type"] == "STANDARD" and machine["tracing_configuration"].body == {"enabled": True}
    assert machine["logging_configuration"].body["level"] == "ALL"


def test_the_schedule_starts_the_state_machine_with_retries_a_queue_and_alarms() -> None:
    stack = serving()
    schedule = _resources(stack, "aws_scheduler_schedule")["drift"].body
    target = schedule["target"].body
    assert target["arn"].text == "aws_sfn_state_machine.drift.arn"
    assert target["dead_letter_config"].body["arn"].text == "aws_sqs_queue.drift_schedule_dead_letters.arn"
    assert target["retry_policy"].body == {"maximum_retry_attempts": 2, "maximum_event_age_in_seconds": 3600}
    assert [r.text for r in policy(stack, "drift_scheduler")["StartDriftJobs"]["Resource"]] == [
        "aws_sfn_state_machine.drift.arn"]
    alarms = _resources(stack, "aws_cloudwatch_metric_alarm")
    assert {a.body["alarm_name"] for a in alarms.values()} >= {
        "churn-prod-drift-schedule-dropped", "churn-prod-drift-schedule-target-errors",
        "churn-prod-drift-schedule-dead-letters", "churn-prod-drift-failed", "churn-prod-serving-champion-drift",
        "churn-prod-serving-challenger-drift"}
    drift = alarms["drift_champion"].body
    assert (drift["namespace"], drift["metric_name"], drift["period"]) == ("MLOps/Drift", "DriftDetected", 3600)
    assert drift["dimensions"] == {"Endpoint": "churn-prod-serving", "Variant": "champion"}
    assert drift["alarm_actions"][0].text == "aws_sns_topic.alarms.arn"


def test_the_window_and_periods_follow_the_schedule() -> None:
    stack = serving(monitoring_schedule="cron(15 */6 ? * * *)")
    args = definition(stack)["States"]["Variants"]["Branches"][0]["States"]["Drift champion"]["Parameters"][
        "AppSpecification"]["ContainerArguments"]
    assert args[args.index("--since-hours") + 1] == "6"
    assert _resources(stack, "aws_cloudwatch_metric_alarm")["drift_champion"].body["period"] == 6 * 3600


def test_by_default_drift_notifies_and_starts_nothing() -> None:
    stack = serving()
    assert "retrain_on_drift" not in _resources(stack, "aws_cloudwatch_event_rule")
    assert set(_resources(stack, "aws_sfn_state_machine")) == {"drift"}
    assert "aws_sagemaker_monitoring_schedule" not in {r.type for r in stack.resources}


def test_without_a_schedule_there_is_no_drift_job() -> None:
    types = {r.type for r in serving(monitoring_schedule=None).resources}
    assert not types & {"aws_sfn_state_machine", "aws_scheduler_schedule", "aws_sqs_queue"}


def test_the_retraining_alarm_needs_n_drifted_runs_in_a_row() -> None:
    """The "not enough drifted runs" branch is CloudWatch's: the alarm is N out of N periods."""
    stack = serving(retrain_on_drift=True, retrain_after_drifted_runs=4, monitoring_schedule="rate(2 hours)")
    alarm = _resources(stack, "aws_cloudwatch_metric_alarm")["retrain_on_drift"].body
    assert alarm["evaluation_periods"] == alarm["datapoints_to_alarm"] == 4
    assert alarm["treat_missing_data"] == "notBreaching"  # an hour without capture breaks the run
    expression, *metrics = [q.body for q in alarm["metric_query"]]
    assert expression["expression"] == "MAX([v0, v1])" and expression["return_data"] is True
    assert [m["metric"].body["period"] for m in metrics] == [7200, 7200]
    assert [m["metric"].body["dimensions"]["Variant"] for m in metrics] == ["champion", "challenger"]
    rule = _text(_resources(stack, "aws_cloudwatch_event_rule")["retrain_on_drift"].body["event_pattern"])
    assert 'value = ["ALARM"]' in rule and '"CloudWatch Alarm State Change"' in rule
    failed = _resources(stack, "aws_cloudwatch_metric_alarm")["retrain_on_drift_failed_invocations"].body
    assert (failed["namespace"], failed["metric_name"]) == ("AWS/Events", "FailedInvocations")
    cooldown = definition(stack, "retrain_cooldown")
    assert cooldown["States"]["Cooldown"]["Seconds"] == 24 * 3600
    retrain = policy(stack, "retrain_workflow")
    assert retrain["ReadAndStartTrainingPipeline"]["Resource"][0].text == \
        "data.terraform_remote_state.training.outputs.pipeline_arn"
    assert [r.text for r in retrain["Cooldown"]["Resource"]] == ["aws_sfn_state_machine.retrain_cooldown.arn"]
    assert [r.text for r in policy(stack, "retrain_events")["StartRetraining"]["Resource"]] == [
        "aws_sfn_state_machine.retrain.arn"]
    problems, checked = state_machine_requests.check_definition(definition(stack, "retrain"), "retrain")
    assert problems == [] and checked >= 6


def test_a_namespace_that_does_not_own_the_registry_only_notifies() -> None:
    text = NAMESPACES.replace("  prod:\n", "  prod:\n    models: {registry: dev}\n")
    assert text != NAMESPACES
    platform = _platform(serving_kwargs={"retrain_on_drift": True})
    namespace = replace(parse(text)["prod"], pins={"churn": {"champion": pin()}})
    stack = {b.template: b for b in platform.synth(namespace, image_tags=TAGS)}["serving"].stack
    assert "retrain_on_drift" not in _resources(stack, "aws_cloudwatch_event_rule")
    assert "retrain" not in _resources(stack, "aws_sfn_state_machine")
    assert any(n.startswith("retrain_on_drift: only dev, which owns the registry, trains") for n in stack.notes)
    # The packages are the registry's, under its key.
    statements = policy(stack, "drift")
    assert statements["DecryptRegistryPackages"]["Resource"] == ["arn:aws:kms:eu-west-1:111111111111:key/*"]


def test_model_monitor_is_an_opt_in_with_its_own_baseline() -> None:
    stack = serving(model_monitor=True, model_monitor_baseline="s3://mm-baselines/churn/")
    job = _resources(stack, "aws_sagemaker_data_quality_job_definition")["main"].body
    baseline = job["data_quality_baseline_config"].body
    assert baseline["statistics_resource"].body["s3_uri"] == "s3://mm-baselines/churn/statistics.json"
    assert baseline["constraints_resource"].body["s3_uri"] == "s3://mm-baselines/churn/constraints.json"
    image = next(d for d in stack.data if d.type == "aws_sagemaker_prebuilt_ecr_image")
    assert image.body["image_tag"] == "latest"
    assert "aws_sfn_state_machine" in {r.type for r in stack.resources}  # the drift job runs as well


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"monitoring_schedule": "rate(90 minutes)"},
     "monitoring_schedule 'rate(90 minutes)' has no fixed whole-hour interval"),
    ({"monitoring_schedule": "cron(0 9 ? * MON-FRI *)"},
     "monitoring_schedule 'cron(0 9 ? * MON-FRI *)' has no fixed whole-hour interval"),
    ({"retrain_on_drift": True, "monitoring_schedule": "rate(6 hours)", "retrain_after_drifted_runs": 5},
     "retrain_after_drifted_runs (5) runs of 6 hour(s) (rate(6 hours)) span 30 hours; a CloudWatch alarm evaluates "
     "at most 24, so at most 4 runs with this schedule"),
    ({"model_monitor": True},
     "model_monitor needs model_monitor_baseline, an s3:// prefix with Model Monitor's statistics.json and "
     "constraints.json: the training pipeline writes the drift job's baseline.json"),
    ({"model_monitor_baseline": "s3://mm-b/p"}, "model_monitor_baseline is set but model_monitor is False"),
    ({"model_monitor": True, "model_monitor_baseline": "s3://mm-b/p", "monitoring_schedule": "rate(1 hour)"},
     "model_monitor: Model Monitor accepts only cron schedules"),
    ({"retrain_after_drifted_runs": 0},
     "The 'retrain_after_drifted_runs' parameter of ModelServing 'serving' must be an int in the range [1, 24]"),
    ({"retrain_cooldown_hours": 0},
     "The 'retrain_cooldown_hours' parameter of ModelServing 'serving' must be an int in the range [1, 8760]"),
    ({"model_monitor_baseline": "baseline/"},
     "The 'model_monitor_baseline' parameter of ModelServing 'serving' must be a string of an s3:// bucket"),
])
def test_blueprint_errors(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises((BlueprintError, ValueError)) as error:
        _platform(serving_kwargs=kwargs)
    assert expected in str(error.value)


def test_a_long_platform_and_namespace_cannot_name_the_jobs() -> None:
    platform = _platform()
    platform.name = "customer-churn-model"  # the endpoint's names fit (37), the drift jobs' do not (29)
    with pytest.raises(BlueprintError) as error:
        _stacks(platform)
    assert f"monitoring_schedule: the SageMaker name 'customer-churn-model-prod-drift' is 31 characters; " \
           f"the limit is {JOB_PREFIX_LIMIT}" in str(error.value)


@pytest.mark.parametrize(("expression", "hours"), [
    ("cron(0 * ? * * *)", 1), ("cron(5 */3 ? * * *)", 3), ("cron(30 2 ? * * *)", 24), ("rate(1 hour)", 1),
    ("rate(180 minutes)", 3), ("rate(2 days)", 48), ("rate(45 minutes)", None), ("cron(0 */7 ? * * *)", None),
    ("cron(0 * 1 * ? *)", None), ("at(2026-12-24T00:00:00)", None),
])
def test_schedule_interval_hours(expression: str, hours: int | None) -> None:
    assert schedule_interval_hours(expression) == hours


def test_definitions_are_json() -> None:
    """What jsonencode() renders is JSON once Terraform fills the references in."""
    json.dumps(definition(serving(retrain_on_drift=True), "retrain_cooldown"))


@pytest.fixture
def sfn_on_moto(monkeypatch: pytest.MonkeyPatch):
    moto = pytest.importorskip("moto", reason="the local extra (moto) is not installed")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    with moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def _literal_jobs() -> list:
    from mlops_dsl.aws.serving_workflows import DriftJob

    key = "arn:aws:kms:eu-west-1:123456789012:key/0123abcd-4567-89ef-0123-456789abcdef"
    return [DriftJob(variant=v, job_prefix="churn-prod-drift", index=i,
                     image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-prod/serving:cccccccccccc",
                     role_arn="arn:aws:iam::123456789012:role/churn-prod-drift-job",
                     package=f"s3://models-bucket/executions/e7/{v}/model.tar.gz",
                     capture=f"s3://capture-bucket/data-capture/ep/ep/{v}/", reports=f"s3://capture-bucket/drift-reports/ep/{v}",
                     endpoint="ep", metrics_namespace="MLOps/Drift", window_hours=1, instance_type="ml.m5.large",
                     volume_key=key, output_key=key, subnets=["subnet-0123456789abcdef0"],
                     security_groups=["sg-0123456789abcdef0"]) for i, v in enumerate(("champion", "challenger"))]


def _run_drift_machine(fail_variant: str | None, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    """The drift definition with its `.sync` task made the plain aws-sdk call (which moto runs), so
    the intrinsic functions, the parallel branches, the catch and the final choice run for real."""
    import time
    import uuid

    import boto3
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends

    from mlops_dsl.aws.serving_workflows import drift_definition

    original = SageMakerModelBackend.create_processing_job

    def create(self, **kwargs):  # type: ignore[no-untyped-def]
        if fail_variant and f"Variant={fail_variant}" in kwargs["app_specification"]["ContainerArguments"]:
            raise ValidationError(message="Could not find the image")
        return original(self, **kwargs)

    monkeypatch.setattr(SageMakerModelBackend, "create_processing_job", create)
    machine = drift_definition(_literal_jobs(), "test")
    for branch in machine["States"]["Variants"]["Branches"]:
        task = branch["States"][branch["StartAt"]]
        task["Resource"] = "arn:aws:states:::aws-sdk:sagemaker:createProcessingJob"
        task["ResultSelector"] = {"Variant": task["ResultSelector"]["Variant"], "Arn.$": "$.ProcessingJobArn"}
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name="drift", roleArn="arn:aws:iam::123456789012:role/drift-workflow",
                                   definition=json.dumps(machine))["stateMachineArn"]
    name = str(uuid.uuid4())
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    for _ in range(200):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.05)
    jobs = {j.processing_job_name: j for j in sagemaker_backends["123456789012"]["eu-west-1"].processing_jobs.values()}
    return {**described, "name": name}, jobs


def test_the_drift_machine_names_and_runs_one_job_per_variant_on_moto(sfn_on_moto, monkeypatch) -> None:
    import re

    described, jobs = _run_drift_machine(None, monkeypatch)
    assert described["status"] == "SUCCEEDED"
    pattern = pipeline_requests.service_model().operation_model("CreateProcessingJob").input_shape.members[
        "ProcessingJobName"].metadata["pattern"]
    assert len(jobs) == 2 and all(re.fullmatch(pattern, n) and len(n) <= 63 for n in jobs)
    assert sorted(n[:len("churn-prod-drift0")] for n in jobs) == ["churn-prod-drift0", "churn-prod-drift1"]
    assert len({n[-32:] for n in jobs}) == 1  # the MD5 of the one execution
    champion = next(j for n, j in jobs.items() if n.startswith("churn-prod-drift0"))
    assert champion.processing_output_config["Outputs"][0]["S3Output"]["S3Uri"] == \
        f"s3://capture-bucket/drift-reports/ep/champion/{described['name']}"


def test_a_failed_variant_fails_the_execution_after_the_others_ran(sfn_on_moto, monkeypatch) -> None:
    described, jobs = _run_drift_machine("challenger", monkeypatch)
    assert described["status"] == "FAILED" and described["error"] == "DriftJobFailed"
    assert [n[:len("churn-prod-drift0")] for n in jobs] == ["churn-prod-drift0"]  # champion's job still ran
