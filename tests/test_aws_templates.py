"""The AWS renderings of FeatureStore, TrainingInfrastructure and ModelServing, the network of
DataInfrastructure, validation at declaration, and the provider-range guarantee."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops_dsl import (
    AutoScaling,
    BlueGreen,
    DataInfrastructure,
    Dataset,
    Feature,
    FeatureGroup,
    FeatureStore,
    Image,
    IntegerRange,
    ModelServing,
    ParameterError,
    Platform,
    QualityGate,
    Rolling,
    Search,
    TrainingInfrastructure,
    Tuning,
    Variant,
    bindings,
)
from mlops_dsl.errors import BlueprintError, NamespaceError
from mlops_dsl.namespaces import parse
from mlops_dsl.pins import Pin
from mlops_dsl.terraform import Expr
from mlops_dsl.terraform.values import Call

from .conftest import NAMESPACES, ROOT, argument_paths, reference_schemas

TAGS = {"training": "aaaaaaaaaaaa", "serving": "bbbbbbbbbbbb"}
GROUP = FeatureGroup("customer", record_id="id", event_time="ts",
                     features=[Feature("id", "string"), Feature("ts", "fractional"), Feature("tenure", "integral")])
DATASET = Dataset(target="churned", id_column="id", numeric=["tenure"], categorical=["plan"])


def _platform(training_kwargs=None, serving_kwargs=None) -> Platform:
    data = DataInfrastructure()
    features = FeatureStore(data, groups=[GROUP])
    training = TrainingInfrastructure(data, features, **{"dataset": DATASET, **(training_kwargs or {})})
    serving = ModelServing(training, **(serving_kwargs or {}))
    return Platform("churn", cloud="aws").add(data, features, training, serving)


def pin(version: int = 7) -> Pin:
    return Pin(version=version, group="churn-prod", image="cccccccccccc", sha256="d" * 64,
               artifact=f"s3://churn-prod-models-333333333333/executions/e{version}/model.tar.gz")


def _stacks(platform: Platform, ns: str = "prod", pins: dict | None = None):
    """The platform's stacks; every serving variant pinned to version 7 unless `pins` says otherwise."""
    text = NAMESPACES.replace("    approval: manual\n", "    approval: manual\n    alerts: {emails: [a@b.io]}\n")
    serving = next((t for t in platform.templates if isinstance(t, ModelServing)), None)
    if pins is None and serving is not None:
        pins = {v.name: pin() for v in [*serving.variants, *([serving.shadow] if serving.shadow else [])]}
    namespace = replace(parse(text)[ns], pins={platform.name: pins or {}})
    return {b.template: b for b in platform.synth(namespace, image_tags=TAGS)}


def _resources(stack, kind: str) -> dict:
    return {r.name: r for r in stack.resources if r.type == kind}


def _text(value) -> str:
    return "\n".join(render_value(value))


def render_value(value):
    from mlops_dsl.terraform.hcl import expression

    return expression(value, 0)


def test_data_infrastructure_network_is_private() -> None:
    data = _stacks(_platform())["data"].stack
    subnets = _resources(data, "aws_subnet")
    assert [s.body["availability_zone"] for s in subnets.values()] == ["eu-west-1a", "eu-west-1b"]
    assert all(s.body["map_public_ip_on_launch"] is False for s in subnets.values())
    assert not [r for r in data.resources if r.type in ("aws_internet_gateway", "aws_nat_gateway")]
    endpoints = _resources(data, "aws_vpc_endpoint")
    services = {e.body["service_name"] for e in endpoints.values()}
    assert "com.amazonaws.eu-west-1.s3" in services and "com.amazonaws.eu-west-1.sagemaker.runtime" in services
    assert endpoints["s3"].body["vpc_endpoint_type"] == "Gateway"
    interface = [e for n, e in endpoints.items() if n != "s3"]
    assert len(interface) == 9 and all(e.body["private_dns_enabled"] is True for e in interface)
    default_sg = _resources(data, "aws_default_security_group")["default"]
    assert set(default_sg.body) == {"vpc_id"}  # no rules at all
    egress = _resources(data, "aws_vpc_security_group_egress_rule")
    assert not any("cidr_ipv4" in r.body for r in egress.values())  # nothing leaves for the internet
    flow = _resources(data, "aws_flow_log")["main"]
    assert flow.body["traffic_type"] == "ALL"
    groups = _resources(data, "aws_cloudwatch_log_group")
    assert all(g.body["kms_key_id"].text == "aws_kms_key.data.arn" for g in groups.values())
    assert {g.body["name"] for g in groups.values()} >= {"/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs"}
    catalog = _resources(data, "aws_glue_data_catalog_encryption_settings")["account"].body
    settings = catalog["data_catalog_encryption_settings"].body
    # The account's catalog is not tied to this platform's key (AWS managed aws/glue: review B8).
    assert settings["encryption_at_rest"].body == {"catalog_encryption_mode": "SSE-KMS"}
    assert settings["connection_password_encryption"].body == {"return_connection_password_encrypted": True}


