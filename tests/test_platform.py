"""The dependency graph: deploy order, destroy order, cycles, undeclared templates; and the
generic cross-stack wiring through terraform_remote_state."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mlops_dsl import DataInfrastructure, GraphError, Platform
from mlops_dsl.aws import RENDERERS
from mlops_dsl.errors import BlueprintError, ParameterError
from mlops_dsl.namespaces import parse
from mlops_dsl.templates.base import Template
from mlops_dsl.terraform import Output, Resource, check_references, render

from .conftest import NAMESPACES


@dataclass(eq=False, repr=False)
class Node(Template):
    """A test template whose dependencies are whatever it is given."""

    deps: list = field(default_factory=list)
    name: str = field(default="node", kw_only=True)


def _platform(*nodes: Template) -> Platform:
    return Platform("graph-test", cloud="aws").add(*nodes)


def test_deploy_order_is_topological_with_ties_in_declaration_order() -> None:
    a = Node(name="a")
    c = Node([a], name="c")
    b = Node([a], name="b")
    d = Node([b, c], name="d")
    e = Node(name="e")
    p = _platform(d, c, e, b, a)
    order = p.deploy_order()
    assert order == ["e", "a", "c", "b", "d"]
    assert p.destroy_order() == list(reversed(order))
    for name, deps in p.edges().items():
        assert all(order.index(dep) < order.index(name) for dep in deps)


def test_cycle_is_an_error_naming_the_templates() -> None:
    a = Node(name="a")
    b = Node([a], name="b")
    c = Node([b], name="c")
    a.deps.append(c)  # only mutation after declaration can close a loop
    p = _platform(a, b, c)
    with pytest.raises(GraphError, match=r"dependency cycle: a -> c -> b -> a"):
        p.deploy_order()


def test_referenced_but_undeclared_template_is_an_error() -> None:
    data = DataInfrastructure()
    user = Node([data], name="features")
    p = _platform(user)
    with pytest.raises(GraphError) as err:
        p.deploy_order()
    message = str(err.value)
    assert "Node 'features' depends on DataInfrastructure 'data', which is not part of the platform" in message
    assert "test_platform.py:" in message  # located at the declaration


def test_duplicate_names_and_bad_platform_arguments_are_rejected() -> None:
    with pytest.raises(BlueprintError, match="two templates are named 'data'"):
        _platform(DataInfrastructure(), DataInfrastructure())
    with pytest.raises(ParameterError, match="Platform name must be"):
        Platform("Customer_Churn", cloud="aws")
    with pytest.raises(ParameterError, match=r"cloud must be one of aws, azure\. Got 'gcp'"):
        Platform("churn", cloud="gcp")


@dataclass(eq=False, repr=False)
class Reader(Template):
    """A test template that reads an upstream output, to exercise remote state wiring."""

    data: Template
    name: str = field(default="reader", kw_only=True)


def _render_reader(t: Reader, ctx) -> None:
    arn = ctx.upstream_output(t.data, "kms_key_arn")
    topic = Resource("aws_sns_topic", "t", {"name": "t", "kms_master_key_id": arn})
    ctx.stack.add(topic, Output("topic_arn", topic.attr("arn")))


def test_cross_stack_values_travel_through_remote_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RENDERERS, Reader, _render_reader)  # type: ignore[index]
    data = DataInfrastructure()
    p = Platform("churn", cloud="aws").add(Reader(data), data)
    ns = parse(NAMESPACES)["dev"]
    builds = p.synth(ns)
    assert [b.template for b in builds] == ["data", "reader"]
    assert builds[1].depends_on == ("data",)
    reader = builds[1].stack
    assert check_references(reader) == []
    files = render(reader)
    remote = files["remote_state.tf"]
    assert 'data "terraform_remote_state" "data" {' in remote
    assert 'key    = "churn/dev/data.tfstate"' in remote and 'bucket = "state-dev"' in remote
    assert "kms_master_key_id = data.terraform_remote_state.data.outputs.kms_key_arn" in files["main.tf"]
    assert 'key          = "churn/dev/reader.tfstate"' in files["versions.tf"]


def test_reading_an_output_the_upstream_does_not_declare_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    def bad(t: Reader, ctx) -> None:
        ctx.upstream_output(t.data, "no_such_output")

    monkeypatch.setitem(RENDERERS, Reader, bad)  # type: ignore[index]
    data = DataInfrastructure()
    p = Platform("churn", cloud="aws").add(data, Reader(data))
    with pytest.raises(RuntimeError, match="declares no output 'no_such_output'"):
        p.synth(parse(NAMESPACES)["dev"])


AZURE_NAMESPACES = """\
namespaces:
  dev:
    tags: {team: ml}
    azure:
      subscription_id: 00000000-0000-0000-0000-000000000001
      tenant_id: 00000000-0000-0000-0000-000000000002
      location: westeurope
      backend:
        resource_group_name: rg-tfstate
        storage_account_name: sttfstatedev
        container_name: tfstate
"""


def _render_azure_data(t: DataInfrastructure, ctx) -> None:
    group = Resource("azurerm_resource_group", "main", {"name": "rg", "location": "westeurope"})
    ctx.stack.add(group, Output("kms_key_arn", group.attr("id")))


def test_azure_stacks_use_the_azurerm_backend_and_remote_state(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_dsl import azure

    monkeypatch.setitem(azure.RENDERERS, DataInfrastructure, _render_azure_data)  # type: ignore[index]
    monkeypatch.setitem(azure.RENDERERS, Reader, _render_reader)  # type: ignore[index]
    data = DataInfrastructure()
    p = Platform("fin", cloud="azure").add(data, Reader(data))
    builds = p.synth(parse(AZURE_NAMESPACES)["dev"])
    files = render(builds[1].stack)
    versions = files["versions.tf"]
    assert 'source  = "hashicorp/azurerm"\n      version = ">= 4.55, < 5.0"' in versions
    assert 'backend "azurerm" {' in versions and 'key                  = "fin/dev/reader.tfstate"' in versions
    assert "use_azuread_auth     = true" in versions and "storage_use_azuread = true" in versions
    assert '"fin/dev/data.tfstate"' in files["remote_state.tf"] and 'backend = "azurerm"' in files["remote_state.tf"]
