"""namespaces.yaml: every error names the file, namespace, key and value; merging and overrides."""

from __future__ import annotations

import textwrap

import pytest

from mlops_dsl import DataInfrastructure, NamespaceError, Platform
from mlops_dsl.namespaces import load, parse

from .conftest import NAMESPACES, ROOT


def _errors(text: str) -> list[str]:
    with pytest.raises(NamespaceError) as err:
        parse(textwrap.dedent(text), "ns.yaml")
    return err.value.problems


def test_defaults_merge_into_each_namespace() -> None:
    spaces = parse(NAMESPACES)
    assert list(spaces) == ["dev", "prod"]
    dev, prod = spaces["dev"], spaces["prod"]
    assert dev.approval == "auto" and prod.approval == "manual"
    assert dev.tags == {"team": "ml"}
    assert dev.aws is not None and dev.aws.region == "eu-west-1" and dev.aws.account_id == "111111111111"
    assert dev.aws.backend.bucket == "state-dev" and dev.aws.backend.region == "eu-west-1"


def test_shipped_namespaces_file_is_valid() -> None:
    spaces = load(ROOT / "namespaces.yaml")
    assert {"dev", "staging", "prod"} <= set(spaces)
    assert spaces["dev"].approval == "auto" and spaces["staging"].approval == "auto"
    assert spaces["prod"].approval == "manual"