def test_account_wide_settings_can_be_left_to_another_platform() -> None:
    data = DataInfrastructure(manage_account_settings=False)
    stack = Platform("churn", cloud="aws").add(data).synth(parse(NAMESPACES)["dev"])[0].stack
    types = {r.type for r in stack.resources}
    assert "aws_glue_data_catalog_encryption_settings" not in types
    assert "aws_glue_catalog_database" in types


def test_feature_store_wiring() -> None:
    stack = _stacks(_platform())["features"].stack
    group = _resources(stack, "aws_sagemaker_feature_group")["customer"]
    assert group.body["feature_group_name"] == "churn-prod-customer"
    assert group.lifecycle is not None and group.lifecycle.prevent_destroy
    assert [b.body["feature_type"] for b in group.body["feature_definition"]] == ["String", "Fractional", "Integral"]
    online = group.body["online_store_config"].body
    assert online["security_config"].body["kms_key_id"].text == "data.terraform_remote_state.data.outputs.kms_key_arn"
    offline = group.body["offline_store_config"].body["s3_storage_config"].body
    assert _text(offline["s3_uri"]) == \
        '"s3://${data.terraform_remote_state.data.outputs.bucket_names["processed"]}/feature-store"'
    assert group.body["role_arn"].text == "aws_iam_role.feature_store.arn"
    policy = _text(_resources(stack, "aws_iam_role_policy")["feature_store"].body["policy"])
    assert '"arn:aws:glue:eu-west-1:333333333333:table/sagemaker_featurestore/churn_prod_customer*"' in policy
    unprotected = Platform("churn", cloud="aws")
    data = DataInfrastructure()
    unprotected.add(data, FeatureStore(data, groups=[GROUP], protect_from_destroy=False))
    stack = unprotected.synth(parse(NAMESPACES)["dev"])[1].stack
    assert not _resources(stack, "aws_sagemaker_feature_group")["customer"].lifecycle.prevent_destroy


def _definition(training_stack) -> dict:
    pipeline = _resources(training_stack, "aws_sagemaker_pipeline")["training"]
    call = pipeline.body["pipeline_definition"]
    assert isinstance(call, Call) and call.name == "jsonencode"
    return call.args[0]


def test_training_wiring() -> None:
    stack = _stacks(_platform())["training"].stack
    repos = _resources(stack, "aws_ecr_repository")
    assert {r.body["name"] for r in repos.values()} == {"churn-prod/training", "churn-prod/serving"}
    for repo in repos.values():
        assert repo.body["image_tag_mutability"] == "IMMUTABLE"
        assert repo.body["image_scanning_configuration"].body["scan_on_push"] is True
        assert repo.body["encryption_configuration"].body["encryption_type"] == "KMS"
    assert set(_resources(stack, "aws_ecr_lifecycle_policy")) == {"training", "serving"}
    assert _resources(stack, "aws_sagemaker_model_package_group")["models"].body["model_package_group_name"] == \
        "churn-prod"
    schedule = _resources(stack, "aws_scheduler_schedule")["training"]
    assert schedule.body["schedule_expression"] == "cron(0 3 ? * MON *)"
    assert schedule.body["target"].body["arn"].text == "aws_sagemaker_pipeline.training.arn"
    assert schedule.body["kms_key_arn"] is not None
    policies = _resources(stack, "aws_iam_role_policy")
    jobs, orchestration = (_text(policies[n].body["policy"]) for n in ("execution", "pipeline"))
    # The pipeline's own role starts the jobs and passes the jobs' role; the jobs' role does neither.
    pipeline = _resources(stack, "aws_sagemaker_pipeline")["training"]
    assert pipeline.body["role_arn"].text == "aws_iam_role.pipeline.arn"
    assert "RoleArn = aws_iam_role.execution.arn" in _text(pipeline.body["pipeline_definition"])
    assert '"arn:aws:sagemaker:eu-west-1:333333333333:training-job/pipelines-*"' in orchestration
    assert 'Resource = [aws_iam_role.execution.arn]' in orchestration
    assert '"iam:PassedToService" = "sagemaker.amazonaws.com"' in orchestration
    assert '/executions/*"' in orchestration
    assert "sagemaker:Create" not in jobs and "iam:PassRole" not in jobs
    assert "data.terraform_remote_state.features.outputs.feature_group_arns[\"customer\"]" in jobs
    outputs = {o.name: o for o in stack.outputs}
    assert _text(outputs["training_image_uri"].value) == \
        '"${aws_ecr_repository.training.repository_url}:${local.training_image_tag}"'
    assert stack.locals == {"training_image_tag": "aaaaaaaaaaaa", "serving_image_tag": "bbbbbbbbbbbb"}


