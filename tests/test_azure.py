"""The Azure renderings: wiring, names within Azure's limits, validation, provider schema and pins."""

from __future__ import annotations

from dataclasses import replace

import pytest
import tfparse

from mlops_dsl import (
    DataInfrastructure,
    Dataset,
    Feature,
    FeatureGroup,
    FeatureStore,
    ModelServing,
    Platform,
    TrainingInfrastructure,
    Variant,
)
from mlops_dsl.azure.serving import percentages
from mlops_dsl.errors import BlueprintError
from mlops_dsl.namespaces import parse
from mlops_dsl.pins import Pin
from mlops_dsl.terraform import render

from .conftest import ROOT, argument_paths, reference_schemas

TAGS = {"training": "aaaaaaaaaaaa", "serving": "bbbbbbbbbbbb"}
NAMESPACES = """\
defaults:
  tags: {team: ml}
  alerts: {emails: [oncall@example.com]}
  azure:
    tenant_id: 00000000-0000-0000-0000-0000000000aa
    location: westeurope
namespaces:
  dev:
    azure:
      subscription_id: 11111111-1111-1111-1111-111111111111
      backend: {resource_group_name: rg-state, storage_account_name: ststate, container_name: tfstate}
  load-testing-eu1:
    azure:
      subscription_id: 22222222-2222-2222-2222-222222222222
      backend: {resource_group_name: rg-state, storage_account_name: ststate, container_name: tfstate}
"""
DATASET = Dataset(target="subscribed", id_column="id", numeric=["age"])
GROUP = FeatureGroup("client", record_id="id", event_time="ts", online=False,
                     features=[Feature("id", "string"), Feature("ts", "fractional"), Feature("age", "integral")])


def _platform(name: str = "fin", serving: dict | None = None, training: dict | None = None,
              group: FeatureGroup = GROUP) -> Platform:
    data = DataInfrastructure()
    features = FeatureStore(data, groups=[group])
    trained = TrainingInfrastructure(data, features, **({"dataset": DATASET} | (training or {})))
    served = ModelServing(trained, **(serving or {"variants": [Variant("blue", 0.9), Variant("green", 0.1)]}))
    return Platform(name, cloud="azure").add(data, features, trained, served)


def azure_pin(platform: str, version: int = 3, image: str = "cccccccccccc", registry: str = "dev") -> Pin:
    from mlops_dsl.azureml.naming import version_asset_id

    return Pin(version=version, group=platform, image=image, sha256="d" * 64,
               artifact=version_asset_id(platform, registry, version))


def _stacks(platform: Platform, ns: str = "dev", pins: dict | None = None, text: str = NAMESPACES) -> dict:
    """The platform's stacks; every serving variant pinned to version 3 unless `pins` says otherwise."""
    serving = next((t for t in platform.templates if isinstance(t, ModelServing)), None)
    if pins is None and serving is not None:
        pins = {v.name: azure_pin(platform.name) for v in [*serving.variants, *([serving.shadow] if serving.shadow
                                                                               else [])]}
    namespace = replace(parse(text)[ns], pins={platform.name: pins or {}})
    return {b.template: b.stack for b in platform.synth(namespace, image_tags=TAGS)}


def _by(stack, kind: str) -> dict:
    return {r.name: r for r in stack.resources if r.type == kind}


def _text(value) -> str:
    from mlops_dsl.terraform.hcl import expression

    return "\n".join(expression(value, 0))


