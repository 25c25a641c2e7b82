"""Inference modes (README: Inference modes): batch inference on a schedule, serverless variants and
multi-model variants, as blueprint rules and as the Terraform and SageMaker requests they render."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mlops_dsl import (
    BatchInference,
    BlueGreen,
    DataInfrastructure,
    FeatureStore,
    ModelServing,
    MultiModel,
    Platform,
    Serverless,
    TrainingInfrastructure,
    Variant,
)
from mlops_dsl.aws import state_machine_requests
from mlops_dsl.aws.pipeline_requests import definition_of
from mlops_dsl.errors import BlueprintError, ParameterError
from mlops_dsl.namespaces import parse
from mlops_dsl.pins import Pin

from .conftest import NAMESPACES
from .test_aws_templates import DATASET, GROUP, TAGS, _resources, _text, pin

SERVERLESS = {"deployment": None, "autoscaling": None, "data_capture_percent": 0, "monitoring_schedule": None}


def _training() -> TrainingInfrastructure:
    data = DataInfrastructure(zones=["raw", "processed", "models", "experiments"])
    return TrainingInfrastructure(data, FeatureStore(data, groups=[GROUP]), dataset=DATASET)


def _platform(*extra_builders) -> Platform:
    training = _training()
    serving = ModelServing(training, variants=[Variant("champion"), Variant("challenger")])
    extra = [build(training, serving) for build in extra_builders]
    return Platform("churn", cloud="aws").add(training.data, training.features, training, serving, *extra)


def _stacks(platform: Platform, pins: dict[str, Pin] | None = None, ns: str = "prod"):
    pins = {"champion": pin(7), "challenger": pin(8)} if pins is None else pins
    namespace = replace(parse(NAMESPACES)[ns], pins={platform.name: pins})
    return {b.template: b.stack for b in platform.synth(namespace, image_tags=TAGS)}


def _serverless(training, serving, **kwargs):
    return ModelServing(training, name="serverless", variants=[
        Variant("champion", serverless=Serverless(memory_size_mb=3072, max_concurrency=20, provisioned_concurrency=2))],
        **{**SERVERLESS, **kwargs})


def _fleet(training, serving, **kwargs):
    return ModelServing(training, name="fleet", variants=[
        Variant("fleet", multi_model=MultiModel(models=["champion", "challenger"], max_loaded=3))],
        autoscaling=None, monitoring_schedule=None, **kwargs)


def _batch(training, serving, **kwargs):
    return BatchInference(serving, **kwargs)


# --- serverless -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "field", "why"), [
    ({"deployment": BlueGreen()}, "deployment", "rolling updates exclude serverless"),
    ({"autoscaling": __import__("mlops_dsl").AutoScaling()}, "autoscaling", "max_concurrency"),
    ({"data_capture_percent": 10}, "data_capture_percent (10)", "does not capture"),
    ({"monitoring_schedule": "rate(1 hour)"}, "monitoring_schedule", "captured data"),
    ({"variants": [Variant("a", serverless=Serverless()), Variant("b", serverless=Serverless())]}, "variants",
     "exactly one production variant"),
    ({"variants": [Variant("a", instance_type="ml.c5.xlarge", serverless=Serverless())]},
     "instance_type ('ml.c5.xlarge')", "has no instances"),
    ({"variants": [Variant("a", serverless=Serverless(), multi_model=MultiModel(models=["x"]))]},
     "serverless and multi_model", "does not host multi-model"),
    ({"variants": [Variant("a", serverless=Serverless(max_concurrency=2, provisioned_concurrency=3))]},
     "provisioned_concurrency (3)", "must not exceed max_concurrency"),
])
def test_what_serverless_excludes_is_a_blueprint_error_naming_the_field(change, field, why) -> None:
    with pytest.raises(ParameterError) as error:
        _serverless(_training(), None, **change) if "variants" not in change else \
            ModelServing(_training(), name="serverless", **{**SERVERLESS, **change})
    assert field in str(error.value) and why in str(error.value)


@pytest.mark.parametrize(("memory", "ok"), [(1024, True), (6144, True), (1536, False), (8192, False)])
def test_serverless_memory_is_1_to_6_gb_in_1_gb_steps(memory: int, ok: bool) -> None:
    if ok:
        assert Serverless(memory_size_mb=memory).memory_size_mb == memory
        return
    with pytest.raises(ParameterError, match="memory_size_mb"):
        _serverless(_training(), None).with_overrides({"variants": {"champion": {"serverless": {
            "memory_size_mb": memory}}}})


def test_an_instance_endpoint_keeps_its_guarded_deployment_and_may_capture_nothing() -> None:
    with pytest.raises(ParameterError, match="None is only for a serverless variant"):
        ModelServing(_training(), deployment=None)
    with pytest.raises(ParameterError, match="data_capture_percent is 0 but the drift job"):
        ModelServing(_training(), data_capture_percent=0)
    training = _training()
    quiet = ModelServing(training, data_capture_percent=0, monitoring_schedule=None)
    platform = Platform("churn", cloud="aws").add(training.data, training.features, training, quiet)
    config = _resources(_stacks(platform, {"champion": pin(7)})["serving"],
                        "aws_sagemaker_endpoint_configuration")["main"].body
    assert config.get("data_capture_config") is None and config["kms_key_arn"] is not None


def test_a_serverless_variant_renders_serverless_config_and_nothing_it_excludes() -> None:
    stack = _stacks(_platform(_serverless))["serverless"]
    config = _resources(stack, "aws_sagemaker_endpoint_configuration")["main"].body
    variant = config["production_variants"][0].body
    assert variant["serverless_config"].body == {"memory_size_in_mb": 3072, "max_concurrency": 20,
                                                 "provisioned_concurrency": 2}
    assert "instance_type" not in variant and "initial_instance_count" not in variant
    assert config.get("data_capture_config") is None and config.get("kms_key_arn") is None
    model = _resources(stack, "aws_sagemaker_model")["variant_champion"]
    assert model.body["enable_network_isolation"] is False and model.body.get("vpc_config") is None
    assert {s.check_id for s in model.skips} == {"CKV_AWS_370"}
    # Its own model name beside the instance endpoint's model of the same pin.
    assert model.body["name"] == "churn-prod-serverless-champion-v7-cccccccc"
    # No guarded update step: Terraform owns the configuration name.
    endpoint = _resources(stack, "aws_sagemaker_endpoint")["main"]
    assert endpoint.lifecycle is None and not _resources(stack, "terraform_data")
    assert not _resources(stack, "aws_appautoscaling_target") and not _resources(stack, "aws_sfn_state_machine")


def test_serverless_and_multi_model_are_clear_errors_on_azure() -> None:
    from .test_azure import NAMESPACES as AZURE

    for build, field in ((_serverless, "serverless: Azure ML has no serverless hosting"),
                         (_fleet, "multi_model: an Azure ML online deployment serves one model")):
        training = _training()
        platform = Platform("fin", cloud="azure").add(training.data, training.features, training,
                                                      build(training, None))
        with pytest.raises(BlueprintError, match=r"variants\[0\]\." + field):
            platform.synth(parse(AZURE)["dev"], image_tags=TAGS)


# --- multi-model ----------------------------------------------------------------------------------

def test_a_multi_model_variant_serves_copies_of_the_pinned_artifacts_from_one_prefix() -> None:
    stack = _stacks(_platform(_fleet))["fleet"]
    copies = _resources(stack, "aws_s3_object_copy")
    prefix = "multi-model/churn-prod-fleet/fleet/"
    assert {c.body["key"] for c in copies.values()} == {prefix + "champion-v7.tar.gz", prefix + "challenger-v8.tar.gz"}
    champion = copies["model_fleet_champion"].body
    assert champion["source"] == "churn-prod-models-333333333333/executions/e7/model.tar.gz"
    assert champion["server_side_encryption"] == "aws:kms"
    assert champion["kms_key_id"].text == "data.terraform_remote_state.data.outputs.kms_key_arn"
    assert champion["tags"]["mlops-dsl:artifact-sha256"] == "d" * 64
    model = _resources(stack, "aws_sagemaker_model")["variant_fleet"]
    container = model.body["primary_container"].body
    assert container["mode"] == "MultiModel"
    assert _text(container["model_data_url"]).endswith('/multi-model/churn-prod-fleet/fleet/"')
    assert container["environment"]["MLOPS_MULTI_MODEL_MAX_LOADED"] == "3"
    assert container["multi_model_config"].body == {"model_cache_setting": "Enabled"}
    assert model.body["enable_network_isolation"] is True and model.body["vpc_config"] is not None
    targets = {o.name: o.value for o in stack.outputs}["target_models"]
    assert targets == {"champion": "champion-v7.tar.gz", "challenger": "challenger-v8.tar.gz"}


def test_a_promotion_is_a_new_object_under_the_prefix_not_a_new_model() -> None:
    before = _stacks(_platform(_fleet))["fleet"]
    after = _stacks(_platform(_fleet), {"champion": pin(9), "challenger": pin(8)})["fleet"]
    old, new = ({c.body["key"] for c in _resources(s, "aws_s3_object_copy").values()} for s in (before, after))
    assert old ^ new == {"multi-model/churn-prod-fleet/fleet/champion-v7.tar.gz",
                                          "multi-model/churn-prod-fleet/fleet/champion-v9.tar.gz"}
    names = [_resources(s, "aws_sagemaker_model")["variant_fleet"].body["name"] for s in (before, after)]
    assert names[0] == names[1]


def test_multi_model_rules() -> None:
    training = _training()
    with pytest.raises(ParameterError, match="monitoring_schedule: the drift job compares"):
        ModelServing(training, name="fleet", autoscaling=None,
                     variants=[Variant("fleet", multi_model=MultiModel(models=["a"]))])
    with pytest.raises(ParameterError, match=r"variants\[0\]\.multi_model\.models.*unique"):
        ModelServing(training, name="fleet", monitoring_schedule=None,
                     variants=[Variant("fleet", multi_model=MultiModel(models=["a", "a"]))])
    with pytest.raises(ParameterError, match="'fleet' is both the multi-model variant and one of its models"):
        ModelServing(training, name="fleet", monitoring_schedule=None,
                     variants=[Variant("fleet", multi_model=MultiModel(models=["fleet"]))])
    platform = _platform(_fleet)
    mixed = {"champion": pin(7), "challenger": replace(pin(8), image="eeeeeeeeeeee")}
    with pytest.raises(BlueprintError, match="run different serving images"):
        _stacks(platform, mixed)
    only = _stacks(platform, {"champion": pin(7)})
    assert "fleet: model challenger: no version pinned" in " ".join(only["fleet"].notes)


# --- batch inference ------------------------------------------------------------------------------

def _definition(stack) -> dict:
    machine = _resources(stack, "aws_sfn_state_machine")["batch"]
    return definition_of(machine.body["definition"])  # type: ignore[return-value]


def test_batch_inference_runs_a_transform_of_the_pinned_version_on_a_schedule() -> None:
    stack = _stacks(_platform(_batch))["batch"]
    model = _resources(stack, "aws_sagemaker_model")["batch"].body
    assert model["primary_container"].body["model_data_url"] == "s3://churn-prod-models-333333333333/executions/e7/model.tar.gz"
    assert model["enable_network_isolation"] is True and model["vpc_config"] is not None
    assert model["execution_role_arn"].text == "aws_iam_role.batch_job.arn"
    task = _definition(stack)["States"]["Transform"]
    assert task["Resource"] == "arn:aws:states:::sagemaker:createTransformJob.sync"
    assert task["TimeoutSeconds"] == 240 * 60
    request = task["Parameters"]
    assert request["TransformJobName.$"] == "States.Format('churn-prod-batch-{}', States.Hash($$.Execution.Id, 'MD5'))"
    assert request["TransformResources"]["VolumeKmsKeyId"].text.endswith("kms_key_arn")
    assert request["TransformOutput"]["KmsKeyId"].text.endswith("kms_key_arn")
    assert _text(request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]).endswith('/batch/input/"')
    assert "$$.Execution.Name" in _text(request["TransformOutput"]["S3OutputPath.$"])
    schedule = _resources(stack, "aws_scheduler_schedule")["batch"].body
    assert schedule["schedule_expression"] == "cron(0 4 * * ? *)"
    alarms = {a.body["alarm_name"] for a in _resources(stack, "aws_cloudwatch_metric_alarm").values()}
    assert "churn-prod-batch-failed" in alarms
    # The job's role reads the input prefix and writes the output prefix, nothing wider.
    policy = _text(_resources(stack, "aws_iam_role_policy")["batch_job"].body["policy"])
    assert '/batch/input/*"' in policy and '/batch/predictions/*"' in policy and "s3:DeleteObject" not in policy


def test_the_transform_request_is_checked_against_botocore() -> None:
    definition = _definition(_stacks(_platform(_batch))["batch"])
    problems, checked = state_machine_requests.check_definition(definition, "batch")
    assert problems == [] and checked >= 15
    broken = json.loads(json.dumps(definition, default=lambda v: "arn:aws:kms:eu-west-1:1:key/x"))
    broken["States"]["Transform"]["Parameters"]["TransformResources"]["InstanceCount"] = 0
    broken["States"]["Transform"]["Parameters"]["TransformInput"]["SplitType"] = "Lines"
    problems, _ = state_machine_requests.check_definition(broken, "batch")
    assert any("InstanceCount" in p for p in problems) and any("SplitType" in p for p in problems)


def test_job_names_are_unique_per_execution_and_within_sagemaker_s_limit() -> None:
    request = _definition(_stacks(_platform(_batch))["batch"])["States"]["Transform"]["Parameters"]
    name = state_machine_requests.sample(request["TransformJobName.$"])
    assert len(name) <= 63 and name.startswith("churn-prod-batch-") and len(name.rsplit("-", 1)[1]) == 32


def test_batch_inference_without_a_pin_runs_nothing() -> None:
    stack = _stacks(_platform(_batch), {"challenger": pin(8)})["batch"]
    assert not _resources(stack, "aws_sfn_state_machine") and not _resources(stack, "aws_sagemaker_model")
    assert "champion: no model version pinned" in " ".join(stack.notes)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"variant": "nope"}, "variant 'nope' is not a production variant"),
    ({"input_zone": "gold"}, "input_zone 'gold' is not one of the data zones"),
    ({"output_zone": "processed", "output_prefix": "batch/input/out/"}, "overlaps input_prefix"),
    ({"input_prefix": "batch/input"}, "a key prefix ending in '/'"),
    ({"max_payload_mb": 101}, "max_payload_mb"),
])
def test_batch_inference_rules(kwargs, message) -> None:
    training = _training()
    serving = ModelServing(training)
    with pytest.raises(ParameterError, match=message):
        BatchInference(serving, **kwargs)


# --- the emulator ---------------------------------------------------------------------------------

def test_the_emulator_validates_state_machine_definitions_as_aws_answers(aws_emulator) -> None:
    """The AWS provider validates a definition before it creates a state machine; moto 5.2.5 has no
    ValidateStateMachineDefinition (emulator_modes.py), so the batch stack's could not apply locally."""
    import boto3

    sfn = boto3.client("stepfunctions", endpoint_url=aws_emulator["endpoint"], region_name=aws_emulator["region"])
    definition = _definition(_stacks(_platform(_batch))["batch"])
    text = json.dumps(definition, default=lambda v: "arn:aws:kms:eu-west-1:1:key/x")
    answer = sfn.validate_state_machine_definition(definition=text, type="STANDARD")
    assert answer["result"] == "OK" and answer["diagnostics"] == []
    broken = json.loads(text)
    broken["StartAt"] = "Nowhere"
    del broken["States"]["Transform"]["End"]
    answer = sfn.validate_state_machine_definition(definition=json.dumps(broken), type="STANDARD")
    assert answer["result"] == "FAIL"
    assert {d["code"] for d in answer["diagnostics"]} == {"MISSING_TRANSITION_TARGET", "SCHEMA_VALIDATION_FAILED"}
    assert sfn.validate_state_machine_definition(definition="{", type="STANDARD")["diagnostics"][0]["code"] == \
        "INVALID_JSON_DESCRIPTION"