def test_serving_wiring() -> None:
    serving = {"variants": [Variant("champion", 0.9, initial_instance_count=2),
                            Variant("challenger", 0.1, initial_instance_count=2)],
               "autoscaling": AutoScaling(2, 6), "deployment": BlueGreen(traffic="CANARY")}
    stack = _stacks(_platform(serving_kwargs=serving))["serving"].stack
    models = _resources(stack, "aws_sagemaker_model")
    # The pinned version and image are part of the name: a new pin is a new model, rolled out.
    assert {m.body["name"] for m in models.values()} == {"churn-prod-serving-champion-v7-cccccccc",
                                                          "churn-prod-serving-challenger-v7-cccccccc"}
    container = models["variant_champion"].body["primary_container"].body
    assert _text(container["image"]) == '"${data.terraform_remote_state.training.outputs.repository_urls' \
                                        '["serving"]}:cccccccccccc"'
    assert container["model_data_url"] == pin().artifact
    assert models["variant_champion"].body["tags"] == {
        "mlops-dsl:variant": "champion",
        "mlops-dsl:model-package": "arn:aws:sagemaker:eu-west-1:333333333333:model-package/churn-prod/7",
        "mlops-dsl:artifact-sha256": "d" * 64}
    assert all(m.body["enable_network_isolation"] is True and "vpc_config" in m.body for m in models.values())
    config = _resources(stack, "aws_sagemaker_endpoint_configuration")["main"]
    assert config.body["name_prefix"] == "churn-prod-serving-" and config.lifecycle.create_before_destroy
    weights = [v.body["initial_variant_weight"] for v in config.body["production_variants"]]
    assert weights == [0.9, 0.1]
    capture = config.body["data_capture_config"].body
    assert capture["enable_capture"] is True and capture["kms_key_id"] is not None
    assert [c.body["capture_mode"] for c in capture["capture_options"]] == ["Input", "Output"]
    endpoint = _resources(stack, "aws_sagemaker_endpoint")["main"]
    assert endpoint.lifecycle.ignore_changes == ("endpoint_config_name",)  # the update step's (test_endpoint_update)
    deployment = _resources(stack, "terraform_data")["endpoint_update"].body["provisioner"].body["environment"]
    policy = deployment["MLOPS_DEPLOYMENT_CONFIG"].args[0]
    routing = policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY" and routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    assert [a["AlarmName"] for a in policy["AutoRollbackConfiguration"]["Alarms"]] == [
        "churn-prod-serving-champion-p99-latency", "churn-prod-serving-champion-5xx-rate",
        "churn-prod-serving-challenger-p99-latency", "churn-prod-serving-challenger-5xx-rate"]
    alarms = _resources(stack, "aws_cloudwatch_metric_alarm")
    assert alarms["latency_champion"].body["threshold"] == 500_000  # microseconds
    assert alarms["latency_champion"].body["treat_missing_data"] == "notBreaching"
    assert alarms["errors_champion"].body["treat_missing_data"] == "notBreaching"
    assert alarms["idle"].body["treat_missing_data"] == "breaching"
    targets = _resources(stack, "aws_appautoscaling_target")
    assert {t.body["min_capacity"] for t in targets.values()} == {2}
    assert _text(targets["variant_champion"].body["resource_id"]) == \
        '"endpoint/${aws_sagemaker_endpoint.main.name}/variant/champion"'
    topic = _resources(stack, "aws_sns_topic")["alarms"]
    assert topic.body["kms_master_key_id"].text == "aws_kms_key.alarms.arn"  # not alias/aws/sns
    assert [s.body["endpoint"] for s in _resources(stack, "aws_sns_topic_subscription").values()] == ["a@b.io"]
    # The drift job, not Model Monitor (an opt-in); drift notifies, retraining is an opt-in
    # (tests/test_drift_schedule.py, tests/test_retraining.py).
    assert "aws_sagemaker_monitoring_schedule" not in {r.type for r in stack.resources}
    assert _resources(stack, "aws_scheduler_schedule")["drift"].body["schedule_expression"] == "cron(0 * ? * * *)"
    assert {"drift_champion", "drift_challenger"} <= set(alarms)
    assert "aws_cloudwatch_event_target" not in {r.type for r in stack.resources}


