"""Notebooks, opt-in per namespace (README: Notebooks): the users in namespaces.yaml, the Studio
domain on AWS (VpcOnly, on the key, its own security group and least-privilege role, one profile
per user) and one personal Azure ML compute instance per user, checked against the provider
schemas and azapi's types. Neither cloud's emulator has them, so nothing here applies one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops_dsl import DataInfrastructure, Dataset, Platform, TrainingInfrastructure
from mlops_dsl.azure.notebooks import instance_name
from mlops_dsl.errors import NamespaceError
from mlops_dsl.namespaces import load, parse
from mlops_dsl.validate import validate

from .conftest import ROOT

TAGS = {"training": "aaaaaaaaaaaa", "serving": "bbbbbbbbbbbb"}
DATASET = Dataset(target="churned", id_column="id", numeric=["tenure"], categorical=["plan"])
ALICE = "0000aaaa-0000-4000-8000-00000000a11c"
NAMESPACES = f"""\
defaults:
  aws: {{region: eu-west-1}}
  azure: {{tenant_id: 00000000-0000-0000-0000-0000000000aa, location: westeurope}}
namespaces:
  dev:
    notebooks:
      users:
        - {{name: alice, azure_object_id: {ALICE}}}
        - {{name: bob-k, azure_object_id: 0000bbbb-0000-4000-8000-00000000b0b0}}
    aws: {{account_id: "111111111111", backend: {{bucket: state-dev}}}}
    azure:
      subscription_id: 11111111-1111-1111-1111-111111111111
      backend: {{resource_group_name: rg-state, storage_account_name: ststate, container_name: tfstate}}
