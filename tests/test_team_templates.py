"""A team's own templates: a Template subclass and a renderer registered per cloud from the team's
repository get the built-in four's validation, remote state wiring and deploy ordering."""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path

import pytest

from mlops_dsl import BlueprintError, DataInfrastructure, ParameterError, Template, register_renderer
from mlops_dsl.renderers import registered

from .conftest import NAMESPACES

ROOT = Path(__file__).resolve().parent.parent

# A team package beside the blueprint, as blueprints/team_templates/ is in this repository: a template
# reading DataInfrastructure's outputs, and a second one depending on the first (ordering, chained reads).
TEAM = textwrap.dedent('''\
    from dataclasses import dataclass, field
    from typing import ClassVar

    from mlops_dsl import (Constraint, DataInfrastructure, InstanceOf, Interval, Output, Pattern, Resource,
                           StackContext, Template, renderer)


    @dataclass(eq=False, repr=False)
    class Inventory(Template):
        data: DataInfrastructure
        zone: str = "raw"
        name: str = field(default="inventory", kw_only=True)

        _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
            "data": [InstanceOf(DataInfrastructure)],
            "zone": [Pattern(r"[a-z]+", "a zone name")],
            "name": [Pattern(r"[a-z][a-z0-9-]{0,18}[a-z0-9]", "a template name")],
        }

        def _check_combinations(self):
            if self.zone not in self.data.zones:
                return [f"Inventory '{self.name}': zone {self.zone!r} is not a zone of '{self.data.name}'"]
            return []


    @dataclass(eq=False, repr=False)
    class Report(Template):
        inventory: Inventory
        days: int = 7
        name: str = field(default="report", kw_only=True)

        _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
            "inventory": [InstanceOf(Inventory)],
            "days": [Interval(int, 1, 30)],
            "name": [Pattern(r"[a-z][a-z0-9-]{0,18}[a-z0-9]", "a template name")],
        }


    @renderer(Inventory, cloud="aws")
    def inventory_aws(t: Inventory, ctx: StackContext) -> None:
        bucket = ctx.upstream_output(t.data, "bucket_names")[t.zone]
        marker = Resource("terraform_data", "inventory", {"input": bucket})
        ctx.stack.add(marker, Output("watched_bucket", marker.attr("output")))


    @renderer(Report, cloud="aws")
    def report_aws(t: Report, ctx: StackContext) -> None:
        watched = ctx.upstream_output(t.inventory, "watched_bucket")
        key = ctx.upstream_output(t.inventory.data, "kms_key_arn")
        ctx.stack.add(Resource("terraform_data", "report", {"input": [watched, key, t.days]}))
    ''')

BLUEPRINT = textwrap.dedent("""\
    from team import Inventory, Report

    from mlops_dsl import DataInfrastructure, Platform

    platform = Platform("churn", cloud="aws")
    data = DataInfrastructure(zones=["raw", "models"])
    {body}
    """)


@pytest.fixture(autouse=True)
def _fresh_team_package():
    """Each test's project has its own `team` package: forget the one an earlier test imported."""
    import sys

    yield
    for name in [n for n in sys.modules if n == "team" or n.startswith("team.")]:
        del sys.modules[name]


def _project(project, body: str, team: str = TEAM):
    project.write("blueprints/team/__init__.py", team)
    project.write("blueprints/churn.py", BLUEPRINT.format(body=textwrap.dedent(body).strip()))
    return project


def test_team_templates_get_remote_state_ordering_and_validation(project):
    _project(project, """\
        report = Report(Inventory(data, zone="models"), days=3)
        platform.add(report, report.inventory, data)
        """)
    result = project.mlops("synth")
    assert result.exit_code == 0, result.output
    tree = project.tree()
    manifest = json.loads(tree["dev/churn/stacks.json"])
    # Declared in the wrong order on purpose: dependencies decide.
    assert manifest["order"] == ["data", "inventory", "report"]
    assert manifest["stacks"]["inventory"]["depends_on"] == ["data"]
    assert manifest["stacks"]["report"]["depends_on"] == ["data", "inventory"]
    remote = tree["dev/churn/report/remote_state.tf"].decode()
    assert 'key    = "churn/dev/inventory.tfstate"' in remote and 'key    = "churn/dev/data.tfstate"' in remote
    assert 'bucket = "state-dev"' in remote
    main = tree["dev/churn/inventory/main.tf"].decode()
    assert 'input = data.terraform_remote_state.data.outputs.bucket_names["models"]' in main
    versions = tree["prod/churn/report/versions.tf"].decode()
    assert 'key          = "churn/prod/report.tfstate"' in versions  # its own state, in its namespace's backend
    result = project.mlops("validate", "--schema")
    assert result.exit_code == 0, result.output
    # A namespace overrides a team template's parameters like a built-in's, validated the same way.
    project.write("namespaces.yaml", NAMESPACES + "    overrides:\n      report:\n        days: 9\n")
    assert project.mlops("synth").exit_code == 0
    report = project.tree()["prod/churn/report/main.tf"].decode()
    assert "    9,\n  ]" in report and "    3,\n  ]" in project.tree()["dev/churn/report/main.tf"].decode()
    project.write("namespaces.yaml", NAMESPACES + "    overrides:\n      report:\n        days: 99\n")
    result = project.mlops("synth")
    assert result.exit_code == 2
    assert "namespaces.prod.overrides.report: The 'days' parameter of Report 'report' must be an int in the range " \
           "[1, 30]. Got 99 instead." in result.output
    result = project.mlops("graph")
    assert "churn__data --> churn__inventory" in result.output
    assert "churn__inventory --> churn__report" in result.output


