"""`mlops cost`, its price sources, and the plan summary's cost line, on both example blueprints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from mlops_dsl import blueprints as bp
from mlops_dsl import namespaces
from mlops_dsl.cli import main
from mlops_dsl.cli_cost import namespace_costs
from mlops_dsl.cost import (
    HOURS_PER_MONTH,
    WEEKS_PER_MONTH,
    PriceRow,
    change_line,
    estimate,
    plan_cost_line,
    runs_per_month,
)
from mlops_dsl.cost_prices import AwsPriceList, AzureRetail, ShippedTable
from mlops_dsl.errors import MlopsError

from .conftest import ROOT, FakeTerraform, Project


class FlatBook:
    """Every price is $1 per unit, so quantities can be read off the estimate."""

    def __init__(self, missing: tuple[str, ...] = ()):
        self.missing = missing

    def price(self, cloud: str, service: str, key: str, region: str) -> PriceRow | None:
        if key in self.missing:
            return None
        unit = {"kms": "month", "cloudwatch-logs": "GB", "log-analytics": "GB"}.get(service, "hour")
        return PriceRow(1.0, unit, "test", "2026-12-01")

    def hint(self, cloud: str) -> str:
        return f"add it to mlops_dsl/prices/{cloud}.json"


@pytest.fixture(scope="module")
def repo() -> tuple[list, dict]:
    return bp.load([ROOT / "blueprints/customer_churn.py", ROOT / "blueprints/financial_behavior.py"]), \
        namespaces.load(ROOT / "namespaces.yaml")


def costs_of(repo, ns: str, book) -> dict:
    platforms, spaces = repo
    return {c.stack: c for c in namespace_costs(platforms, spaces[ns], book, root=ROOT)}


@pytest.mark.parametrize(("expression", "runs"), [
    ("cron(0 * ? * * *)", HOURS_PER_MONTH),
    ("cron(0 3 ? * MON *)", WEEKS_PER_MONTH),
    ("cron(0 3 ? * MON-FRI *)", 5 * WEEKS_PER_MONTH),
    ("cron(0/15 * ? * * *)", 4 * HOURS_PER_MONTH),
    ("cron(0 0 1 * ? *)", 1.0),
    ("rate(1 day)", HOURS_PER_MONTH / 24),
    ("rate(6 hours)", HOURS_PER_MONTH / 6),
    ("0 2 * * 0", WEEKS_PER_MONTH),  # Azure ML: five fields, Sunday 0
])
def test_runs_per_month(expression: str, runs: float) -> None:
    assert runs_per_month(expression) == pytest.approx(runs)


def test_a_schedule_it_cannot_count_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"cron\(0 0 L \* \? \*\)"):
        runs_per_month("cron(0 0 L * ? *)")


def test_prod_endpoint_variants_cost_their_autoscaling_range(repo) -> None:
    serving = costs_of(repo, "prod", FlatBook())["customer-churn/serving"]
    variants = [line for line in serving.lines if line.service == "sagemaker-hosting"]
    assert [(line.key, line.quantity_min, line.quantity_max) for line in variants] == [
        ("ml.c5.2xlarge", 3 * HOURS_PER_MONTH, 12 * HOURS_PER_MONTH)] * 2
    drift = [line for line in serving.lines if line.service == "sagemaker-processing"]
    assert drift and all(line.quantity_min == 0 and line.quantity_max == pytest.approx(HOURS_PER_MONTH)
                         for line in drift)  # hourly drift job, 1 instance, at most 1 h
    assert serving.monthly_min < serving.monthly_max and not serving.missing


def test_fixed_capacity_is_the_initial_count_and_no_endpoint_costs_nothing(repo) -> None:
    config = {"type": "aws_sagemaker_endpoint_configuration", "name": "main", "values": {"production_variants": {
        "variant_name": "blue", "instance_type": "ml.m5.large", "initial_instance_count": 2}}}
    endpoint = {"type": "aws_sagemaker_endpoint", "name": "main", "values": {}}
    fixed = estimate("s", "aws", "eu-west-1", [config, endpoint], FlatBook())
    hosting = [(line.quantity_min, line.quantity_max) for line in fixed.lines if line.service == "sagemaker-hosting"]
    assert hosting == [(2 * HOURS_PER_MONTH, 2 * HOURS_PER_MONTH)]
    assert not estimate("s", "aws", "eu-west-1", [config], FlatBook()).lines
    # local pins no model version, so its serving stack declares no endpoint
    local = costs_of(repo, "local", FlatBook())["customer-churn/serving"]
    assert not [line for line in local.lines if line.service == "sagemaker-hosting"]


def test_dev_training_is_its_schedule_times_the_tuning_bound(repo) -> None:
    training = costs_of(repo, "dev", FlatBook())["customer-churn/training"]
    tuning = [line for line in training.lines if line.service == "sagemaker-training"]
    # weekly, 20 tuning jobs of at most 24 h on one ml.m5.xlarge each
    assert [(line.key, line.quantity_max) for line in tuning] == [("ml.m5.xlarge",
                                                                  pytest.approx(WEEKS_PER_MONTH * 20 * 24))]
    assert any(line.service == "sagemaker-processing" for line in training.lines)


def test_interface_endpoints_are_priced_per_zone(repo) -> None:
    dev, prod = (costs_of(repo, ns, FlatBook())["customer-churn/data"] for ns in ("dev", "prod"))
    zones = {ns: {line.quantity_max / HOURS_PER_MONTH for line in c.lines if line.service == "vpc-endpoint"}
             for ns, c in (("dev", dev), ("prod", prod))}
    assert zones == {"dev": {2.0}, "prod": {3.0}}  # prod overrides availability_zones: 3



def test_an_endpoint_whose_subnets_come_from_another_stack_is_priced_for_the_fewest_zones(repo) -> None:
    serving = costs_of(repo, "dev", FlatBook())["customer-churn/serving"]
    lines = [line for line in serving.lines if line.service == "vpc-endpoint"]
    assert lines, "the serving stack's private API has an execute-api interface endpoint"
    for line in lines:  # never the length of the expression's text
        assert line.quantity_max == 2 * HOURS_PER_MONTH
        assert "2 zones (assumed: its subnets come from another stack)" in line.item


def test_azure_deployments_and_redis_on_the_financial_behavior_blueprint(repo) -> None:
    costs = costs_of(repo, "prod", FlatBook())
    deployments = [line for line in costs["financial-behavior/serving"].lines if line.service == "ml-online-vm"]
    assert [(line.key, line.quantity_min, line.quantity_max) for line in deployments] == [
        ("Standard_D4s_v3", 3 * HOURS_PER_MONTH, 10 * HOURS_PER_MONTH)] * 2
    assert any(line.service == "redis" for line in costs["financial-behavior/features"].lines)
    assert any("not estimated" in note for note in costs["financial-behavior/training"].notes)
    # The batch job's schedule bounds its node-hours: daily runs x 1 node x its 4 h timeout, 0 at least.
    (batch,) = [line for line in costs["financial-behavior/batch"].lines if line.service == "ml-compute-vm"]
    assert (batch.key, batch.quantity_min) == ("Standard_D2s_v3:Dedicated", 0.0)
    assert batch.quantity_max == pytest.approx(runs_per_month("0 4 * * *") * 1 * 4)


def test_an_unknown_price_is_a_clear_line_not_a_crash(repo) -> None:
    serving = costs_of(repo, "prod", FlatBook(missing=("ml.c5.2xlarge",)))["customer-churn/serving"]
    assert serving.missing == ["no price for ml.c5.2xlarge (sagemaker-hosting) in eu-west-1 (no such row); "
                               "add it to mlops_dsl/prices/aws.json"]


def test_the_shipped_tables_cover_every_price_the_namespaces_use(repo) -> None:
    _, spaces = repo
    for ns in spaces:
        for c in costs_of(repo, ns, ShippedTable()).values():
            assert not [m for m in c.missing if "no such row" in m], (ns, c.stack, c.missing)


def test_every_shipped_row_names_its_source_and_date() -> None:
    table = ShippedTable()
    for cloud in ("aws", "azure"):
        for row in table.rows(cloud).values():
            assert row.source.startswith("https://") and len(row.date) == 10
    assert table.price("aws", "kms", "customer-managed-key", "eu-west-1").usd == 1.0


def test_a_row_without_source_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "aws.json"
    bad.write_text(json.dumps({"rows": [{"service": "kms", "key": "k", "region": "*", "usd": 1, "unit": "month"}]}))
    with pytest.raises(MlopsError, match=r"aws.json: rows\[0\]: missing source, date"):
        ShippedTable({"aws": bad}).rows("aws")


def _product(usagetype: str, usd: str, unit: str = "Hrs") -> str:
    """One PriceList entry as GetProducts returns it: a JSON string."""
    return json.dumps({
        "product": {"productFamily": "ML Instance", "sku": "ABC123",
                    "attributes": {"regionCode": "eu-west-1", "instanceName": "ml.m5.large", "usagetype": usagetype}},
        "serviceCode": "AmazonSageMaker",
        "terms": {"OnDemand": {"ABC123.JRTCKXETXF": {"priceDimensions": {"ABC123.JRTCKXETXF.6YS6EN2CT7": {
            "unit": unit, "pricePerUnit": {"USD": usd}, "description": "test"}}, "sku": "ABC123"}}},
        "version": "20261101", "publicationDate": "2026-11-01T00:00:00Z"})


def test_price_list_api_picks_the_hosting_price_of_the_instance() -> None:
    import boto3

    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    expected = {"ServiceCode": "AmazonSageMaker", "FormatVersion": "aws_v1", "MaxResults": 100, "Filters": [
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
        {"Type": "TERM_MATCH", "Field": "instanceName", "Value": "ml.m5.large"}]}
    with Stubber(client) as stub:
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
            _product("EU-Train:ml.m5.large", "0.2"), _product("EU-Host:ml.m5.large", "0.1234")]}, expected)
        book = AwsPriceList(ShippedTable(), client=client, date="2026-12-01")
        row = book.price("aws", "sagemaker-hosting", "ml.m5.large", "eu-west-1")
        again = book.price("aws", "sagemaker-hosting", "ml.m5.large", "eu-west-1")  # cached: no second call
        stub.assert_no_pending_responses()
    assert row == again and row.usd == 0.1234 and row.unit == "hour"


def test_price_list_api_falls_back_to_the_table_when_it_has_nothing() -> None:
    import boto3

    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []})
        row = AwsPriceList(ShippedTable(), client=client).price("aws", "kms", "customer-managed-key", "eu-west-1")
    assert row.usd == 1.0 and row.source == "https://aws.amazon.com/kms/pricing/"


def test_price_list_api_without_access_falls_back_and_says_why() -> None:
    import boto3

    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("get_products", "AccessDeniedException", "not authorized to perform pricing:GetProducts")
        book = AwsPriceList(ShippedTable(), client=client)
        row = book.price("aws", "sagemaker-hosting", "ml.m5.large", "eu-west-1")
        kms = book.price("aws", "kms", "customer-managed-key", "eu-west-1")  # not asked again
    assert row.usd is None and row.source == "https://aws.amazon.com/sagemaker/pricing/"
    assert kms.usd == 1.0 and "pricing:GetProducts" in book.unavailable


def test_azure_retail_api_skips_windows_and_spot_rows() -> None:
    asked = []

    def fetch(url: str, params: dict) -> dict:
        asked.append((url, params["$filter"]))
        return {"Items": [
            {"retailPrice": 0.5, "unitOfMeasure": "1 Hour", "skuName": "D4s v3", "meterName": "D4s v3",
             "productName": "Virtual Machines DSv3 Series Windows"},
            {"retailPrice": 0.05, "unitOfMeasure": "1 Hour", "skuName": "D4s v3 Spot", "meterName": "D4s v3 Spot",
             "productName": "Virtual Machines DSv3 Series"},
            {"retailPrice": 0.2, "unitOfMeasure": "1 Hour", "skuName": "D4s v3", "meterName": "D4s v3",
             "productName": "Virtual Machines DSv3 Series"}]}

    row = AzureRetail(ShippedTable(), fetch=fetch, date="2026-12-01").price(
        "azure", "ml-online-vm", "Standard_D4s_v3", "westeurope")
    assert row.usd == 0.2 and asked[0][0] == "https://prices.azure.com/api/retail/prices"
    assert "armSkuName eq 'Standard_D4s_v3'" in asked[0][1] and "armRegionName eq 'westeurope'" in asked[0][1]


def test_cost_command_json_and_user_errors() -> None:
    runner = CliRunner()
    args = ["--namespaces", str(ROOT / "namespaces.yaml"), "--blueprint", str(ROOT / "blueprints/customer_churn.py"),
            "--blueprint", str(ROOT / "blueprints/financial_behavior.py")]
    import os

    cwd = os.getcwd()
    os.chdir(ROOT)  # the image build contexts are read relative to the project
    try:
        ok = runner.invoke(main, ["cost", "-n", "prod", "--format", "json", "--platform", "customer-churn", *args])
        text = runner.invoke(main, ["cost", "-n", "prod", *args])
        no_ns = runner.invoke(main, ["cost", "-n", "nope", *args])
        no_platform = runner.invoke(main, ["cost", "-n", "prod", "--platform", "nope", *args])
    finally:
        os.chdir(cwd)
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    # every stack of the platform, in deploy order
    assert [s["stack"] for s in data["stacks"]] == [f"customer-churn/{t}" for t in (
        "data", "features", "training", "serving", "batch", "serverless", "fleet", "lookup", "arrivals")]
    assert data["total_min_usd"] >= 2.0 and data["complete"] is False and data["assumptions"]
    assert text.exit_code == 0 and "Assumptions:" in text.output and "GB/month" in text.output
    assert no_ns.exit_code == 2 and "no namespace 'nope'" in no_ns.output
    assert no_platform.exit_code == 2 and "--platform nope" in no_platform.output


def test_change_line_shows_before_after_and_the_difference() -> None:
    book = FlatBook()
    one = estimate("s", "aws", "eu-west-1", [{"type": "aws_kms_key", "name": "a", "values": {}}], book)
    two = estimate("s", "aws", "eu-west-1", [{"type": "aws_kms_key", "name": n, "values": {}} for n in "ab"], book)
    assert change_line(one, two).startswith("Cost (estimate, shipped prices): $1.00 -> $2.00 per month (+$1.00")
    assert "(-$1.00" in change_line(two, one)


def test_plan_cost_line_reads_prior_state_and_planned_values(repo) -> None:
    _, spaces = repo
    key = {"type": "aws_kms_key", "mode": "managed", "values": {}}
    plan = {"prior_state": {"values": {"root_module": {"resources": [{**key, "name": "a"}]}}},
            "planned_values": {"root_module": {"resources": [{**key, "name": "a"}, {**key, "name": "b"}]}}}
    assert "$1.00 -> $2.00 per month (+$1.00)" in plan_cost_line(plan, spaces["dev"])
    assert plan_cost_line({"planned_values": {"root_module": {"resources": []}}}, spaces["dev"]) == ""


SHOW_WRAPPER = """
import json, os, subprocess, sys
from pathlib import Path
out = subprocess.run([sys.executable, {fake!r}, *sys.argv[1:]], capture_output=True, text=True)
text = out.stdout
extra = Path(os.environ["FAKE_TF_DIR"]) / "show_extra.json"
if sys.argv[1:2] == ["show"] and extra.exists():
    plan = json.loads(text)
    plan.update(json.loads(extra.read_text()).get(Path.cwd().name, {{}}))
    text = json.dumps(plan)
