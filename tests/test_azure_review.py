"""One test per certain finding of the Azure review (shared/reviews/azure.md, A1-A13), and the likely
ones (B) that the rendering decides: each asserts on the rendered Azure stacks and fails on the
output the review read."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace

import pytest

from mlops_dsl import Feature, FeatureGroup, QualityGate, Variant
from mlops_dsl.errors import BlueprintError
from mlops_dsl.namespaces import parse
from mlops_dsl.terraform import render

from .test_azure import GROUP, NAMESPACES, TAGS, _by, _platform, _stacks, azure_pin

ONLINE = FeatureGroup("client", record_id="id", event_time="ts", online=True,
                      features=[Feature("id", "string"), Feature("ts", "fractional"), Feature("age", "integral")])
NO_EMAILS = NAMESPACES.replace("  alerts: {emails: [oncall@example.com]}\n", "")


def _azapi(stack) -> dict:
    return {r.name: r for r in stack.resources if r.type == "azapi_resource"}


WORKSPACE = "Microsoft.MachineLearningServices/workspaces"


def _workspaces(stacks: dict) -> dict:
    return {r.name: r for s in stacks.values() for r in s.resources
            if r.type == "azapi_resource" and r.body["type"].split("@")[0] == WORKSPACE}


def _text(value) -> str:
    return getattr(value, "text", value)


def test_a1_the_storage_data_plane_is_never_called() -> None:
    stacks = _stacks(_platform())
    for name, stack in stacks.items():
        versions = render(stack)["versions.tf"]
        assert "storage {\n      data_plane_available = false\n    }" in versions, name
    accounts = _by(stacks["data"], "azurerm_storage_account").values()
    assert all("queue_properties" not in a.body and "static_website" not in a.body for a in accounts)


def test_a2_the_key_is_created_through_the_control_plane() -> None:
    stacks = _stacks(_platform())
    assert not any(r.type == "azurerm_key_vault_key" for s in stacks.values() for r in s.resources)
    key = _azapi(stacks["data"])["cmk"]
    assert key.body["type"] == "Microsoft.KeyVault/vaults/keys@2023-07-01"
    assert key.body["parent_id"].text == "azurerm_key_vault.main.id"
    assert set(key.body["response_export_values"]) == {"properties.keyUri", "properties.keyUriWithVersion"}
    # no data-plane role for the deployer is needed, nor waited for
    roles = {r.body["role_definition_name"] for r in _by(stacks["data"], "azurerm_role_assignment").values()}
    assert "Key Vault Crypto Officer" not in roles


def test_a3_the_workspaces_default_storage_has_no_hierarchical_namespace() -> None:
    stacks = _stacks(_platform())
    accounts = _by(stacks["data"], "azurerm_storage_account")
    assert accounts["lake"].body["is_hns_enabled"] is True and accounts["workspace"].body["is_hns_enabled"] is False
    output = {o.name: o for o in stacks["data"].outputs}["workspace_storage_account_id"]
    assert output.value.text == "azurerm_storage_account.workspace.id"
    for name, ws in _workspaces(stacks).items():
        storage = ws.body["body"]["properties"]["storageAccount"]
        assert storage.text == "data.terraform_remote_state.data.outputs.workspace_storage_account_id", name


def test_a4_workspaces_are_created_with_identity_based_system_datastores() -> None:
    stacks = _stacks(_platform())
    workspaces = _workspaces(stacks)
    assert set(workspaces) == {"features", "training"}
    for ws in workspaces.values():
        assert ws.body["type"].endswith("@2025-06-01")
        assert ws.body["body"]["properties"]["systemDatastoresAuthMode"] == "Identity"
    assert not any(r.type == "azapi_update_resource" and "workspaces@" in r.body["type"]
                   for s in stacks.values() for r in s.resources)
    assert not any(r.type == "azurerm_machine_learning_workspace" for s in stacks.values() for r in s.resources)


def test_a5_the_sampling_rate_is_a_property_of_each_collection() -> None:
    stack = _stacks(_platform(serving={"variants": [Variant("blue")], "data_capture_percent": 20}))["serving"]
    collector = _azapi(stack)["deployment_blue"].body["body"]["properties"]["dataCollector"]
    assert set(collector) == {"collections"}
    assert all(c["samplingRate"] == 0.2 for c in collector["collections"].values())


def test_a6_no_email_receiver_block_without_emails() -> None:
    stacks = {b.template: b.stack for b in _platform().synth(parse(NO_EMAILS)["dev"], image_tags=TAGS)}
    group = _by(stacks["serving"], "azurerm_monitor_action_group")["alerts"]
    assert "email_receiver" not in group.body
    assert "email_receiver" not in render(stacks["serving"])["main.tf"]
    with_emails = _by(_stacks(_platform())["serving"], "azurerm_monitor_action_group")["alerts"]
    assert len(with_emails.body["email_receiver"]) == 1


def test_a7_the_registry_does_not_quarantine_pushed_images() -> None:
    registry = _by(_stacks(_platform())["data"], "azurerm_container_registry")["main"]
    assert registry.body["quarantine_policy_enabled"] is False
    assert "CKV_AZURE_166" in {s.check_id for s in registry.skips}


def test_a8_the_deployment_serves_the_pinned_registry_version_where_azure_mounts_it() -> None:
    """A8 then: a workspace model at a fixed version 1 that nothing wrote. Now: the pinned version of the
    platform's registry (an MLflow directory `mlops models register` uploaded), which Azure ML mounts at
    AZUREML_MODEL_DIR, where the serving image looks (tests/test_serving.py)."""
    stack = _stacks(_platform(name="fin", serving={"variants": [Variant("blue")]}),
                    pins={"blue": azure_pin("fin", version=4, image="eeeeeeeeeeee")})["serving"]
    azapi = _azapi(stack)
    deployment = azapi["deployment_blue"].body
    assert deployment["name"] == "blue-v4-eeeeee"
    properties = deployment["body"]["properties"]
    assert properties["model"] == "azureml://registries/mlr-fin-dev/models/fin/versions/4"
    assert "environmentVariables" not in properties  # no MODEL_URI: AZUREML_MODEL_DIR is the mount
    assert properties["environmentId"].text == "azapi_resource.serving_environment_eeeeeeeeeeee.id"
    assert not [r for r in azapi.values() if "/models" in r.body["type"]]
    reader = _by(stack, "azurerm_role_assignment")["model_registry_reader"].body
    assert reader["role_definition_name"] == "AzureML Registry User"
    assert reader["scope"] == ("/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-fin-dev/"
                               "providers/Microsoft.MachineLearningServices/registries/mlr-fin-dev")


def test_a8_with_no_version_pinned_no_deployment_is_declared_and_the_plan_says_so() -> None:
    stack = _stacks(_platform(name="fin"), pins={})["serving"]
    types = {r.type for r in stack.resources}
    assert not [r for r in stack.resources if r.name.startswith("deployment_")]
    assert "azapi_update_resource" not in types and "azurerm_monitor_autoscale_setting" not in types
    assert stack.notes == ["blue: no model version pinned (models/dev.yaml), so it is not served",
                           "green: no model version pinned (models/dev.yaml), so it is not served"]


def test_a8_a_pin_that_is_not_this_registrys_version_is_refused() -> None:
    with pytest.raises(BlueprintError, match=r"names 's3://b/m.tar.gz'; an Azure pin names "
                                             r"azureml://registries/mlr-fin-dev/models/<model>/versions/3"):
        _stacks(_platform(name="fin"), pins={"blue": replace(azure_pin("fin"), artifact="s3://b/m.tar.gz")})


def test_a8_the_registry_lives_in_the_registry_namespaces_training_stack() -> None:
    registry = _azapi(_stacks(_platform(name="fin"))["training"])["model_registry"].body
    assert registry["type"] == "Microsoft.MachineLearningServices/registries@2024-10-01"
    assert registry["name"] == "mlr-fin-dev"
    assert registry["body"]["properties"]["publicNetworkAccess"] == "Disabled"
    pe = _by(_stacks(_platform(name="fin"))["training"], "azurerm_private_endpoint")["model_registry"].body
    assert pe["private_service_connection"].body["subresource_names"] == ["amlregistry"]


def test_a9_the_scheduled_job_trains_this_platform() -> None:
    stack = _stacks(_platform(name="fin", training={"gate": QualityGate("roc_auc", 0.78)}))["training"]
    job = _azapi(stack)["schedule"].body["body"]["properties"]["action"]["jobDefinition"]
    words = shlex.split(job["command"])
    config = json.loads(words[words.index("printf") + 2])
    assert config["platform"] == "fin" and config["data"]["target"] == "subscribed"
    assert config["data"]["numeric"] == ["age"] and config["gates"] == {"min_roc_auc": 0.78}
    assert "--config" in words and words[words.index("--config") + 1] == "config.json"
    with pytest.raises(BlueprintError, match="dataset"):
        _stacks(_platform(training={"dataset": None}))


def test_a10_the_key_rotates_without_an_expiration_date() -> None:
    policy = _azapi(_stacks(_platform())["data"])["cmk"].body["body"]["properties"]["rotationPolicy"]
    assert policy["lifetimeActions"] == [{"trigger": {"timeAfterCreate": "P11M"}, "action": {"type": "rotate"}}]
    assert policy["attributes"] == {"expiryTime": "P1Y"}


def test_a11_redis_grants_data_access_policies() -> None:
    stack = _stacks(_platform(group=ONLINE))["features"]
    policies = _by(stack, "azurerm_redis_cache_access_policy_assignment")
    # Materialization connects with the access key (features.py, from the SDK's source); the endpoint
    # reads with Entra ID under a custom HMGET-only policy.
    assert set(policies) == {"endpoint_redis"}
    assert policies["endpoint_redis"].body["object_id"].text.endswith("outputs.endpoint_identity_principal_id")
    assert _by(stack, "azurerm_redis_cache")["online"].body["access_keys_authentication_enabled"] is True


def test_a12_workspace_endpoints_register_in_both_dns_zones() -> None:
    stacks = _stacks(_platform())
    for stack, name in ((stacks["features"], "features_workspace"), (stacks["training"], "training_workspace")):
        group = _by(stack, "azurerm_private_endpoint")[name].body["private_dns_zone_group"].body
        zones = [z.text for z in group["private_dns_zone_ids"]]
        assert zones == ['data.terraform_remote_state.data.outputs.private_dns_zone_ids["amlworkspace"]',
                         'data.terraform_remote_state.data.outputs.private_dns_zone_ids["notebooks"]'], zones


def test_a13_mirror_traffic_is_capped_at_50_percent() -> None:
    with pytest.raises(BlueprintError, match=r"data_capture_percent: .*caps at 50%; got 100"):
        _stacks(_platform(serving={"variants": [Variant("blue")], "shadow": Variant("candidate")}))
    stack = _stacks(_platform(serving={"variants": [Variant("blue")], "shadow": Variant("candidate"),
                                       "data_capture_percent": 50}))["serving"]
    document = _by(stack, "terraform_data")["rollout"].body["provisioner"].body["environment"]["MLOPS_ROLLOUT_CONFIG"]
    assert document.args[0]["mirror_traffic"] == {"candidate-v3-cccccc": 50}


# Likely findings (B) that the rendering decides.

def test_b1_workspaces_act_as_their_own_identity_with_microsofts_roles() -> None:
    stacks = _stacks(_platform())
    for ws in _workspaces(stacks).values():
        properties = ws.body["body"]["properties"]
        assert properties["primaryUserAssignedIdentity"].text.endswith("outputs.workspace_identity_id")
        assert properties["encryption"]["identity"]["userAssignedIdentity"].text.endswith("outputs.cmk_identity_id")
    roles = {(r.name, r.body["role_definition_name"]) for r in _by(stacks["data"], "azurerm_role_assignment").values()
             if r.body["principal_id"].text == "azurerm_user_assigned_identity.workspace.principal_id"}
    assert {("workspace_storage", "Contributor"), ("workspace_vault", "Contributor"),
            ("workspace_vault_admin", "Key Vault Administrator"),
            ("workspace_network", "Azure AI Enterprise Network Connection Approver")} <= roles
    assert ("workspace_registry", "Contributor") in roles  # the container registry is the data stack's
    training_roles = {r.body["role_definition_name"]
                      for r in _by(stacks["training"], "azurerm_role_assignment").values()}
    assert {"Contributor", "AzureML Metrics Writer (preview)"} <= training_roles


def test_b2_cosmos_db_reaches_the_key_and_workspace_encryption_takes_the_versioned_key() -> None:
    stacks = _stacks(_platform())
    cosmos = {d.name: d for d in stacks["data"].data}["cosmos_db"]
    assert cosmos.type == "azuread_service_principal"
    assert cosmos.body == {"client_id": "a232010e-820c-4083-83bb-3ace5fc29d0b"}
    role = _by(stacks["data"], "azurerm_role_assignment")["cosmos_db_key_user"].body
    assert role["role_definition_name"] == "Key Vault Crypto Service Encryption User"
    assert role["principal_id"].text == "data.azuread_service_principal.cosmos_db.object_id"
    workspaces = _workspaces(stacks)
    assert len(workspaces) == 2
    for ws in workspaces.values():
        key = ws.body["body"]["properties"]["encryption"]["keyVaultProperties"]["keyIdentifier"]
        assert key.text == "data.terraform_remote_state.data.outputs.key_version_id"


def test_b4_the_offline_store_target_is_the_container_id() -> None:
    store = _azapi(_stacks(_platform())["features"])["offline_store"].body["body"]["properties"]
    assert store["target"].text == 'data.terraform_remote_state.data.outputs.container_ids["processed"]'


def test_b5_materialization_has_its_own_identity_attached_to_the_store_with_the_sdks_roles() -> None:
    stack = _stacks(_platform())["features"]
    store = _azapi(stack)["features"]
    assert [i.text.rsplit(".", 1)[-1] for i in store.body["identity"].body["identity_ids"]] == [
        "workspace_identity_id", "cmk_identity_id", "materialization_identity_id"]
    roles = {n: (r.body["role_definition_name"], r.body["principal_id"].text.rsplit(".", 1)[-1])
             for n, r in _by(stack, "azurerm_role_assignment").items() if n.startswith("materialization")}
    assert roles == {"materialization_store": ("AzureML Data Scientist", "materialization_identity_principal_id"),
                     "materialization_offline": ("Storage Blob Data Contributor",
                                                 "materialization_identity_principal_id")}
    credentials = _azapi(stack)["offline_store"].body["body"]["properties"]["credentials"]
    assert credentials["resourceId"].text.endswith("outputs.materialization_identity_id")


def test_b6_b7_managed_networks_reach_the_lake_redis_and_the_feature_store() -> None:
    stacks = _stacks(_platform(group=ONLINE))
    ws = _workspaces(stacks)
    store = ws["features"].body["body"]["properties"]
    assert store["managedNetwork"]["isolationMode"] == "AllowInternetOutbound" and store["provisionNetworkNow"]
    rules = store["managedNetwork"]["outboundRules"]
    assert {n: r["destination"]["subresourceTarget"] for n, r in rules.items()} == {
        "lake-dfs": "dfs", "lake-blob": "blob", "online-store": "redisCache"}
    assert all(r["destination"]["sparkEnabled"] for r in rules.values())
    action = _by(stacks["features"], "azapi_resource_action")["provision_spark_network"].body
    assert action["action"] == "provisionManagedNetwork" and action["body"] == {"includeSpark": True}
    training = ws["training"].body["body"]["properties"]
    assert training["provisionNetworkNow"] is True
    assert {n: r["destination"]["subresourceTarget"] for n, r in training["managedNetwork"]["outboundRules"].items()} \
        == {"lake-dfs": "dfs", "feature-store": "amlworkspace", "model-registry": "amlregistry",
            "online-store": "redisCache"}  # the endpoints' route to the online group's store
    # The registry namespace's workspace reaches the registry it declares; the others the one they read.
    assert training["managedNetwork"]["outboundRules"]["model-registry"]["destination"]["serviceResourceId"].text \
        == "azapi_resource.model_registry.id"


def test_b8_the_5xx_alert_uses_a_supported_aggregation_and_validates_the_metric() -> None:
    alerts = _by(_stacks(_platform())["serving"], "azurerm_monitor_metric_alert")
    criteria = alerts["errors"].body["criteria"].body
    assert criteria["aggregation"] == "Average" and "skip_metric_validation" not in criteria


def test_b9_data_collection_logs_request_and_response_payloads() -> None:
    stacks = _stacks(_platform())
    collector = _azapi(stacks["serving"])["deployment_blue"].body["body"]["properties"]["dataCollector"]
    assert set(collector["collections"]) == {"request", "response"}
    role = _by(stacks["data"], "azurerm_role_assignment")["endpoint_collection"].body
    assert role["role_definition_name"] == "Storage Blob Data Contributor"
    assert role["scope"].text == "azurerm_storage_account.workspace.id"


def test_b10_b13_autoscale_is_not_undone_and_asset_versions_are_replaced_safely() -> None:
    stacks = _stacks(_platform())
    serving, training = _azapi(stacks["serving"]), _azapi(stacks["training"])
    assert serving["deployment_blue"].lifecycle.ignore_changes == ("body.sku.capacity",)
    for version in (serving["deployment_blue"], serving["serving_environment_cccccccccccc"],
                    training["training_environment_version"]):
        assert version.lifecycle.create_before_destroy


def test_b12_role_assignments_skip_the_entra_lookup_and_are_waited_for() -> None:
    stacks = _stacks(_platform())
    data = stacks["data"]
    roles = {d.address for d in _by(data, "time_sleep")["roles"].depends_on}
    assert roles == {r.address for r in _by(data, "azurerm_role_assignment").values()}
    for account in _by(data, "azurerm_storage_account").values():
        assert [d.address for d in account.depends_on] == ["time_sleep.key_users"]
    for stack in stacks.values():
        for role in _by(stack, "azurerm_role_assignment").values():
            assert role.body["principal_type"] == "ServicePrincipal", role.address
            assert role.body["skip_service_principal_aad_check"] is True, role.address


def test_b14_each_namespace_has_its_own_address_range() -> None:
    from mlops_dsl.blueprints import load_file
    from mlops_dsl.namespaces import load

    from .conftest import ROOT

    namespaces = load(ROOT / "namespaces.yaml")
    platform = next(p for p in load_file(ROOT / "blueprints" / "financial_behavior.py"))
    ranges = {}
    for ns in ("dev", "staging", "prod"):
        tags = {**TAGS, "training:azureml": TAGS["training"]}  # the example trains on the azureml stage
        data = next(b.stack for b in platform.synth(namespaces[ns], image_tags=tags) if b.template == "data")
        ranges[ns] = _by(data, "azurerm_virtual_network")["main"].body["address_space"][0]
    assert len(set(ranges.values())) == 3, ranges


def test_the_group_fixture_is_offline() -> None:  # the default platform of these tests has no Redis
    assert GROUP.online is False