def test_serving_retrains_on_drift_when_asked() -> None:
    stack = _stacks(_platform(serving_kwargs={"retrain_on_drift": True}))["serving"].stack
    target = _resources(stack, "aws_cloudwatch_event_target")["retrain_on_drift"]
    assert target.body["arn"].text == "aws_sfn_state_machine.retrain.arn"
    rule = _text(_resources(stack, "aws_cloudwatch_event_rule")["retrain_on_drift"].body["event_pattern"])
    assert "resources   = [aws_cloudwatch_metric_alarm.retrain_on_drift.arn]" in rule


def test_shadow_rolling_and_nvme_variants() -> None:
    serving = {"variants": [Variant("main", instance_type="ml.g5.xlarge")],
               "shadow": Variant("candidate", instance_type="ml.g5.xlarge"),
               "deployment": Rolling(), "retrain_on_drift": False}
    stack = _stacks(_platform(serving_kwargs=serving))["serving"].stack
    config = _resources(stack, "aws_sagemaker_endpoint_configuration")["main"]
    assert config.body["shadow_production_variants"].body["variant_name"] == "candidate"
    assert config.body["kms_key_arn"] is None
    assert [s.check_id for s in config.skips] == ["CKV_AWS_98"]
    update = _resources(stack, "terraform_data")["endpoint_update"].body["provisioner"].body
    policy = update["environment"]["MLOPS_DEPLOYMENT_CONFIG"].args[0]
    assert "RollingUpdatePolicy" in policy and "BlueGreenUpdatePolicy" not in policy
    assert "aws_cloudwatch_event_target" not in {r.type for r in stack.resources}


def test_serving_at_fixed_capacity_and_unmonitored() -> None:
    serving = {"autoscaling": None, "monitoring_schedule": None, "retrain_on_drift": False}
    types = {r.type for r in _stacks(_platform(serving_kwargs=serving))["serving"].stack.resources}
    assert "aws_sagemaker_endpoint" in types
    assert not types & {"aws_appautoscaling_target", "aws_appautoscaling_policy", "aws_sagemaker_monitoring_schedule",
                        "aws_sagemaker_data_quality_job_definition", "aws_cloudwatch_event_rule"}