def test_data_infrastructure_is_private_and_on_its_own_key() -> None:
    data = _stacks(_platform())["data"]
    vault = _by(data, "azurerm_key_vault")["main"].body
    assert vault["rbac_authorization_enabled"] and vault["purge_protection_enabled"]
    assert vault["public_network_access_enabled"] is False and vault["sku_name"] == "premium"
    key = _by(data, "azapi_resource")["cmk"].body["body"]["properties"]
    assert key["kty"] == "RSA-HSM" and key["rotationPolicy"]["attributes"]["expiryTime"] == "P1Y"
    lake = _by(data, "azurerm_storage_account")["lake"]
    body = lake.body
    assert body["is_hns_enabled"] and body["min_tls_version"] == "TLS1_2" and body["infrastructure_encryption_enabled"]
    assert body["shared_access_key_enabled"] is False and body["public_network_access_enabled"] is False
    assert body["customer_managed_key"].body["key_vault_key_id"].text == "azapi_resource.cmk.output.properties.keyUri"
    assert body["blob_properties"].body["delete_retention_policy"].body["days"] == 30
    assert {d.address for d in lake.depends_on} == {"time_sleep.key_users"}  # the key's users' roles, then the account
    wait = _by(data, "time_sleep")["key_users"]
    assert {d.address for d in wait.depends_on} == {"azurerm_role_assignment.cmk_key_user",
                                                     "azurerm_role_assignment.cosmos_db_key_user"}
    assert set(_by(data, "azurerm_storage_container")) == {"raw", "processed", "models", "experiments"}
    endpoints = _by(data, "azurerm_private_endpoint")
    assert {e.body["private_service_connection"].body["subresource_names"][0] for e in endpoints.values()} == \
        {"blob", "dfs", "file", "vault", "registry"}
    # The container registry is here, the first stack: the features stack's ingestion pulls from it too.
    registry = _by(data, "azurerm_container_registry")["main"]
    assert registry.body["sku"] == "Premium" and registry.body["admin_enabled"] is False
    assert registry.body["anonymous_pull_enabled"] is False and registry.body["public_network_access_enabled"] is False
    assert registry.body["quarantine_policy_enabled"] is False and registry.body["retention_policy_in_days"] == 30
    assert {d.address for d in registry.depends_on} == {"time_sleep.key_users"}  # it reads the key at creation
    pulls = {r.body["principal_id"].text for r in _by(data, "azurerm_role_assignment").values()
             if r.body["scope"].text == "azurerm_container_registry.main.id"
             and r.body["role_definition_name"] == "AcrPull"}
    assert pulls == {"azurerm_user_assigned_identity.workload.principal_id",
                     "azurerm_user_assigned_identity.endpoint.principal_id"}
    assert {o.name for o in data.outputs} >= {"container_registry_id", "registry_login_server"}
    subnets, associations = _by(data, "azurerm_subnet"), _by(data, "azurerm_subnet_network_security_group_association")
    assert set(subnets) == set(associations)  # every subnet has an NSG
    assert all(r.body["tags"]["team"] == "ml" for r in data.resources if "tags" in r.body)


def test_feature_store_workspace_and_its_azapi_pieces() -> None:
    stack = _stacks(_platform())["features"]
    store = _by(stack, "azapi_resource")["features"]
    assert store.body["body"]["kind"] == "FeatureStore" and store.lifecycle.prevent_destroy
    properties = store.body["body"]["properties"]
    assert properties["featureStoreSettings"]["offlineStoreConnectionName"] == "offline-store"
    assert properties["publicNetworkAccess"] == "Disabled"
    assert properties["managedNetwork"]["isolationMode"] == "AllowInternetOutbound"
    azapi = {r.name: r.body for r in stack.resources if r.type == "azapi_resource"}
    assert azapi["offline_store"]["type"] == "Microsoft.MachineLearningServices/workspaces/connections@2024-10-01"
    assert azapi["offline_store"]["body"]["properties"]["category"] == "ADLSGen2"
    index = azapi["entity_client_v1"]["body"]["properties"]["indexColumns"]
    assert index == [{"columnName": "id", "dataType": "String"}]
    assert properties["systemDatastoresAuthMode"] == "Identity" and not _by(stack, "azapi_update_resource")


def test_training_registry_workspace_compute_and_schedule() -> None:
    stack = _stacks(_platform(training={"spot": True}))["training"]
    assert not _by(stack, "azurerm_container_registry")  # the data stack's (container_registry.py)
    ml = _by(stack, "azapi_resource")["training"].body["body"]["properties"]
    assert ml["containerRegistry"].text == "data.terraform_remote_state.data.outputs.container_registry_id"
    key = ml["encryption"]["keyVaultProperties"]["keyIdentifier"]
    assert key.text == "data.terraform_remote_state.data.outputs.key_version_id"
    assert ml["publicNetworkAccess"] == "Disabled"
    cluster = _by(stack, "azurerm_machine_learning_compute_cluster")["training"].body
    assert cluster["scale_settings"].body["min_node_count"] == 0
    assert cluster["node_public_ip_enabled"] is False and cluster["local_auth_enabled"] is False
    assert cluster["vm_size"] == "Standard_D4s_v3" and cluster["vm_priority"] == "LowPriority"
    schedule = {r.name: r.body for r in stack.resources if r.type == "azapi_resource"}["schedule"]["body"]
    assert schedule["properties"]["trigger"] == {"triggerType": "Cron", "expression": "0 3 * * 1", "timeZone": "UTC"}
    assert stack.locals == {"training_image_tag": "aaaaaaaaaaaa"}  # one line per code change