@pytest.mark.parametrize(("text", "expected"), [
    ("namespaces:\n  dev:\n    aproval: auto\n",
     "ns.yaml: namespaces.dev.aproval: unknown key (known keys: approval, platforms, tags, aws, azure, alerts, "
     "budget, models, tracking, notebooks, overrides)"),
    ("namespaces:\n  dev:\n    approval: sometimes\n",
     "ns.yaml: namespaces.dev.approval: expected one of auto, manual; got 'sometimes'"),
    ("namespaces:\n  dev:\n    aws: {account_id: 123456789012, region: eu-west-1, backend: {bucket: b-1}}\n",
     "ns.yaml: namespaces.dev.aws.account_id: expected a 12-digit AWS account id; write it in quotes"),
    ("namespaces:\n  dev:\n    aws: {account_id: '1', region: eu-west-1, backend: {bucket: b-1}}\n",
     "ns.yaml: namespaces.dev.aws.account_id: expected a 12-digit AWS account id; got '1'"),
    ("namespaces:\n  dev:\n    aws: {account_id: '111111111111', region: Europe, backend: {bucket: b-1}}\n",
     "ns.yaml: namespaces.dev.aws.region: expected an AWS region such as eu-west-1; got 'Europe'"),
    ("namespaces:\n  dev:\n    aws: {account_id: '111111111111', region: eu-west-1}\n",
     "ns.yaml: namespaces.dev.aws.backend.bucket: required, and set neither here nor under defaults.aws"),
    ("namespaces:\n  dev:\n    tags: {team: 42}\n",
     "ns.yaml: namespaces.dev.tags: tag 'team' has value 42: expected a string"),
    ("namespaces:\n  dev:\n    tags: ['a']\n",
     "ns.yaml: namespaces.dev.tags: expected a mapping of tag names to string values; got ['a']"),
    ("namespaces:\n  Dev:\n    approval: auto\n",
     "ns.yaml: namespaces.Dev: a namespace name must be 2 to 16 lowercase letters"),
    ("namespaces:\n  dev:\n    overrides: {data: 3}\n",
     "ns.yaml: namespaces.dev.overrides: expected a mapping of template name -> {parameter: value}; got {'data': 3}"),
    ("defaults:\n  aws: {regionn: eu-west-1}\nnamespaces:\n  dev: {}\n",
     "ns.yaml: defaults.aws.regionn: unknown key (known keys: account_id, region, endpoint, backend)"),
    ("namespaces:\n  dev:\n    aws: {account_id: '111111111111', region: eu-west-1, endpoint: 'http://10.1.2.3:4566', "
     "backend: {bucket: b-1}}\n",
     "ns.yaml: namespaces.dev.aws.endpoint: expected the URL of a local AWS emulator on this machine"),
    ("namespaces:\n  dev:\n    platforms: churn\n",
     "ns.yaml: namespaces.dev.platforms: expected a non-empty list of platform names; got 'churn'"),
    ("namespaces:\n  dev:\n    alerts: {emails: [not-an-address]}\n",
     "ns.yaml: namespaces.dev.alerts.emails: expected a list of e-mail addresses; got ['not-an-address']"),
    ("spaces: {}\n", "ns.yaml: spaces: unknown top-level key (known keys: defaults, namespaces)"),
    ("namespaces: []\n", "ns.yaml: namespaces: expected a mapping of namespace name -> settings; got []"),
    ("- a\n- b\n", "ns.yaml: expected a mapping with keys 'defaults' and 'namespaces'; got ['a', 'b']"),
    ("namespaces:\n  dev: {}\n  dev: {}\n", "ns.yaml:3:3: not valid YAML: duplicate key 'dev'"),
    ("namespaces:\n  dev: [\n", "ns.yaml:3:1: not valid YAML"),
])
def test_each_error_names_file_key_and_value(text: str, expected: str) -> None:
    problems = _errors(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_all_problems_are_reported_at_once() -> None:
    problems = _errors("namespaces:\n  dev:\n    approval: x\n    colour: red\n")
    assert len(problems) == 2


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(NamespaceError, match=r"namespaces.yaml: not found"):
        load(tmp_path / "namespaces.yaml")


def _ns_with_overrides(overrides: str):
    text = NAMESPACES + textwrap.indent(textwrap.dedent(overrides), "    ")
    return parse(text, "ns.yaml")["prod"]


def test_overrides_replace_parameters_per_namespace() -> None:
    data = DataInfrastructure()
    platform = Platform("churn", cloud="aws").add(data)
    prod = _ns_with_overrides("overrides:\n  data:\n    noncurrent_version_days: 365\n")
    resolved = platform.resolve(prod)["data"]
    assert resolved.noncurrent_version_days == 365
    assert data.noncurrent_version_days == 90  # the blueprint's own object is untouched


@pytest.mark.parametrize(("overrides", "expected"), [
    ("overrides:\n  data:\n    zonez: [a]\n",
     "ns.yaml: namespaces.prod.overrides.data.zonez: DataInfrastructure 'data' has no overridable parameter 'zonez'"),
    ("overrides:\n  data:\n    noncurrent_version_days: 0\n",
     "ns.yaml: namespaces.prod.overrides.data: The 'noncurrent_version_days' parameter of DataInfrastructure "
     "'data' must be an int in the range [1, 3650]. Got 0 instead."),
    ("overrides:\n  data:\n    name: other\n",
     "ns.yaml: namespaces.prod.overrides.data.name: DataInfrastructure 'data' has no overridable parameter 'name'"),
])
def test_bad_overrides_name_file_namespace_key_and_value(overrides: str, expected: str) -> None:
    platform = Platform("churn", cloud="aws").add(DataInfrastructure())
    with pytest.raises(NamespaceError) as err:
        platform.resolve(_ns_with_overrides(overrides))
    assert any(p.startswith(expected) for p in err.value.problems), err.value.problems


def test_local_namespace_renders_only_its_platform_into_the_emulator() -> None:
    from mlops_dsl import blueprints, synth

    spaces = load(ROOT / "namespaces.yaml")
    local = spaces["local"]
    assert local.azure is None and local.platforms == ("customer-churn",)
    assert local.aws is not None and local.aws.endpoint == "http://127.0.0.1:4566"
    rendered = synth.render_tree(blueprints.load(None), [local], root=ROOT)
    assert {rel.split("/")[1] for rel in rendered.files} == {"customer-churn"}
    versions = rendered.files["local/customer-churn/serving/versions.tf"]
    assert 'sagemaker              = "http://127.0.0.1:4566"' in versions
    assert "use_path_style              = true" in versions  # the S3 backend keeps state in the emulator
    remote = rendered.files["local/customer-churn/training/remote_state.tf"]
    assert 's3  = "http://127.0.0.1:4566"' in remote
    assert "endpoint" not in (ROOT / "terraform/dev/customer-churn/serving/versions.tf").read_text()


def test_a_platform_list_must_name_declared_platforms() -> None:
    from mlops_dsl import blueprints, synth

    text = (ROOT / "namespaces.yaml").read_text().replace("platforms: [customer-churn]", "platforms: [customer-chrun]")
    spaces = parse(text, "ns.yaml")
    with pytest.raises(NamespaceError) as err:
        synth.render_tree(blueprints.load(None), [spaces["local"]], root=ROOT)
    assert err.value.problems == ["ns.yaml: namespaces.local.platforms: no blueprint declares a platform named "
                                  "'customer-chrun' (platforms: customer-churn, financial-behavior)"]


# --- the model lifecycle: which registry a namespace serves from, and the promotion chain --------

CHAIN = """\
defaults:
  aws: {region: eu-west-1}
  models: {registry: dev}
namespaces:
  dev: {aws: {account_id: "111111111111", backend: {bucket: s-dev}}}
  staging: {models: {promoted_from: dev}, aws: {account_id: "222222222222", backend: {bucket: s-stg}}}
  prod: {models: {promoted_from: staging}, aws: {account_id: "333333333333", backend: {bucket: s-prd}}}
"""


def test_one_registry_serves_the_chain_and_knows_its_consumers() -> None:
    spaces = parse(CHAIN)
    assert [spaces[n].registry for n in spaces] == ["dev", "dev", "dev"]
    assert spaces["dev"].owns_registry and not spaces["prod"].owns_registry
    assert spaces["prod"].promoted_from == "staging" and spaces["dev"].promoted_from is None
    assert spaces["dev"].consumer_accounts == ("222222222222", "333333333333")
    assert spaces["prod"].consumer_accounts == () and spaces["prod"].registry_aws.account_id == "111111111111"
    # Without a models section every namespace is its own registry.
    assert parse(NAMESPACES)["prod"].owns_registry


@pytest.mark.parametrize(("change", "expected"), [
    (("registry: dev", "registry: qa"), "ns.yaml: namespaces.dev.models.registry: no namespace 'qa' (namespaces: dev, "
                                        "staging, prod)"),
    (("promoted_from: staging", "promoted_from: uat"), "ns.yaml: namespaces.prod.models.promoted_from: no namespace "
                                                       "'uat'"),
    (("prod: {models: {promoted_from: staging}", "prod: {models: {registry: prod, promoted_from: staging}"),
     "ns.yaml: namespaces.prod.models.promoted_from: 'staging' reads the registry of 'dev', 'prod' that of 'prod'"),
    (("dev: {aws", "dev: {models: {promoted_from: prod}, aws"),
     "the promotion chain is a cycle"),
    (("registry: dev", "registry: Dev"), "ns.yaml: defaults.models.registry: expected a namespace name"),
])
def test_lifecycle_errors_name_the_key(change, expected: str) -> None:
    problems = _errors(CHAIN.replace(*change))
    assert any(expected in p for p in problems), problems


def test_pins_are_read_beside_namespaces_yaml(tmp_path) -> None:
    (tmp_path / "namespaces.yaml").write_text(CHAIN)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "prod.yaml").write_text(
        "churn:\n  champion: {version: 3, group: churn-dev, image: 0123456789ab, sha256: " + "a" * 64
        + ", artifact: s3://churn-dev-models-111111111111/x/model.tar.gz}\n")
    spaces = load(tmp_path / "namespaces.yaml")
    assert spaces["prod"].pins["churn"]["champion"].version == 3
    assert spaces["dev"].pins == {}