@pytest.mark.parametrize(("build", "expected"), [
    (lambda t: ModelServing(t, monitoring_schedule=None, retrain_on_drift=True),
     "retrain_on_drift needs a monitoring_schedule, whose drift runs trigger it"),
    (lambda t: ModelServing(t, variants=[Variant("a", weight=0)]),
     "The 'variants[0].weight' parameter of ModelServing 'serving' must be a float in the range [1e-06, inf]. "
     "Got 0 instead."),
    (lambda t: ModelServing(t, variants=[Variant("a")], deployment=BlueGreen(traffic="CANARY")),
     "variants[0].initial_instance_count must be at least 2 for CANARY traffic shifting"),
    (lambda t: ModelServing(t, variants=[Variant("a", initial_instance_count=2)],
                            deployment=BlueGreen(traffic="LINEAR", linear_step_percent=10, wait_seconds=600)),
     "deployment: max_execution_timeout_seconds (3600) must exceed the sum of the waits (6300 s for LINEAR"),
    (lambda t: ModelServing(t, autoscaling=AutoScaling(min_capacity=3, max_capacity=2)),
     "autoscaling: min_capacity (3) must not exceed max_capacity (2)"),
    (lambda t: ModelServing(t, variants=[Variant("a", instance_type="m5.large")], deployment=Rolling()),
     "The 'variants[0].instance_type' parameter of ModelServing 'serving' must be a string of a SageMaker "
     "instance type of the ml. family"),
    (lambda t: ModelServing(t, variants=[Variant("a"), Variant("b")], shadow=Variant("c"), deployment=Rolling()),
     "shadow testing needs exactly one production variant; got 2"),
    (lambda t: ModelServing(t, monitoring_schedule="every hour"),
     "The 'monitoring_schedule' parameter of ModelServing 'serving' must be a string of a schedule expression"),
    (lambda t: ModelServing(t, image=Image("other"), deployment=Rolling()),
     "image 'other' must be the serving_image of TrainingInfrastructure 'training'"),
    (lambda t: TrainingInfrastructure(t.data, schedule="cron(0 3 * * *)"),
     "The 'schedule' parameter of TrainingInfrastructure 'training' must be a string of a schedule expression"),
    (lambda t: TrainingInfrastructure(t.data, instance_type="ml.m5"),
     "The 'instance_type' parameter of TrainingInfrastructure 'training' must be a string of a SageMaker"),
    (lambda t: TrainingInfrastructure(t.data, spot=True, max_wait_seconds=60),
     "max_wait_seconds (60) must be at least max_runtime_seconds (86400)"),
    (lambda t: TrainingInfrastructure(t.data, tuning=Tuning("m", [IntegerRange("d", 5, 2)])),
     "TrainingInfrastructure 'training': tuning.ranges[0]: low (5) must be below high (2)"),
    (lambda t: ModelServing(t, variants=[Variant(f"v{i}") for i in range(6)]),
     "6 variants need 12 rollback alarms; an endpoint's deployment takes at most 10, so at most 5 variants"),
    (lambda t: ModelServing(t, variants=[Variant("a"), Variant("b")], deployment=Rolling()),
     "a Rolling deployment cannot update an endpoint with several variants"),
    (lambda t: TrainingInfrastructure(t.data, instance_count=2),
     "instance_count is 2, but the training code is not distributed"),
    (lambda t: TrainingInfrastructure(t.data, tuning=Tuning("validation:roc_auc", [IntegerRange("max_depth", 2, 8)])),
     "tuning.objective_metric 'validation:roc_auc' is the held-out score the quality gate and promotion read"),
    (lambda t: TrainingInfrastructure(t.data, tuning=Tuning("validation:cv_roc_auc", [IntegerRange("max_depth", 2, 8)]),
                                      search=Search([IntegerRange("max_depth", 2, 8)])),
     "tuning and search are alternatives"),
    (lambda t: TrainingInfrastructure(t.data, hyperparameters={"_tuning_objective_metric": "x"}),
     "hyperparameters['_tuning_objective_metric']: names starting with '_' or 'sagemaker_' are SageMaker's own"),
    (lambda t: TrainingInfrastructure(t.data, gate=QualityGate("log_loss", 0.3)),
     "The 'gate.metric' parameter of TrainingInfrastructure 'training' must be one of 'roc_auc', 'accuracy'"),
    (lambda t: TrainingInfrastructure(t.data, dataset=Dataset("y", "id", numeric=["a", "y"])),
     "dataset: column 'y' appears in more than one of target, id_column, numeric and categorical"),
    (lambda t: FeatureStore(t.data, groups=[FeatureGroup(
        "grp", record_id="x", event_time="ts", features=[Feature("id", "string"), Feature("ts", "integral")])]),
     "groups[0]: record_id 'x' must be one of the features (id, ts)"),
    (lambda t: FeatureStore(t.data, groups=[GROUP], offline_zone="curated"),
     "offline_zone 'curated' is not one of the zones of DataInfrastructure 'data'"),
])
def test_each_validation_error_names_the_field(build, expected: str) -> None:
    training = TrainingInfrastructure(DataInfrastructure())
    with pytest.raises(ParameterError) as err:
        build(training)
    assert any(expected in p for p in err.value.problems), err.value.problems


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"name": "a-very-long-serving"},
     "ModelServing 'a-very-long-serving': name: the SageMaker name 'customer-churn-models-load-testing-eu1-a-very-"
     "long-serving-' is 59 characters; the limit is 37"),
    # (a model name cannot pass 63 characters once the 37-character prefix above fits)
])
def test_sagemaker_name_limits_are_checked_on_the_final_names(kwargs, expected) -> None:
    """The longest platform and namespace names whose bucket names still fit S3's 63 characters."""
    data = DataInfrastructure(zones=["raw", "models"])
    training = TrainingInfrastructure(data, dataset=DATASET)
    serving = ModelServing(training, capture_zone="raw", **kwargs)
    platform = Platform("customer-churn-models", cloud="aws").add(data, training, serving)
    ns = parse(NAMESPACES.replace("  prod:", "  load-testing-eu1:"))["load-testing-eu1"]
    with pytest.raises(BlueprintError) as err:
        platform.synth(ns, image_tags=TAGS)
    assert expected in str(err.value)
    assert "test_aws_templates.py:" in str(err.value) and "(namespace 'load-testing-eu1')" in str(err.value)


