"""azapi bodies against the vendored azapi types: one test per kind of check, each failing without it.

The bodies are small and hand-made, checked against the real 2024-10-01 Machine Learning types the
project pins (mlops_dsl/vendor/azapi/types.json), so a test also proves the vendored data carries
what the check needs. No network: everything read here is in the repository.
"""

from __future__ import annotations

import importlib.util
import json
from importlib import resources
from typing import Any

import pytest

from mlops_dsl import azapi_check
from mlops_dsl.azapi_types import UNKNOWN, Checker, catalog
from mlops_dsl.terraform import Block, Expr, Stack, interp
from mlops_dsl.terraform.model import Resource
from mlops_dsl.validate import validate

ML = "Microsoft.MachineLearningServices/workspaces"
ENDPOINT = f"{ML}/onlineEndpoints@2024-10-01"
DEPLOYMENT = f"{ML}/onlineEndpoints/deployments@2024-10-01"
WORKSPACE_ID = Expr("azurerm_machine_learning_workspace.w.id", ("azurerm_machine_learning_workspace.w",))


def _deployment(**properties: Any) -> dict[str, Any]:
    return {"type": DEPLOYMENT, "name": "blue", "parent_id": WORKSPACE_ID, "location": "westeurope",
            "body": {"properties": {"endpointComputeType": "Managed", **properties}}}


def _endpoint(**properties: Any) -> dict[str, Any]:
    return {"type": ENDPOINT, "name": "ep", "parent_id": WORKSPACE_ID, "location": "westeurope",
            "body": {"properties": {"authMode": "AADToken", **properties}}}


def check(arguments: dict[str, Any], resource_type: str = "azapi_resource") -> list[str]:
    return azapi_check.check_resource(resource_type, arguments, "ns/p/serving: azapi_resource.x")


def test_a_valid_body_passes() -> None:
    assert check(_endpoint(publicNetworkAccess="Disabled")) == []
    assert check(_deployment(instanceType="Standard_D2s_v3", scaleSettings={"scaleType": "Default"},
                             dataCollector={"collections": {"model_inputs": {"dataCollectionMode": "Enabled",
                                                                             "samplingRate": 0.5}}})) == []


def test_an_unknown_property_names_the_path_and_the_closest_valid_name() -> None:
    problems = check(_deployment(dataCollector={"collections": {}, "samplingRate": 0.05}))
    assert problems == ["ns/p/serving: azapi_resource.x: body.properties.dataCollector.samplingRate: DataCollector "
                        "has no property 'samplingRate'; did you mean 'rollingRate'?"]


def test_an_unknown_property_without_a_close_name_lists_the_valid_ones() -> None:
    [problem] = check({"type": f"{ML}@2024-10-01", "resource_id": WORKSPACE_ID,
                       "body": {"properties": {"systemDatastoresAuthMode": "identity"}}}, "azapi_update_resource")
    assert "body.properties.systemDatastoresAuthMode: WorkspaceProperties has no property " \
           "'systemDatastoresAuthMode' (valid: allowPublicAccessWhenBehindVnet, " in problem


def test_a_read_only_property_is_not_written() -> None:
    assert check(_endpoint(scoringUri="https://x")) == [
        "ns/p/serving: azapi_resource.x: body.properties.scoringUri: is read-only in OnlineEndpointProperties "
        "(Azure sets it): remove it"]


def test_a_required_property_must_be_set() -> None:
    arguments = _endpoint()
    del arguments["body"]["properties"]["authMode"]
    assert check(arguments) == [
        "ns/p/serving: azapi_resource.x: body.properties.authMode: is required by OnlineEndpointProperties, "
        "and not set"]


def test_a_partial_update_is_not_asked_for_required_properties() -> None:
    arguments = {"type": ENDPOINT, "resource_id": Expr("azapi_resource.endpoint.id", ("azapi_resource.endpoint",)),
                 "body": {"properties": {"traffic": {"blue": 100}}}}
    assert check(arguments, "azapi_update_resource") == []
    assert check(arguments) != []  # as a whole resource, authMode is missing


def test_an_enum_value_must_be_one_azure_spells_and_the_case_is_suggested() -> None:
    assert check(_endpoint(authMode="aadtoken")) == [
        "ns/p/serving: azapi_resource.x: body.properties.authMode: the string 'aadtoken' is not one of 'AMLToken', "
        "'Key', 'AADToken'; did you mean 'AADToken' (Azure's case)?"]


def test_the_discriminator_selects_the_object_type() -> None:
    limits = {"containerResourceRequirements": {"containerResourceLimits": {"cpu": "1"}}}
    assert check(_deployment(**limits, endpointComputeType="Kubernetes")) == []
    [problem] = check(_deployment(**limits))  # Managed has no container resource requirements
    assert problem.startswith("ns/p/serving: azapi_resource.x: body.properties.containerResourceRequirements: "
                              "ManagedOnlineDeployment has no property 'containerResourceRequirements'")


def test_an_unknown_discriminator_value_is_named_with_azures_spelling() -> None:
    assert check(_deployment(endpointComputeType="managed")) == [
        "ns/p/serving: azapi_resource.x: body.properties.endpointComputeType: the string 'managed' selects no type "
        "of OnlineDeploymentProperties; expected one of 'Kubernetes', 'Managed'; did you mean 'Managed' "
        "(Azure's case)?"]