sys.stdout.write(text)
sys.stderr.write(out.stderr)
sys.exit(out.returncode)
"""


def test_plan_summary_has_a_cost_line_per_stack(project: Project, fake_tf: FakeTerraform) -> None:
    script = fake_tf.home / "show_wrapper.py"
    script.write_text(SHOW_WRAPPER.format(fake=str(ROOT / "tests" / "fake_terraform.py")))
    (fake_tf.home / "terraform").write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    key = {"type": "aws_kms_key", "mode": "managed", "values": {"enable_key_rotation": True}}
    (fake_tf.home / "show_extra.json").write_text(json.dumps({"data": {
        "planned_values": {"root_module": {"resources": [{**key, "name": "a"}, {**key, "name": "b"}]}}}}))
    result = project.mlops("plan", "-n", "dev")
    assert result.exit_code == 0, result.output
    text = (project.root / ".mlops/plans/dev/summary.md").read_text()
    section = text.split("### churn/data")[1].split("###")[0]
    assert "Cost (estimate, shipped prices): $0.00 -> $2.00 per month (+$2.00)" in section


# --- budgets --------------------------------------------------------------------------------------

BUDGET_NS = """
defaults:
  aws: {region: eu-west-1}
namespaces:
  dev:
    aws: {account_id: "111111111111", backend: {bucket: b-dev}}
    budget: {monthly: BUDGET}