def test_every_template_works_with_its_defaults() -> None:
    """Every default, except the training data's columns, which no default can know."""
    data = DataInfrastructure()
    training = TrainingInfrastructure(data, dataset=DATASET)
    platform = Platform("churn", cloud="aws").add(data, FeatureStore(data, groups=[GROUP]), training,
                                                  ModelServing(training))
    assert [b.template for b in platform.synth(parse(NAMESPACES)["dev"], image_tags=TAGS)] == \
        ["data", "features", "training", "serving"]


def test_overrides_reach_nested_options_by_name() -> None:
    platform = _platform(serving_kwargs={"variants": [Variant("champion", initial_instance_count=2),
                                                      Variant("challenger", initial_instance_count=2)]})
    text = NAMESPACES + ("    overrides:\n      serving:\n        autoscaling: {max_capacity: 9}\n"
                         "        variants: {challenger: {instance_type: ml.c5.xlarge}}\n")
    serving = platform.resolve(parse(text)["prod"])["serving"]
    assert serving.autoscaling.max_capacity == 9 and serving.autoscaling.min_capacity == 1
    assert [v.instance_type for v in serving.variants] == ["ml.m5.large", "ml.c5.xlarge"]
    for bad, message in [
        ("autoscaling: {max_capcity: 9}", "autoscaling.max_capcity: AutoScaling has no field 'max_capcity'"),
        ("variants: {champ: {weight: 2.0}}", "variants.champ: no item named 'champ' (items: champion, challenger)"),
        ("autoscaling: {max_capacity: 0}", "The 'autoscaling.max_capacity' parameter of ModelServing 'serving'"),
    ]:
        with pytest.raises(NamespaceError) as err:
            platform.resolve(parse(NAMESPACES + f"    overrides:\n      serving:\n        {bad}\n")["prod"])
        assert any(message in p and "namespaces.prod.overrides.serving" in p for p in err.value.problems), \
            err.value.problems


def test_prod_gets_bigger_instances_and_more_capacity() -> None:
    prod = (ROOT / "terraform/prod/customer-churn/serving/main.tf").read_text()
    dev = (ROOT / "terraform/dev/customer-churn/serving/main.tf").read_text()
    assert 'instance_type          = "ml.c5.2xlarge"' in prod and "ml.c5.2xlarge" not in dev
    assert "max_capacity       = 12" in prod and "max_capacity       = 12" not in dev
    # Only the registry's namespace (dev) trains: prod has repositories and a role, no pipeline.
    training = (ROOT / "terraform/prod/customer-churn/training/main.tf").read_text()
    assert "aws_sagemaker_pipeline" not in training and "aws_ecr_repository" in training
    assert "aws_sagemaker_pipeline" in (ROOT / "terraform/dev/customer-churn/training/main.tf").read_text()


# --- provider range: every argument exists in hashicorp/aws 6.25 as well as in 5.100 ----------------

def test_every_emitted_argument_exists_in_aws_6_25() -> None:
    schemas = reference_schemas("aws_schemas.md")
    missing = []
    for build in _stacks(_platform(serving_kwargs={"shadow": Variant("shadow"), "deployment": Rolling()})).values():
        for resource in build.stack.resources:
            if resource.type == "terraform_data":
                continue  # Terraform's built-in resource: `terraform validate` checks it (test_validate)
            if resource.type not in schemas:
                # Not in the reference dump: `mlops validate --schema` checks it against the bindings.
                if bindings.resource(resource.type, False) is None:
                    missing.append(f"{resource.type} (no schema)")
                continue
            missing += [f"{resource.address}.{p}" for p in argument_paths(resource.body)
                        if p not in schemas[resource.type]]
    assert missing == []


def test_expr_indexing_renders_map_lookups() -> None:
    assert Expr("x.outputs.m", ("x",))["models"].text == 'x.outputs.m["models"]'
    assert Expr("x.ids", ("x",))[0].text == "x.ids[0]"