def test_a_missing_discriminator_is_required() -> None:
    arguments = _deployment()
    del arguments["body"]["properties"]["endpointComputeType"]
    assert check(arguments) == [
        "ns/p/serving: azapi_resource.x: body.properties.endpointComputeType: is required by "
        "OnlineDeploymentProperties: it selects the type, one of 'Kubernetes', 'Managed'"]


def test_interpolations_take_any_type_but_their_neighbours_names_are_checked() -> None:
    model = Expr("azapi_resource.model.id", ("azapi_resource.model",))
    assert check(_deployment(model=model, appInsightsEnabled=Expr("var.insights"),
                             instanceType=interp("Standard_", Expr("var.size")),
                             dataCollector=Expr("local.collector"))) == []
    [problem] = check(_deployment(model=model, modelId=model))
    assert "body.properties.modelId: ManagedOnlineDeployment has no property 'modelId'; did you mean 'model'?" \
        in problem
    # a discriminator known only at apply time: names are checked against every type it may select
    [problem] = check(_deployment(endpointComputeType=Expr("var.kind"), containerResources={}))
    assert "no type of OnlineDeploymentProperties has a property 'containerResources'" in problem


def test_nested_objects_arrays_and_kinds_are_checked() -> None:
    types = [{"$type": "ObjectType", "name": "Thing", "properties": {"items": {"type": 1, "flags": 0},
                                                                      "count": {"type": 3, "flags": 0}}},
             {"$type": "ArrayType", "itemType": 2, "maxLength": 2},
             {"$type": "ObjectType", "name": "Item", "properties": {"on": {"type": 4, "flags": 1}}},
             {"$type": "IntegerType", "minValue": 1},
             {"$type": "BooleanType"}]
    checker = Checker(types)
    assert checker.check(0, {"items": [{"on": True}, {"on": UNKNOWN}], "count": 2}, "") == []
    assert checker.check(0, {"items": [{"on": "yes"}, {}, {"on": False}], "count": 0}, "") == [
        "items: has 3 items, more than 2",
        "items[0].on: expects a bool, got the string 'yes'",
        "items[1].on: is required by Item, and not set",
        "count: 0 is less than 1",
    ]


def test_the_type_and_api_version_must_exist() -> None:
    assert check({**_endpoint(), "type": f"{ML}/onlineEndpoints@2099-01-01"}) == [
        "ns/p/serving: azapi_resource.x: type: Microsoft.MachineLearningServices/workspaces/onlineEndpoints has no "
        "API version 2099-01-01 in azapi v2.12.0-7-gc43c57bbd; the closest are " + ", ".join(
            sorted(__import__("difflib").get_close_matches("2099-01-01", catalog().versions[f"{ML}/onlineEndpoints"],
                                                           n=3, cutoff=0.0)))]
    [problem] = check({**_endpoint(), "type": "Microsoft.Nothing/things@2024-01-01"})
    assert "Microsoft.Nothing/things is not vendored, so its body cannot be checked: run " \
           "tools/vendor_azapi_types.py" in problem
    [problem] = check({**_endpoint(), "type": f"{ML}/onlineEndpoints@2025-06-01"})
    assert "exists in azapi v2.12.0-7-gc43c57bbd but is not vendored" in problem


def test_identity_and_tags_of_the_resource_are_checked_as_azapi_does() -> None:
    identity = Block({"type": "UserAssigned", "identity_ids": [Expr("var.identity")]})
    assert check({**_endpoint(), "identity": identity, "tags": {"team": "ml"}}) == []
    [problem] = check({**_endpoint(), "identity": Block({"type": "userAssigned"})})
    assert problem.startswith("ns/p/serving: azapi_resource.x: identity.type: the string 'userAssigned' is not one "
                              "of ")


@pytest.mark.skipif(not importlib.util.find_spec("cdktn_provider_azurerm"),
                    reason="validate --schema needs the cdktn bindings (pip install '.[cdktn]')")
def test_validate_schema_reports_azapi_bodies() -> None:
    stack = Stack("serving")
    stack.add(Resource("azapi_resource", "endpoint", {**_endpoint(authMode="key"), "parent_id": "/subscriptions/s"}))
    problems = validate([("ns/p/serving", stack)], schema=True).problems
    assert problems == ["ns/p/serving: azapi_resource.endpoint: body.properties.authMode: the string 'key' is not "
                        "one of 'AMLToken', 'Key', 'AADToken'; did you mean 'Key' (Azure's case)?"]


def test_the_vendored_types_are_small_and_name_their_source() -> None:
    root = resources.files("mlops_dsl").joinpath("vendor/azapi")
    data = json.loads(root.joinpath("types.json").read_text(encoding="utf-8"))
    assert len(root.joinpath("types.json").read_bytes()) < 512 * 1024
    assert data["source"]["repo"] == "Azure/terraform-provider-azapi"
    assert data["source"]["commit"] in root.joinpath("NOTICE.md").read_text(encoding="utf-8")
    assert all("@" in name for name in data["resources"])