"""


@pytest.mark.parametrize(("amount", "message"), [
    ("0", "budget.monthly: expected a monthly amount in USD greater than 0"),
    ("lots", "budget.monthly: expected a monthly amount in USD greater than 0"),
    ("2000", "namespaces.dev.budget.monthly: a budget notifies alerts.emails, and namespace 'dev' sets none"),
])
def test_a_budget_needs_an_amount_and_someone_to_tell(amount: str, message: str) -> None:
    with pytest.raises(MlopsError) as caught:
        namespaces.parse(BUDGET_NS.replace("BUDGET", amount), "ns.yaml")
    assert any(p.startswith("ns.yaml: ") and message in p for p in caught.value.problems), caught.value.problems


def _resource(repo, ns: str, platform: str, template: str, rtype: str):
    from mlops_dsl.synth import render_tree

    platforms, spaces = repo
    rendered = render_tree(platforms, [spaces[ns]], root=ROOT)
    stack = next(b.stack for b in rendered.builds[(ns, platform)] if b.template == template)
    return [r for r in stack.resources if r.type == rtype]


def test_prod_data_stacks_render_a_budget_alerting_the_namespace(repo) -> None:
    (aws,) = _resource(repo, "prod", "customer-churn", "data", "aws_budgets_budget")
    assert aws.body["limit_amount"] == "6000.00" and aws.body["time_unit"] == "MONTHLY"
    assert aws.body["cost_filter"][0].body["values"] == ["user:mlops:platform$customer-churn"]
    assert {n.body["notification_type"] for n in aws.body["notification"]} == {"ACTUAL", "FORECASTED"}
    assert all(n.body["subscriber_email_addresses"] == ["ml-oncall@example.com"] for n in aws.body["notification"])
    (azure,) = _resource(repo, "prod", "financial-behavior", "data", "azurerm_consumption_budget_resource_group")
    assert azure.body["amount"] == 6000 and azure.body["resource_group_id"].text == "azurerm_resource_group.main.id"
    assert all(n.body["contact_emails"] == ["ml-oncall@example.com"] for n in azure.body["notification"])
    assert not _resource(repo, "dev", "customer-churn", "data", "aws_budgets_budget")  # dev sets no budget


def test_each_azure_schedule_counts_on_the_cluster_its_jobs_run_on() -> None:
    """Ingestion renders a cluster and a schedule per group: each schedule's node-hours are its own
    cluster's, once, not every cluster's."""
    def cluster(name: str, nodes: int) -> dict:
        return {"type": "azurerm_machine_learning_compute_cluster", "name": name,
                "values": {"name": name, "vm_size": "Standard_D2s_v3", "vm_priority": "Dedicated",
                           "scale_settings": {"min_node_count": 0, "max_node_count": nodes}}}

    def schedule(name: str, on: str, expression: str, timeout: str) -> dict:
        job = {"computeId": "${azurerm_machine_learning_compute_cluster." + on + ".id}",
               "limits": {"jobLimitsType": "Command", "timeout": timeout}}
        trigger = {"triggerType": "Cron", "expression": expression, "timeZone": "UTC"}
        return {"type": "azapi_resource", "name": name, "values": {
            "type": "Microsoft.MachineLearningServices/workspaces/schedules@2024-10-01", "name": name,
            "body": {"properties": {"trigger": trigger, "action": {"actionType": "CreateJob", "jobDefinition": job}}}}}

    resources = [cluster("a", 1), cluster("b", 2), schedule("sa", "a", "0 4 * * *", "PT1H"),
                 schedule("sb", "b", "0 * * * *", "PT30M")]
    lines = estimate("p/features", "azure", "westeurope", resources, FlatBook()).lines
    assert sorted((line.resource, line.quantity_max) for line in lines) == sorted([
        ("azapi_resource.sa", pytest.approx(runs_per_month("0 4 * * *") * 1 * 1.0)),
        ("azapi_resource.sb", pytest.approx(runs_per_month("0 * * * *") * 2 * 0.5))])