def test_a_pin_of_a_platform_the_namespace_does_not_serve_is_an_error() -> None:
    from dataclasses import replace

    from mlops_dsl import blueprints, synth

    spaces = load(ROOT / "namespaces.yaml")
    prod = spaces["prod"]
    typo = replace(prod, pins={"customer-chrun": prod.pins["customer-churn"]})
    with pytest.raises(NamespaceError) as err:
        synth.render_tree(blueprints.load(None), [typo], root=ROOT)
    assert err.value.problems == [f"{ROOT / 'models' / 'prod.yaml'}: customer-chrun: namespace 'prod' serves no "
                                  f"platform named 'customer-chrun' (platforms: customer-churn, financial-behavior)"]


# Which provider service endpoint each resource type of the AWS stacks calls.
_SERVICE_OF = [("aws_appautoscaling_", "applicationautoscaling"), ("aws_cloudwatch_event_", "events"),
               ("aws_cloudwatch_log_", "logs"), ("aws_cloudwatch_metric_alarm", "cloudwatch"),
               ("aws_cloudwatch_dashboard", "cloudwatch"), ("aws_budgets_", "budgets"),
               ("aws_flow_log", "ec2"), ("aws_vpc", "ec2"), ("aws_subnet", "ec2"), ("aws_route", "ec2"),
               ("aws_security_group", "ec2"), ("aws_default_security_group", "ec2"), ("aws_ecr_", "ecr"),
               ("aws_glue_", "glue"), ("aws_iam_", "iam"), ("aws_kms_", "kms"), ("aws_s3_", "s3"),
               ("aws_sagemaker_", "sagemaker"), ("aws_scheduler_", "scheduler"), ("aws_sfn_", "sfn"),
               ("aws_sns_", "sns"), ("aws_sqs_", "sqs")]


@pytest.mark.parametrize("pinned", [False, True])
def test_every_service_the_local_namespace_calls_goes_to_the_emulator(pinned: bool) -> None:
    """A resource whose service endpoint is not redirected would call real AWS from the local namespace."""
    from dataclasses import replace

    from mlops_dsl import blueprints, synth
    from mlops_dsl.aws.provider import EMULATED_SERVICES

    local = load(ROOT / "namespaces.yaml")["local"]
    if pinned:  # the serving stack with an endpoint, as after the first promotion
        local = replace(local, pins={"customer-churn": load(ROOT / "namespaces.yaml")["dev"].pins["customer-churn"]})
    rendered = synth.render_tree(blueprints.load(None), [local], root=ROOT)
    types = {r.type for _, stack in rendered.stacks() for r in stack.resources}
    types |= {f"data:{d.type}" for _, stack in rendered.stacks() for d in stack.data if d.type.startswith("aws_")}
    missing = []
    for kind in sorted(types):
        name = kind.removeprefix("data:")
        if name == "terraform_data":  # the endpoint's update step: its command is sent to the emulator
            steps = [r for _, stack in rendered.stacks() for r in stack.resources if r.type == name]
            assert all(r.body["provisioner"].body["environment"]["AWS_ENDPOINT_URL"] == local.aws.endpoint
                       for r in steps)
            continue
        service = next((s for prefix, s in _SERVICE_OF if name.startswith(prefix)), None)
        if service is None or service not in EMULATED_SERVICES:
            missing.append(f"{kind} ({service or 'no known service'})")
    assert missing == []