def _refs(parsed: dict, kind: str, name: str) -> set[str]:
    """Addresses a parsed resource references, as tfparse resolved them (it leaves out remote state,
    whose outputs it cannot know; our own reference check and terraform validate cover those)."""
    by_id = {item["id"]: item["__tfmeta"]["path"] for items in parsed.values() for item in items
             if "__tfmeta" in item and "path" in item["__tfmeta"]}
    item = next(i for i in parsed[kind] if i["__tfmeta"]["path"] == f"{kind}.{name}")
    found: set[str] = set()

    def walk(node) -> None:  # nested blocks carry their own __tfmeta
        if isinstance(node, dict):
            refs = node.get("__tfmeta", {}).get("references", []) if isinstance(node.get("__tfmeta"), dict) else []
            found.update(by_id[r["id"]] for r in refs if r["id"] in by_id)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(item)
    return found


@pytest.mark.parametrize("ns", ["dev", "prod"])
def test_parsed_hcl_references_between_resources(ns: str) -> None:
    import tfparse

    base = ROOT / "terraform" / ns / "customer-churn"
    features = tfparse.load_from_path(str(base / "features"))
    assert _refs(features, "aws_sagemaker_feature_group", "customer") >= {
        "aws_iam_role.feature_store", "aws_iam_role_policy.feature_store"}

    training = tfparse.load_from_path(str(base / "training"))
    registry = ns == "dev"  # the namespace that owns the registry trains; prod only serves
    if registry:
        assert _refs(training, "aws_sagemaker_pipeline", "training") >= {
            "aws_iam_role.execution", "aws_iam_role.pipeline", "aws_iam_role_policy.pipeline",
            "aws_ecr_repository.training",
            "aws_ecr_repository.serving", "aws_sagemaker_model_package_group.models",
            "aws_s3_object.training_config"}
        assert _refs(training, "aws_scheduler_schedule", "training") >= {
            "aws_sagemaker_pipeline.training", "aws_iam_role.scheduler"}
        assert _refs(training, "aws_sagemaker_model_package_group_policy", "models") >= {
            "aws_sagemaker_model_package_group.models"}
    else:
        assert "aws_sagemaker_pipeline" not in training

    serving = tfparse.load_from_path(str(base / "serving"))
    assert _refs(serving, "aws_sagemaker_endpoint", "main") >= {
        "aws_sagemaker_endpoint_configuration.main", "aws_cloudwatch_log_group.endpoint"}
    assert _refs(serving, "terraform_data", "endpoint_update") >= {
        "aws_sagemaker_endpoint_configuration.main", "aws_sagemaker_endpoint.main",
        "aws_cloudwatch_metric_alarm.latency_champion", "aws_cloudwatch_metric_alarm.errors_challenger"}
    assert _refs(serving, "aws_sagemaker_endpoint_configuration", "main") >= {
        "aws_sagemaker_model.variant_champion", "aws_sagemaker_model.variant_challenger"}
    assert _refs(serving, "aws_appautoscaling_policy", "variant_champion") >= {
        "aws_appautoscaling_target.variant_champion"}
    assert _refs(serving, "aws_sns_topic", "alarms") >= {"aws_kms_key.alarms"}
    if registry:
        assert _refs(serving, "aws_scheduler_schedule", "drift") >= {
            "aws_sfn_state_machine.drift", "aws_iam_role.drift_scheduler"}
    emails = [s["endpoint"] for s in serving.get("aws_sns_topic_subscription", [])]
    assert emails == (["ml-oncall@example.com"] if ns == "prod" else [])