def test_parameters_of_a_team_template_are_checked_at_declaration(project):
    _project(project, """\
        platform.add(data, Report(Inventory(data, zone="features"), days=0))
        """)
    result = project.mlops("synth")
    assert result.exit_code == 2, result.output
    assert "blueprints/churn.py:7: Inventory 'inventory': zone 'features' is not a zone of 'data'" in result.output
    spec = importlib.util.spec_from_file_location("team_for_test", project.root / "blueprints/team/__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ParameterError, match=r"The 'zone' parameter of Inventory 'inventory' must be a string of "
                                             r"a zone name\. Got 'RAW' instead"):
        module.Inventory(DataInfrastructure(), zone="RAW")
    with pytest.raises(ParameterError, match=r"The 'days' parameter of Report 'report' must be an int in the "
                                             r"range \[1, 30\]. Got 0 instead"):
        module.Report(module.Inventory(DataInfrastructure()), days=0)


def test_a_dependency_left_out_of_the_platform_and_a_missing_renderer_are_user_errors(project):
    _project(project, """\
        platform.add(Inventory(data))
        """)
    result = project.mlops("synth")
    assert result.exit_code == 2, result.output
    assert "Inventory 'inventory' depends on DataInfrastructure 'data', which is not part of the platform" \
        in result.output

    project.write("blueprints/churn.py", BLUEPRINT.format(body="platform.add(data, Inventory(data))").replace(
        'cloud="aws"', 'cloud="azure"'))
    project.write("namespaces.yaml", textwrap.dedent("""\
        namespaces:
          dev:
            azure:
              tenant_id: 00000000-0000-0000-0000-0000000000aa
              subscription_id: 11111111-1111-1111-1111-111111111111
              location: westeurope
              backend: {resource_group_name: rg, storage_account_name: acmetfstatedev, container_name: tfstate}
        """))
    result = project.mlops("synth")
    assert result.exit_code == 2, result.output
    assert "Inventory 'inventory': no AZURE renderer for Inventory; register one with " \
           "@renderer(Inventory, cloud='azure')" in result.output


def test_a_renderer_that_raises_or_reads_what_it_does_not_depend_on_is_a_user_error(project):
    broken = TEAM.replace('bucket = ctx.upstream_output(t.data, "bucket_names")[t.zone]',
                          'bucket = ctx.upstream_output(t.data, "no_such_output")')
    _project(project, "platform.add(data, Inventory(data))", team=broken)
    result = project.mlops("synth")
    assert result.exit_code == 2, result.output
    assert "Inventory 'inventory': its renderer inventory_aws raised RuntimeError: stack data declares no output " \
           "'no_such_output'" in result.output
    assert "Traceback" not in result.output


def test_register_renderer_refuses_built_ins_non_templates_and_a_second_renderer():
    with pytest.raises(BlueprintError, match="DataInfrastructure has a built-in AWS renderer"):
        register_renderer(DataInfrastructure, "aws", lambda t, ctx: None)
    with pytest.raises(BlueprintError, match="must be a Template subclass"):
        register_renderer(dict, "aws", lambda t, ctx: None)  # type: ignore[arg-type]
    with pytest.raises(BlueprintError, match=r"cloud must be one of aws, azure\. Got 'gcp' instead"):
        register_renderer(Template, "gcp", lambda t, ctx: None)


@pytest.fixture(autouse=True)
def _repository_blueprints_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "blueprints"))


def test_the_example_team_template_reads_the_data_stack_and_is_registered_once():
    from team_templates import DataArrivals
    from team_templates.data_arrivals import render_aws

    assert registered()[("aws", DataArrivals)] is render_aws
    register_renderer(DataArrivals, "aws", render_aws)  # the same function again: a module imported twice
    with pytest.raises(BlueprintError, match="DataArrivals already has a AWS renderer"):
        register_renderer(DataArrivals, "aws", lambda t, ctx: None)
    with pytest.raises(ParameterError, match="zone 'features' is not one of the zones"):
        DataArrivals(DataInfrastructure(), zone="features")

    from mlops_dsl import blueprints, synth
    from mlops_dsl.namespaces import load
    from mlops_dsl.terraform import render

    platform, = blueprints.load([ROOT / "blueprints" / "customer_churn.py"])
    builds = platform.synth(load(ROOT / "namespaces.yaml")["staging"], image_tags=synth.image_tags([platform], ROOT))
    arrivals = next(b for b in builds if b.template == "arrivals")
    files = {"staging/customer-churn/arrivals/main.tf": render(arrivals.stack)["main.tf"]}
    main = files["staging/customer-churn/arrivals/main.tf"]
    assert "name = [data.terraform_remote_state.data.outputs.bucket_names[\"raw\"]]" in main
    assert 'detail-type = ["Object Created"]' in main and 'prefix = "incoming/"' in main
    assert "aws_sns_topic_subscription" in main  # staging's alerts.emails are subscribed
    order = [b.template for b in builds]
    assert arrivals.depends_on == ("data",) and order.index("arrivals") > order.index("data")
