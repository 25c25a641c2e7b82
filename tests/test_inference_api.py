"""ModelServing(api=Api(...)) and online-feature variants: what the stacks render, on AWS and Azure.

AWS: the REST API's AWS integration to InvokeEndpoint (its role allowed only that endpoint),
AWS_IAM, throttling and the usage plan, encrypted logs, private (execute-api VPC endpoint, a
resource policy that denies any other path) or regional per namespace override; an online-feature
variant without network isolation and with a role of its own groups. Then the rendering through
`mlops validate --schema` and checkov (`terraform validate` runs on the committed tree, whose
customer-churn serving stacks hold the private API).
Azure: the private scoring URI, and the blueprint errors for what it does not render.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from mlops_dsl import (
    Api,
    DataInfrastructure,
    Dataset,
    Feature,
    FeatureGroup,
    FeatureStore,
    ModelServing,
    OnlineFeatures,
    ParameterError,
    Platform,
    TrainingInfrastructure,
    Variant,
)
from mlops_dsl.errors import BlueprintError
from mlops_dsl.namespaces import parse

from . import test_azure
from .conftest import NAMESPACES, ROOT
from .test_aws_data import _json_documents
from .test_aws_templates import _stacks as aws_stacks
from .test_aws_templates import _text

GROUP = FeatureGroup("customer", record_id="id", event_time="ts", features=[
    Feature("id", "string"), Feature("ts", "fractional"), Feature("tenure", "integral"), Feature("plan", "string"),
    Feature("unused", "string")])
DATASET = Dataset(target="churned", id_column="id", numeric=["tenure", "calls"], categorical=["plan"])


DEFAULT_API = Api()


def _platform(api: Api | None = DEFAULT_API, online: bool = True, cloud: str = "aws", **serving) -> Platform:
    data = DataInfrastructure()
    features = FeatureStore(data, groups=[GROUP])
    training = TrainingInfrastructure(data, features, dataset=DATASET)
    variants = [Variant("champion", weight=0.9),
                Variant("online", weight=0.1, online_features=OnlineFeatures(groups=["customer"], timeout_ms=250))
                if online else Variant("challenger", weight=0.1)]
    served = ModelServing(training, variants=variants, features=features if online else None, api=api, **serving)
    return Platform("churn", cloud=cloud).add(data, features, training, served)


def _by(stack, kind: str) -> dict:
    return {r.name: r for r in stack.resources if r.type == kind}


def _policy(resource) -> dict:
    """The document of an inline or resource policy: the argument of its jsonencode()."""
    return resource.body["policy"].args[0]


def test_the_private_api_calls_invoke_endpoint_itself_through_the_vpc_endpoint() -> None:
    serving = aws_stacks(_platform(Api(rate_limit=50, burst_limit=80, require_api_key=True,
                                       daily_quota=10000)))["serving"].stack
    integration = _by(serving, "aws_api_gateway_integration")["invocations"].body
    assert integration["type"] == "AWS" and integration["integration_http_method"] == "POST"
    assert _text(integration["uri"]) == ('"arn:aws:apigateway:eu-west-1:runtime.sagemaker:path/endpoints/'
                                         '${aws_sagemaker_endpoint.main.name}/invocations"')
    assert integration["request_parameters"]["integration.request.header.Content-Type"] == \
        "method.request.header.Content-Type"
    # The integration's role may invoke this endpoint and nothing else.
    statements = _policy(_by(serving, "aws_iam_role_policy")["inference_api"])["Statement"]
    assert [(s["Action"], _text(s["Resource"])) for s in statements] == [
        (["sagemaker:InvokeEndpoint"], "[aws_sagemaker_endpoint.main.arn]")]
    assert _text(integration["credentials"]) == "aws_iam_role.inference_api.arn"
    trust = _text(_by(serving, "aws_iam_role")["inference_api"].body["assume_role_policy"])
    assert "apigateway.amazonaws.com" in trust
    method = _by(serving, "aws_api_gateway_method")["invocations"].body
    assert method["authorization"] == "AWS_IAM" and method["api_key_required"] is True
    assert method["request_parameters"]["method.request.header.Content-Type"] is True  # validated: required

    rest = _by(serving, "aws_api_gateway_rest_api")["inference"].body
    assert rest["endpoint_configuration"].body["types"] == ["PRIVATE"]
    vpce = _by(serving, "aws_vpc_endpoint")["execute_api"].body
    assert vpce["service_name"] == "com.amazonaws.eu-west-1.execute-api" and vpce["private_dns_enabled"] is True
    ingress = _by(serving, "aws_vpc_security_group_ingress_rule")["execute_api_https"].body
    assert ingress["cidr_ipv4"] == DataInfrastructure().vpc_cidr and ingress["from_port"] == 443
    policy = _policy(_by(serving, "aws_api_gateway_rest_api_policy")["inference"])["Statement"]
    assert [s["Effect"] for s in policy] == ["Allow", "Deny"]
    assert policy[0]["Principal"] == {"AWS": "arn:aws:iam::333333333333:root"}
    assert _text(policy[1]["Condition"]["StringNotEquals"]["aws:SourceVpce"]) == "aws_vpc_endpoint.execute_api.id"

    settings = _by(serving, "aws_api_gateway_method_settings")["all"].body["settings"].body
    assert (settings["throttling_rate_limit"], settings["throttling_burst_limit"]) == (50, 80)
    assert settings["data_trace_enabled"] is False and settings["logging_level"] == "ERROR"
    plan = _by(serving, "aws_api_gateway_usage_plan")["inference"].body
    assert plan["quota_settings"].body == {"limit": 10000, "period": "DAY"}
    assert plan["throttle_settings"].body == {"rate_limit": 50, "burst_limit": 80}
    stage = _by(serving, "aws_api_gateway_stage")["inference"].body
    assert stage["xray_tracing_enabled"] is True
    assert _text(stage["access_log_settings"].body["destination_arn"]) == "aws_cloudwatch_log_group.api_access.arn"
    groups = _by(serving, "aws_cloudwatch_log_group")
    assert _text(groups["api_execution"].body["name"]) == \
        '"API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.inference.id}/v1"'
    for name in ("api_access", "api_execution"):
        assert "kms_key_arn" in _text(groups[name].body["kms_key_id"])
    assert "aws_api_gateway_account" in {r.type for r in serving.resources}
    assert {o.name for o in serving.outputs} >= {"api_invoke_url", "api_id", "api_usage_plan_id"}


def test_without_api_keys_the_stage_throttles_and_no_usage_plan_pretends_to() -> None:
    serving = aws_stacks(_platform(Api(rate_limit=50, burst_limit=80)))["serving"].stack
    settings = _by(serving, "aws_api_gateway_method_settings")["all"].body["settings"].body
    assert (settings["throttling_rate_limit"], settings["throttling_burst_limit"]) == (50, 80)
    assert not _by(serving, "aws_api_gateway_usage_plan")  # its limits would count per key: none here
    assert _by(serving, "aws_api_gateway_method")["invocations"].body["api_key_required"] is False
    assert "api_usage_plan_id" not in {o.name for o in serving.outputs}


def test_a_namespace_makes_the_api_public_by_override_and_waf_is_optional() -> None:
    text = NAMESPACES + "    overrides:\n      serving:\n        api:\n          access: public\n"
    platform = _platform(Api(waf_web_acl_arn="arn:aws:wafv2:eu-west-1:333333333333:regional/webacl/edge/"
                                              "0c1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8"))
    namespace = replace(parse(text)["prod"], pins={"churn": {v: _pin() for v in ("champion", "online")}})
    serving = {b.template: b for b in platform.synth(namespace, image_tags={"training": "a" * 12,
                                                                            "serving": "b" * 12})}["serving"].stack
    rest = _by(serving, "aws_api_gateway_rest_api")["inference"].body
    assert rest["endpoint_configuration"].body["types"] == ["REGIONAL"]
    assert "aws_vpc_endpoint" not in {r.type for r in serving.resources}
    assert [s["Effect"] for s in _policy(_by(serving, "aws_api_gateway_rest_api_policy")["inference"])
            ["Statement"]] == ["Allow"]
    waf = _by(serving, "aws_wafv2_web_acl_association")["inference"].body
    assert _text(waf["resource_arn"]) == "aws_api_gateway_stage.inference.arn"
    # The dev namespace keeps the default: private.
    dev = aws_stacks(_platform(), "dev")["serving"].stack
    assert _by(dev, "aws_api_gateway_rest_api")["inference"].body["endpoint_configuration"].body["types"] == \
        ["PRIVATE"]


def _pin():
    from .test_aws_templates import pin

    return pin()


def test_an_online_variant_runs_without_isolation_with_a_role_of_its_groups() -> None:
    serving = aws_stacks(_platform(api=None))["serving"].stack
    models = _by(serving, "aws_sagemaker_model")
    assert models["variant_champion"].body["enable_network_isolation"] is True
    assert "hosting_role_arn" in _text(models["variant_champion"].body["execution_role_arn"])
    online = models["variant_online"].body
    assert online["enable_network_isolation"] is False
    assert _text(online["execution_role_arn"]) == "aws_iam_role.online_features_online.arn"
    assert "vpc_config" in online  # still in the private subnets, through the interface endpoints
    environment = online["primary_container"].body["environment"]
    config = environment["ONLINE_FEATURES"].args[0]
    assert _text(config["groups"][0]["name"]) == \
        'data.terraform_remote_state.features.outputs.feature_group_names["customer"]'
    # Only the group's features the model reads: not the id, the event time or `unused`.
    assert {k: v for k, v in config["groups"][0].items() if k != "name"} == \
        {"record_id": "id", "features": ["tenure", "plan"]}
    assert (config["region"], config["timeout_ms"]) == ("eu-west-1", 250)
    statements = {s["Sid"]: s for s in _policy(_by(serving, "aws_iam_role_policy")["online_features_online"])
                  ["Statement"]}
    reads = statements["ReadOnlineFeatures"]
    assert reads["Action"] == ["sagemaker:GetRecord", "sagemaker:BatchGetRecord"]
    assert [_text(r) for r in reads["Resource"]] == \
        ['data.terraform_remote_state.features.outputs.feature_group_arns["customer"]']
    assert {"ReadModelArtifacts", "PullServingImage", "NetworkInterfaces", "DecryptOnlineStore"} <= set(statements)
    assert 'repository/churn-prod/serving' in json.dumps(statements["PullServingImage"]["Resource"])
    assert any(s.check_id == "CKV_AWS_370" for s in models["variant_online"].skips)
    assert not models["variant_champion"].skips
    # The serving stack reads the feature store's outputs, so it is planned after it.
    assert "features" in {d.name for d in serving.data if d.type == "terraform_remote_state"}


@pytest.mark.parametrize("build, expected", [
    (lambda: ModelServing(_platform().templates[2],
                          variants=[Variant("v", online_features=OnlineFeatures(groups=["customer"]))]),
     "needs features=<the FeatureStore>"),
    (lambda: ModelServing(_platform().templates[2], features=_platform().templates[1],
                          variants=[Variant("v", online_features=OnlineFeatures(groups=["orders"]))]),
     "names 'orders', which is not a group of FeatureStore 'features' (customer)"),
    (lambda: ModelServing(
        _platform().templates[2], features=_platform().templates[1],
        variants=[Variant("v", online_features=OnlineFeatures(groups=["customer"], timeout_ms=5))]),
     "'variants[0].online_features.timeout_ms' parameter of ModelServing 'serving' must be"),
    (lambda: ModelServing(_platform().templates[2], api=Api(daily_quota=100)),
     "daily_quota (100) counts requests per API key"),
    (lambda: ModelServing(_platform().templates[2], api=Api(access="internet")),
     "'api.access' parameter of ModelServing 'serving' must be one of 'private', 'public'. Got 'internet'"),
    (lambda: ModelServing(_platform().templates[2], api=Api(waf_web_acl_arn="my-acl")),
     "'api.waf_web_acl_arn' parameter of ModelServing 'serving' must be a string of a regional WAFv2 web ACL ARN"),
])
def test_each_mistake_names_the_field_and_value(build, expected: str) -> None:
    with pytest.raises(ParameterError) as caught:
        build()
    assert expected in str(caught.value)


def test_a_group_without_online_store_or_with_the_id_as_input_is_refused() -> None:
    data = DataInfrastructure()
    offline = replace(GROUP, online=False)
    training = TrainingInfrastructure(data, FeatureStore(data, groups=[offline]), dataset=DATASET)
    with pytest.raises(ParameterError, match="group 'customer' has online=False"):
        ModelServing(training, features=FeatureStore(data, groups=[offline]),
                     variants=[Variant("v", online_features=OnlineFeatures(groups=["customer"]))])
    by_id = Dataset(target="churned", id_column="key", numeric=["tenure"], categorical=["id"])
    store = FeatureStore(data, groups=[GROUP])
    training = TrainingInfrastructure(data, store, dataset=by_id)
    with pytest.raises(ParameterError, match="the record_id 'id' of group 'customer' is a model input"):
        ModelServing(training, features=store, variants=[Variant("v", online_features=OnlineFeatures(["customer"]))])


def test_a_public_api_on_azure_is_api_management_in_the_platforms_network() -> None:
    from mlops_dsl.azure.serving_api import NSG_RULES, SCORE_ACTION

    data = DataInfrastructure()
    features = FeatureStore(data, groups=[GROUP])
    training = TrainingInfrastructure(data, features, dataset=DATASET)
    served = ModelServing(training, variants=[Variant("blue")], api=Api(
        access="public", audience="api://fin-scoring", rate_limit=20, burst_limit=40, require_api_key=True,
        daily_quota=5000))
    serving = test_azure._stacks(Platform("fin", cloud="azure").add(data, features, training, served))["serving"]
    service = _by(serving, "azurerm_api_management")["inference"].body
    assert service["virtual_network_type"] == "External"
    assert _text(service["virtual_network_configuration"].body["subnet_id"]) == "azurerm_subnet.apim.id"
    assert service["sku_name"] == "Developer_1" and service["identity"].body == {"type": "SystemAssigned"}
    assert not any(service["security"].body.values())  # no SSL 3, TLS 1.0/1.1 or 3DES on either side
    subnet = _by(serving, "azurerm_subnet")["apim"].body
    assert subnet["virtual_network_name"] == "vnet-fin-dev" and subnet["address_prefixes"] == ["10.20.32.0/20"]
    rules = {r.body["name"]: r.body for r in serving.resources if r.type == "azurerm_network_security_rule"}
    assert len(rules) == len(NSG_RULES)
    assert (rules["apim-management"]["destination_port_range"], rules["apim-management"]["source_address_prefix"]) \
        == ("3443", "ApiManagement")
    assert rules["apim-clients"]["destination_port_range"] == "443"  # HTTPS only from the internet
    role = _by(serving, "azurerm_role_definition")["score"].body
    assert role["permissions"].body == {"actions": [SCORE_ACTION]}
    assert _text(role["assignable_scopes"]) == "[azapi_resource.endpoint.id]"
    grant = _by(serving, "azurerm_role_assignment")["apim_score"].body
    assert _text(grant["principal_id"]) == "azurerm_api_management.inference.identity[0].principal_id"
    api = _by(serving, "azurerm_api_management_api")["inference"].body
    assert _text(api["service_url"]) == 'trimsuffix(azapi_resource.endpoint.output.properties.scoringUri, "/score")'
    assert api["protocols"] == ["https"] and api["subscription_required"] is True
    policy = _by(serving, "azurerm_api_management_api_policy")["inference"].body["xml_content"]
    import xml.etree.ElementTree as ET

    inbound = ET.fromstring(policy).find("inbound")
    assert inbound.find("validate-jwt/audiences/audience").text == "api://fin-scoring"
    assert "00000000-0000-0000-0000-0000000000aa" in inbound.find("validate-jwt/openid-config").get("url")
    assert inbound.find("rate-limit-by-key").get("calls") == "20"
    assert inbound.find("quota-by-key").get("calls") == "5000"
    assert inbound.find("authentication-managed-identity").get("resource") == "https://ml.azure.com"
    assert {o.name for o in serving.outputs} >= {"api_url", "scoring_uri"}


def test_azure_exports_the_private_scoring_uri_and_refuses_what_it_does_not_render() -> None:
    def azure(api: Api | None, online: bool = False):
        data = DataInfrastructure()
        features = FeatureStore(data, groups=[GROUP])
        training = TrainingInfrastructure(data, features, dataset=DATASET)
        v = Variant("green", 0.1, online_features=OnlineFeatures(["customer"])) if online else Variant("green", 0.1)
        served = ModelServing(training, variants=[Variant("blue", 0.9), v], api=api,
                              features=features if online else None)
        return test_azure._stacks(Platform("fin", cloud="azure").add(data, features, training, served))

    serving = azure(Api())["serving"]
    endpoint = next(r for r in serving.resources if r.name == "endpoint")
    assert endpoint.body["response_export_values"] == ["properties.scoringUri"]
    uri = next(o for o in serving.outputs if o.name == "scoring_uri")
    assert _text(uri.value) == "azapi_resource.endpoint.output.properties.scoringUri"
    with pytest.raises(BlueprintError, match=r"api\.audience: a public API on Azure checks each caller's Entra ID"):
        azure(Api(access="public"))


def test_azure_online_features_reach_the_online_store_with_the_endpoint_identity() -> None:
    """The deployment's ONLINE_FEATURES (serving/online_store_azureml.py), the workspace's private route to
    Redis, and the identity's two grants: HMGET on this store's keys, reading its feature sets."""
    data = DataInfrastructure()
    group = FeatureGroup("customer", record_id="id", event_time="ts", features=[
        Feature("id", "string"), Feature("ts", "fractional"), Feature("tenure", "integral"),
        Feature("plan", "string"), Feature("charges", "fractional")])
    features = FeatureStore(data, groups=[group])
    training = TrainingInfrastructure(data, features, dataset=Dataset(
        target="churned", id_column="id", numeric=["tenure", "calls", "charges"], categorical=["plan"]))
    served = ModelServing(training, features=features, variants=[
        Variant("blue", 0.9), Variant("green", 0.1, online_features=OnlineFeatures(["customer"], timeout_ms=150))])
    stacks = test_azure._stacks(Platform("fin", cloud="azure").add(data, features, training, served))
    deployments = {r.name: r.body["body"]["properties"] for r in stacks["serving"].resources
                   if r.name.startswith("deployment_")}
    assert "environmentVariables" not in deployments["deployment_blue"]
    encoded = deployments["deployment_green"]["environmentVariables"]["ONLINE_FEATURES"]
    assert encoded.name == "jsonencode"
    config = encoded.args[0]
    assert config["store"] == "azureml" and config["timeout_ms"] == 150
    for key, output in (("redis_host", "online_store_hostname"), ("redis_port", "online_store_ssl_port"),
                        ("identity_client_id", "endpoint_identity_client_id"),
                        ("identity_object_id", "endpoint_identity_principal_id"),
                        ("feature_store_guid", "feature_store_guid")):
        assert _text(config[key]).endswith(f"outputs.{output}"), key
    [entry] = config["groups"]
    assert entry["name"] == "customer" and entry["version"] == "1" and entry["record_id"] == "id"
    assert _text(entry["version_id"]).endswith('outputs.feature_set_version_ids["customer"]')
    assert entry["features"] == ["tenure", "plan", "charges"] and entry["encoded"] == ["charges"]
    # The same keys the server's settings take: what the renderer writes, the image reads.
    from serving.online_features import AZURE_KEYS

    assert set(AZURE_KEYS) | {"redis_port", "store", "groups", "timeout_ms"} == set(config)
    workspace = next(r for r in stacks["training"].resources
                     if r.type == "azapi_resource" and r.name == "training").body["body"]["properties"]
    rule = workspace["managedNetwork"]["outboundRules"]["online-store"]["destination"]
    assert rule["subresourceTarget"] == "redisCache" and "online_store_id" in _text(rule["serviceResourceId"])
    store = stacks["features"]
    policy = _by(store, "azurerm_redis_cache_access_policy")["endpoint_read"].body
    assert _text(policy["permissions"]) == \
        '"+@connection +hmget ~featurestore:${lower(azapi_resource.features.output.properties.workspaceId)}:*"'
    assignment = _by(store, "azurerm_redis_cache_access_policy_assignment")["endpoint_redis"].body
    assert _text(assignment["access_policy_name"]) == "azurerm_redis_cache_access_policy.endpoint_read.name"
    reader = _by(store, "azurerm_role_definition")["feature_set_reader"].body["permissions"].body["actions"]
    assert reader == ["Microsoft.MachineLearningServices/workspaces/read",
                      "Microsoft.MachineLearningServices/workspaces/featuresets/read"]
    # Materialization connects with the access key, as the SDK does: keys on, and only read + listKeys.
    cache = _by(store, "azurerm_redis_cache")["online"].body
    assert cache["access_keys_authentication_enabled"] is True
    keys = _by(store, "azurerm_role_definition")["online_store_keys"].body["permissions"].body["actions"]
    assert keys == ["Microsoft.Cache/redis/read", "Microsoft.Cache/redis/listKeys/action"]


BLUEPRINT = textwrap.dedent("""\
    from mlops_dsl import (Api, DataInfrastructure, Dataset, Feature, FeatureGroup, FeatureStore, ModelServing,
                           OnlineFeatures, Platform, TrainingInfrastructure, Variant)

    platform = Platform("churn", cloud="aws")
    data = DataInfrastructure(zones=["raw", "processed", "models", "experiments"])
    features = FeatureStore(data, groups=[FeatureGroup("customer", record_id="id", event_time="ts", features=[
        Feature("id", "string"), Feature("ts", "fractional"), Feature("tenure", "integral")])])
    training = TrainingInfrastructure(data, features, dataset=Dataset(target="churned", id_column="id",
                                                                      numeric=["tenure", "calls"]))
    serving = ModelServing(training, features=features, api=Api(require_api_key=True, daily_quota=1000),
                           variants=[Variant("champion", weight=0.9),
                                     Variant("online", weight=0.1,
                                             online_features=OnlineFeatures(groups=["customer"]))])
    platform.add(data, features, training, serving)
    """)
_PIN = ("{version: 7, group: churn-dev, image: cccccccccccc, sha256: " + "d" * 64 +
        ", artifact: s3://churn-dev-models-111111111111/e7/model.tar.gz}")
PINS = f"churn:\n  champion: {_PIN}\n  online: {_PIN}\n"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The platform written by `mlops synth` in a throwaway project, public in prod by override."""
    from .conftest import Project

    project = Project(tmp_path_factory.mktemp("api"))
    project.write("namespaces.yaml", NAMESPACES + "    overrides:\n      serving:\n        api:\n"
                                                  "          access: public\n")
    project.write("blueprints/churn.py", BLUEPRINT)
    for context in ("training", "serving"):  # the images' build contexts, whose hashes tag the images
        shutil.copytree(ROOT / context, project.root / context, ignore=shutil.ignore_patterns("__pycache__"))
    project.write("models/dev.yaml", PINS)
    project.write("models/prod.yaml", PINS.replace("churn-dev", "churn-prod").replace("111111111111", "333333333333"))
    result = project.mlops("synth", "--all")
    assert result.exit_code == 0, result.output
    result = project.mlops("validate", "--schema")
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    return project.root / "terraform"