"""


def _stacks(cloud: str, text: str = NAMESPACES) -> dict:
    data = DataInfrastructure()
    platform = Platform("churn", cloud=cloud).add(data, TrainingInfrastructure(data, dataset=DATASET))
    return {b.template: b.stack for b in platform.synth(replace(parse(text)["dev"], pins={}), image_tags=TAGS)}


def _of(stack, kind: str) -> dict:
    return {r.name: r for r in stack.resources if r.type == kind}


def _hcl(value) -> str:
    from mlops_dsl.terraform.hcl import expression

    return "\n".join(expression(value, 0))


# --- namespaces.yaml ---------------------------------------------------------------------------

def test_the_shipped_file_gives_dev_one_user_and_nobody_else_notebooks() -> None:
    spaces = load(ROOT / "namespaces.yaml")
    assert [u.name for u in spaces["dev"].notebook_users] == ["alice"]
    assert {n for n, ns in spaces.items() if ns.notebook_users} == {"dev"}


@pytest.mark.parametrize(("users", "expected"), [
    ("[Alice]", "user name 'Alice': expected 2 to 32 lowercase letters, digits and hyphens, starting with a letter"),
    (f"[{{name: alice, azure_object_id: {ALICE}}}, {{name: alice, azure_object_id: {ALICE}}}]",
     "user 'alice' is listed twice"),
    ("[{name: alice, azure_object_id: not-a-guid}]",
     "user 'alice': azure_object_id 'not-a-guid': expected an Entra ID object id (a lowercase GUID)"),
    ("[{name: alice, email: a@b.io}]", "expected a name or a mapping with keys name, azure_object_id"),
    ("[]", "expected a non-empty list of users"),
])
def test_a_bad_user_names_the_file_the_field_and_the_value(users: str, expected: str) -> None:
    text = NAMESPACES.split("    notebooks:")[0] + f"    notebooks:\n      users: {users}\n" + \
        NAMESPACES.split("0000bbbb-0000-4000-8000-00000000b0b0}\n")[1]
    with pytest.raises(NamespaceError) as err:
        parse(text, "ns.yaml")
    assert "ns.yaml: namespaces.dev.notebooks.users: " in str(err.value) and expected in str(err.value)


def test_on_azure_every_user_needs_an_object_id_and_the_emulator_has_no_studio() -> None:
    nameless = NAMESPACES.replace(f"{{name: alice, azure_object_id: {ALICE}}}", "alice")
    with pytest.raises(NamespaceError, match=r"namespaces\.dev\.notebooks\.users: user 'alice' has no azure_object_id"):
        parse(nameless)
    aws_only = nameless.split("    azure:\n")[0] + "    azure: null\n"
    assert [u.name for u in parse(aws_only)["dev"].notebook_users] == ["alice", "bob-k"]  # AWS needs no object id
    emulated = aws_only.replace('backend: {bucket: state-dev}', 'endpoint: "http://127.0.0.1:4566", '
                                                                'backend: {bucket: state-dev}')
    with pytest.raises(NamespaceError, match=r"namespaces\.dev\.notebooks: the local AWS emulator has no SageMaker "
                                             r"Studio"):
        parse(emulated)


# --- AWS ---------------------------------------------------------------------------------------

def test_the_studio_domain_is_vpc_only_on_the_key_with_a_profile_per_user() -> None:
    training = _stacks("aws")["training"]
    domain = _of(training, "aws_sagemaker_domain")["notebooks"].body
    assert domain["auth_mode"] == "IAM" and domain["app_network_access_type"] == "VpcOnly"
    assert _hcl(domain["kms_key_id"]) == "data.terraform_remote_state.data.outputs.kms_key_arn"
    assert _hcl(domain["subnet_ids"]) == "data.terraform_remote_state.data.outputs.private_subnet_ids"
    assert domain["retention_policy"].body == {"home_efs_file_system": "Retain"}
    for kind in ("default_user_settings", "default_space_settings"):  # private and shared spaces alike
        settings = domain[kind].body
        assert _hcl(settings["execution_role"]) == "aws_iam_role.notebooks.arn", kind
        assert _hcl(settings["security_groups"]) == "[aws_security_group.notebooks.id]", kind
    profiles = _of(training, "aws_sagemaker_user_profile")
    assert {p.body["user_profile_name"] for p in profiles.values()} == {"alice", "bob-k"}
    assert set(profiles) == {"alice", "bob_k"}
    assert "notebooks_home_efs_id" in {o.name for o in training.outputs}  # a destroy retains it: say where


def test_the_studio_group_reaches_only_the_endpoints_s3_and_its_own_apps() -> None:
    training = _stacks("aws")["training"]
    egress = {n: r.body for n, r in _of(training, "aws_vpc_security_group_egress_rule").items()}
    assert set(egress) == {"notebooks_endpoints", "notebooks_s3", "notebooks_apps"}
    assert not any("cidr_ipv4" in r or "cidr_ipv6" in r for r in egress.values())  # no internet
    assert _hcl(egress["notebooks_endpoints"]["referenced_security_group_id"]) == \
        "data.terraform_remote_state.data.outputs.endpoints_security_group_id"
    assert (egress["notebooks_apps"]["from_port"], egress["notebooks_apps"]["to_port"]) == (8192, 65535)
    ingress = {n: r.body for n, r in _of(training, "aws_vpc_security_group_ingress_rule").items()}
    assert _hcl(ingress["endpoints_from_notebooks"]["referenced_security_group_id"]) == \
        "aws_security_group.notebooks.id"


def test_the_notebook_role_reads_data_and_runs_studio_apps_only() -> None:
    training = _stacks("aws")["training"]
    statements = {s["Sid"]: s for s in
                  _of(training, "aws_iam_role_policy")["notebooks"].body["policy"].args[0]["Statement"]}
    actions = {a for s in statements.values() for a in s["Action"]}
    assert not {a for a in actions if a.startswith(("iam:", "s3:Put", "s3:Delete", "sagemaker:CreateTraining"))}
    assert not any(a.endswith(":*") for a in actions)  # no tracking server in this namespace
    reads = [_hcl(r) for r in statements["ReadZones"]["Resource"]]
    assert reads == [f'"${{data.terraform_remote_state.data.outputs.bucket_arns["{z}"]}}/*"'
                     for z in ("processed", "experiments")]
    apps = [_hcl(r) for r in statements["StudioAppsInThisDomain"]["Resource"]]
    assert all("${aws_sagemaker_domain.notebooks.id}" in r for r in apps)
    # with the tracking server, the notebooks may log to it, and to it only
    tracked = NAMESPACES.replace("    notebooks:\n", "    tracking: {server: Small}\n    notebooks:\n")
    role = _of(_stacks("aws", tracked)["training"], "aws_iam_role_policy")["notebooks"]
    log = [s for s in role.body["policy"].args[0]["Statement"] if s["Sid"] == "LogToTrackingServer"]
    assert log == [{"Sid": "LogToTrackingServer", "Effect": "Allow", "Action": ["sagemaker-mlflow:*"],
                    "Resource": ["arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/churn-dev"]}]


def test_opted_out_there_is_no_domain() -> None:
    text = NAMESPACES.split("    notebooks:")[0] + NAMESPACES.split("0000bbbb-0000-4000-8000-00000000b0b0}\n")[1]
    stacks = _stacks("aws", text)
    assert not _of(stacks["training"], "aws_sagemaker_domain")
    stacks = _stacks("azure", text)
    assert not [r for r in stacks["training"].resources if "computes@" in str(r.body.get("type", ""))]


# --- Azure -------------------------------------------------------------------------------------

def test_each_user_gets_a_personal_instance_without_public_ip_that_stops_when_idle() -> None:
    training = _stacks("azure")["training"]
    instances = {n: r.body for n, r in _of(training, "azapi_resource").items() if n.startswith("notebook_")}
    assert set(instances) == {"notebook_alice", "notebook_bob_k"}
    alice = instances["notebook_alice"]
    assert alice["type"] == "Microsoft.MachineLearningServices/workspaces/computes@2025-12-01"
    assert 3 <= len(alice["name"]) <= 24 and alice["name"].startswith("alice-")
    outer = alice["body"]["properties"]
    assert outer["computeType"] == "ComputeInstance" and outer["disableLocalAuth"] is True
    inner = outer["properties"]
    assert inner["enableNodePublicIp"] is False and "subnet" not in inner  # the managed network places it
    assert inner["sshSettings"] == {"sshPublicAccess": "Disabled"}
    assert inner["idleTimeBeforeShutdown"] == "PT30M"
    assert inner["computeInstanceAuthorizationType"] == "personal"
    assert inner["personalComputeInstanceSettings"] == {
        "assignedUser": {"objectId": ALICE, "tenantId": "00000000-0000-0000-0000-0000000000aa"}}
    grants = {n: r.body for n, r in _of(training, "azurerm_role_assignment").items() if n.startswith("notebook_")}
    assert grants["notebook_alice"]["role_definition_name"] == "AzureML Data Scientist"
    assert grants["notebook_alice"]["principal_id"] == ALICE


def test_instance_names_are_unique_per_platform_and_namespace_within_azure_limits() -> None:
    class Ctx:
        def __init__(self, name: str) -> None:
            self.name = name
    names = {instance_name(Ctx(n), "a-very-long-user-name-indeed") for n in ("churn-dev", "churn-prod", "fin-dev")}
    assert len(names) == 3 and all(len(n) <= 24 and n[0].isalpha() and "--" not in n for n in names)


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_the_rendering_matches_the_provider_schemas_and_azapi_types(cloud: str) -> None:
    stacks = _stacks(cloud)
    report = validate([(f"dev/churn/{name}", stack) for name, stack in stacks.items()], schema=True)
    assert report.problems == []
    if cloud == "azure":
        assert report.azapi_bodies > 0