def test_serving_endpoint_deployments_traffic_autoscale_and_alerts() -> None:
    serving = {"variants": [Variant("blue", 0.9, initial_instance_count=2), Variant("green", 0.1)],
               "shadow": None}
    stack = _stacks(_platform(serving=serving))["serving"]
    azapi = {r.name: r.body for r in stack.resources if r.type == "azapi_resource"}
    assert azapi["endpoint"]["body"]["properties"] == {"authMode": "AADToken", "publicNetworkAccess": "Disabled"}
    blue = azapi["deployment_blue"]["body"]
    assert blue["sku"]["capacity"] == 2 and "egressPublicNetworkAccess" not in blue["properties"]
    assert azapi["deployment_blue"]["name"] == "blue-v3-cccccc"
    assert "azapi_update_resource" not in {r.type for r in stack.resources}  # traffic is the rollout step's
    rollout = _by(stack, "terraform_data")["rollout"]
    document = rollout.body["provisioner"].body["environment"]["MLOPS_ROLLOUT_CONFIG"].args[0]
    assert document["traffic"] == {"blue-v3-cccccc": 90, "green-v3-cccccc": 10}
    assert document["policy"] == {"mode": "ALL_AT_ONCE", "canary_percent": 10, "linear_step_percent": 20,
                                  "wait_seconds": 300, "bake_seconds": 300}
    assert [a.text for a in document["alert_rule_ids"]] == ["azurerm_monitor_metric_alert.latency.id",
                                                            "azurerm_monitor_metric_alert.errors.id"]
    assert rollout.body["triggers_replace"][0].args[0] == document
    # any PUT of the endpoint (whose body carries no traffic: review C5) runs the step again
    assert [t.args[0].text for t in rollout.body["triggers_replace"][1:]] == [
        "azapi_resource.endpoint.body", "azapi_resource.endpoint.identity"]
    assert {d.name for d in rollout.depends_on} == {"deployment_blue", "deployment_green", "latency", "errors"}
    command = "".join(p if isinstance(p, str) else "${" + p.text + "}"
                      for p in rollout.body["provisioner"].body["command"].parts)
    assert command.endswith("mlops update-online-endpoint --endpoint-id ${azapi_resource.endpoint.id} "
                            "--deployment blue-v3-cccccc --deployment green-v3-cccccc "
                            "--smoke-request .smoke-request.json")
    assert set(_by(stack, "azurerm_monitor_autoscale_setting")) == {"blue", "green"}
    alerts = _by(stack, "azurerm_monitor_metric_alert")
    assert alerts["latency"].body["criteria"].body["metric_name"] == "RequestLatency_P99"
    group = _by(stack, "azurerm_monitor_action_group")["alerts"].body
    assert [r.body["email_address"] for r in group["email_receiver"]] == ["oncall@example.com"]
    assert stack.locals == {}  # the image is the pin's, not the current build's


def test_shadow_is_mirror_traffic() -> None:
    stack = _stacks(_platform(serving={"variants": [Variant("blue")], "shadow": Variant("candidate"),
                                       "data_capture_percent": 50}))["serving"]
    rollout = _by(stack, "terraform_data")["rollout"].body["provisioner"].body
    document = rollout["environment"]["MLOPS_ROLLOUT_CONFIG"].args[0]
    assert document["traffic"] == {"blue-v3-cccccc": 100}
    assert document["mirror_traffic"] == {"candidate-v3-cccccc": 50}
    assert "--deployment blue-v3-cccccc --deployment candidate-v3-cccccc " in "".join(
        p for p in rollout["command"].parts if isinstance(p, str))