def test_the_rendering_is_clean_for_checkov(rendered: Path) -> None:
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    checkov = Path(sys.executable).parent / "checkov"
    result = subprocess.run([str(checkov), "--framework", "terraform", "--compact", "--skip-download",
                             "-o", "json", "-d", str(rendered / "dev/churn/serving"), "-d",
                             str(rendered / "prod/churn/serving")],
                            capture_output=True, text=True, env=env, check=False, timeout=600)
    reports = _json_documents(result.stdout)
    assert sum(r["summary"]["parsing_errors"] for r in reports) == 0
    failed = [f"{c['check_id']} {c['resource']}" for r in reports for c in r["results"]["failed_checks"]]
    assert failed == []
    skipped = {c["check_id"] for r in reports for c in r["results"]["skipped_checks"]}
    assert {"CKV_AWS_120", "CKV2_AWS_51", "CKV2_AWS_29", "CKV_AWS_370"} <= skipped
    readme = (ROOT / "README.md").read_text()
    assert [s for s in sorted(skipped) if s not in readme] == []


def test_an_online_variants_capture_is_not_compared_with_the_baseline() -> None:
    """Its captured requests hold record ids, not the features: the drift job takes the other variants only."""
    serving = aws_stacks(_platform(api=None))["serving"].stack
    assert "online: no drift job: it reads online_features, so its captured requests carry record ids, not the " \
           "features the baseline holds" in serving.notes
    rendered = json.dumps([r.body for r in serving.resources], default=str)
    assert "/champion/" in rendered and "/online/" not in rendered  # the capture prefixes the drift job reads
    data, features, training, served = _platform(api=None).templates
    online = replace(served, variants=[served.variants[1]])
    only_online = aws_stacks(Platform("churn", cloud="aws").add(data, features, training, online))["serving"].stack
    assert online.monitoring_schedule and not [r for r in only_online.resources if r.type == "aws_sfn_state_machine"]


def test_the_emulator_serves_a_model_with_its_environment_and_sends_its_aws_calls_back() -> None:
    """As SageMaker passes a container its Environment; the online-feature reads go to the emulator's runtime."""
    from mlops_dsl.emulator_server import SERVED

    env = SERVED.environment({"ONLINE_FEATURES": '{"groups": []}', "SAGEMAKER_MODEL_SERVER_WORKERS": "4"},
                             "http://127.0.0.1:4566")
    assert env["ONLINE_FEATURES"] == '{"groups": []}' and env["SAGEMAKER_MODEL_SERVER_WORKERS"] == "1"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert not [k for k in env if k.startswith("AWS_ENDPOINT_URL_")]
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