def test_pinned_serving_images_never_expire_and_rollback_alarms_are_readable() -> None:
    stack = _stacks(_platform(serving_kwargs={"variants": [Variant("champion"), Variant("challenger")]}),
                    pins={"champion": pin(7), "challenger": replace(pin(6), image="eeeeeeeeeeee")})["training"].stack
    rules = _resources(stack, "aws_ecr_lifecycle_policy")["serving"].body["policy"].args[0]["rules"]
    assert [(r["rulePriority"], r["selection"].get("tagPrefixList")) for r in rules] == [
        (1, ["cccccccccccc"]), (2, ["eeeeeeeeeeee"]), (3, None)]
    assert rules[-1]["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30}
    training_rules = _resources(stack, "aws_ecr_lifecycle_policy")["training"].body["policy"].args[0]["rules"]
    assert len(training_rules) == 1
    hosting = _text(_resources(stack, "aws_iam_role_policy")["hosting"].body["policy"])
    assert '"arn:aws:cloudwatch:eu-west-1:333333333333:alarm:churn-prod-*"' in hosting
    # The models' role starts no job and passes no role; the jobs' role reads no alarm.
    assert "sagemaker:Create" not in hosting and "iam:PassRole" not in hosting
    assert "cloudwatch:DescribeAlarms" not in _text(_resources(stack, "aws_iam_role_policy")["execution"]
                                                    .body["policy"])
    serving = _stacks(_platform())["serving"].stack
    model = next(iter(_resources(serving, "aws_sagemaker_model").values()))
    assert model.body["execution_role_arn"].text == "data.terraform_remote_state.training.outputs.hosting_role_arn"
    features = _text(_resources(_stacks(_platform())["features"].stack, "aws_iam_role_policy")["feature_store"]
                     .body["policy"])
    assert '"s3:PutObjectAcl"' in features


def test_a_schedule_that_cannot_start_the_pipeline_and_a_failed_execution_alert() -> None:
    stack = _stacks(_platform())["training"].stack
    schedule = _resources(stack, "aws_scheduler_schedule")["training"]
    target = schedule.body["target"].body
    assert target["dead_letter_config"].body["arn"].text == "aws_sqs_queue.schedule_dead_letters.arn"
    assert schedule.body["group_name"].text == "aws_scheduler_schedule_group.training.name"
    queue = _resources(stack, "aws_sqs_queue")["schedule_dead_letters"]
    assert queue.body["kms_master_key_id"] is not None
    policy = _text(_resources(stack, "aws_iam_role_policy")["scheduler"].body["policy"])
    assert '"sqs:SendMessage"' in policy and '"kms:Decrypt"' in policy
    alarms = _resources(stack, "aws_cloudwatch_metric_alarm")
    assert {a.body["metric_name"] for a in alarms.values()} == {
        "InvocationDroppedCount", "TargetErrorCount", "ApproximateNumberOfMessagesVisible"}
    assert all(a.body["alarm_actions"][0].text == "aws_sns_topic.alarms.arn" for a in alarms.values())
    rule = _text(_resources(stack, "aws_cloudwatch_event_rule")["pipeline_failed"].body["event_pattern"])
    assert '"SageMaker Model Building Pipeline Execution Status Change"' in rule and '"Failed"' in rule
    assert _resources(stack, "aws_cloudwatch_event_target")["pipeline_failed"].body["arn"].text == \
        "aws_sns_topic.alarms.arn"
    topic_policy = _text(_resources(stack, "aws_sns_topic_policy")["alarms"].body["policy"])
    assert '"events.amazonaws.com"' in topic_policy and '"cloudwatch.amazonaws.com"' in topic_policy


def test_two_model_servings_serve_one_pin_as_two_models() -> None:
    """A SageMaker model's name is the account's once: `lookup` beside `serving`, both serving the
    champion's pin, must not render the same one (the second apply would fail on AWS; moto replaced)."""
    data = DataInfrastructure()
    features = FeatureStore(data, groups=[GROUP])
    training = TrainingInfrastructure(data, features, dataset=DATASET)
    one = [Variant("champion", 1.0)]
    platform = Platform("churn", cloud="aws").add(
        data, features, training, ModelServing(training, variants=one),
        ModelServing(training, name="lookup", variants=one, monitoring_schedule=None))
    stacks = _stacks(platform)
    names = {t: [m.body["name"] for m in _resources(stacks[t].stack, "aws_sagemaker_model").values()]
             for t in ("serving", "lookup")}
    assert names == {"serving": ["churn-prod-serving-champion-v7-cccccccc"],
                     "lookup": ["churn-prod-lookup-champion-v7-cccccccc"]}


def test_a_name_two_stacks_render_is_a_blueprint_error_naming_both() -> None:
    """Two ModelServing templates with drift jobs would both create the namespace's drift roles."""
    data = DataInfrastructure()
    features = FeatureStore(data, groups=[GROUP])
    training = TrainingInfrastructure(data, features, dataset=DATASET)
    one = [Variant("champion", 1.0)]
    platform = Platform("churn", cloud="aws").add(
        data, features, training, ModelServing(training, variants=one), ModelServing(training, name="lookup",
                                                                                     variants=one))
    with pytest.raises(BlueprintError) as refused:
        _stacks(platform)
    assert "templates 'serving' and 'lookup' both create aws_iam_role 'churn-prod-drift-job'" in str(refused.value)