def test_weights_become_whole_percentages_summing_to_100() -> None:
    assert percentages({"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert percentages({"blue": 0.9, "green": 0.1}) == {"blue": 90, "green": 10}
    assert sum(percentages({"a": 0.123, "b": 0.456, "c": 0.421}).values()) == 100


def test_names_fit_azure_limits_for_the_longest_names() -> None:
    """A 24-character platform in a 16-character namespace still gets valid names."""
    stacks = _stacks(_platform(name="customer-churn-forecasts"), ns="load-testing-eu1",
                     pins={"blue": azure_pin("customer-churn-forecasts", registry="load-testing-eu1")})
    names = {r.type: r.body.get("name") for s in stacks.values() for r in s.resources}
    assert 3 <= len(names["azurerm_storage_account"]) <= 24 and names["azurerm_storage_account"].isalnum()
    assert len(names["azurerm_key_vault"]) <= 24 and len(names["azurerm_container_registry"]) <= 50
    workspaces = [r.body["name"] for s in stacks.values() for r in s.resources
                  if r.type == "azapi_resource" and r.body["type"].split("@")[0].endswith("/workspaces")]
    assert len(workspaces) == 2 and all(len(n) <= 33 for n in workspaces)
    endpoint = {r.name: r.body["name"] for r in stacks["serving"].resources if r.type == "azapi_resource"}["endpoint"]
    assert 3 <= len(endpoint) <= 32


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"training": {"instance_type": "ml.p3.16xlarge"}},
     "TrainingInfrastructure 'training': instance_type: 'ml.p3.16xlarge' has no Azure VM size in this version"),
    ({"training": {"schedule": "at(2027-01-01T00:00:00)"}},
     "TrainingInfrastructure 'training': schedule: 'at(2027-01-01T00:00:00)' has no Azure ML schedule equivalent"),
    ({"serving": {"variants": [Variant("blue", instance_type="ml.p3.2xlarge")]}},
     "ModelServing 'serving': variants[0].instance_type: 'ml.p3.2xlarge' has no Azure VM size"),
])
def test_validation_errors_name_the_blueprint_field(kwargs: dict, expected: str) -> None:
    with pytest.raises(BlueprintError) as err:
        _stacks(_platform(**kwargs))
    assert expected in str(err.value) and "test_azure.py:" in str(err.value)


def test_every_azurerm_argument_exists_in_azurerm_4_55_and_providers_are_pinned() -> None:
    schemas = reference_schemas("azurerm_schemas.md")
    missing = []
    for stack in _stacks(_platform(serving={"variants": [Variant("blue")], "shadow": Variant("c"),
                                            "data_capture_percent": 10})).values():
        for resource in stack.resources:
            if not resource.type.startswith("azurerm_"):
                continue
            if resource.type not in schemas:
                missing.append(f"{resource.type} (no schema)")
                continue
            missing += [f"{resource.address}.{p}" for p in argument_paths(resource.body)
                        if p not in schemas[resource.type]]
        versions = render(stack)["versions.tf"]
        assert 'source  = "hashicorp/azurerm"\n      version = ">= 4.55, < 5.0"' in versions
        if any(r.type.startswith("azapi_") for r in stack.resources):
            assert 'source  = "azure/azapi"\n      version = ">= 2.0, < 3.0"' in versions
    assert missing == []


@pytest.mark.parametrize("ns", ["dev", "staging", "prod"])
def test_committed_azure_stacks_parse_and_wire_together(ns: str) -> None:
    base = ROOT / "terraform" / ns / "financial-behavior"
    for name in ("data", "features", "training", "serving"):
        parsed = tfparse.load_from_path(str(base / name))
        assert parsed, name
    serving = tfparse.load_from_path(str(base / "serving"))
    names = {r["__tfmeta"]["path"] for r in serving["azapi_resource"]}
    assert {"azapi_resource.endpoint", "azapi_resource.deployment_blue", "azapi_resource.deployment_green"} <= names


def test_an_online_group_gets_a_private_redis_online_store() -> None:
    online = FeatureGroup("client", record_id="id", event_time="ts", online=True,
                          features=[Feature("id", "string"), Feature("ts", "fractional")])
    stack = _stacks(_platform(group=online))["features"]
    cache = _by(stack, "azurerm_redis_cache")["online"].body
    assert cache["public_network_access_enabled"] is False and cache["non_ssl_port_enabled"] is False
    # Access keys on: Azure ML's online materialization connects with the key it lists (features.py)
    assert cache["minimum_tls_version"] == "1.2" and cache["access_keys_authentication_enabled"] is True
    assert cache["redis_configuration"].body["active_directory_authentication_enabled"] is True
    assert "materialization_redis" not in _by(stack, "azurerm_redis_cache_access_policy_assignment")
    store = _by(stack, "azapi_resource")["features"].body["body"]["properties"]["featureStoreSettings"]
    assert store["onlineStoreConnectionName"] == "online-store"
    azapi = {r.name: r.body for r in stack.resources if r.type == "azapi_resource"}
    assert azapi["online_store"]["body"]["properties"]["category"] == "Redis"
    version = azapi["featureset_client_v1"]["body"]["properties"]
    assert version["materializationSettings"] == {"storeType": "OnlineAndOffline"}
    assert version["specification"]["path"] == "azureml://datastores/processed/paths/featuresets/client/spec"
    offline = {r.name: r.body for r in _stacks(_platform())["features"].resources if r.type == "azapi_resource"}
    assert "online_store" not in offline
    assert offline["featureset_client_v1"]["body"]["properties"]["materializationSettings"] == {"storeType": "Offline"}
