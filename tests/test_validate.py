"""`mlops validate`: structure always; with --schema every emitted name against the pinned bindings."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from mlops_dsl import bindings, blueprints, namespaces, provider_floor, synth
from mlops_dsl.aws.provider import AWS_PROVIDER
from mlops_dsl.azure.provider import AZURERM_PROVIDER
from mlops_dsl.terraform import Block, DataSource, Expr, Provider, RequiredProvider, Resource, Settings, Stack
from mlops_dsl.validate import validate

from .conftest import ROOT, Project

needs_bindings = pytest.mark.skipif(
    not all(importlib.util.find_spec(p) for p in bindings.PACKAGES.values()),
    reason="the cdktn provider bindings are not installed (pip install '.[cdktn]')")


def _stack(*items, providers=()) -> Stack:
    stack = Stack("test")
    stack.providers = list(providers)
    stack.add(*items)
    return stack


@needs_bindings
def test_misspelled_arguments_and_blocks_are_named_with_the_closest_valid_name() -> None:
    stack = _stack(
        Resource("aws_s3_bucket", "b", {"buckt": "a"}),
        Resource("aws_s3_bucket_lifecycle_configuration", "l", {"bucket": "b", "rule": [
            Block({"id": "r", "status": "Enabled", "expiraton": Block({"days": 1})})]}),
        providers=[Provider("aws", {"region": "eu-west-1", "endpoints": Block({"sagemakr": "http://127.0.0.1:1"})})],
    )
    problems = validate([("churn/dev/data", stack)], schema=True).problems
    assert problems == [
        "churn/dev/data: provider.aws: endpoints.sagemakr: no such argument or block in AwsProviderEndpoints; "
        "did you mean 'sagemaker'?",
        "churn/dev/data: aws_s3_bucket.b: buckt: no such argument or block in S3BucketConfig; "
        "did you mean 'bucket'?",
        "churn/dev/data: aws_s3_bucket_lifecycle_configuration.l: rule.expiraton: no such argument or block in "
        "S3BucketLifecycleConfigurationRule; did you mean 'expiration'?",
    ]


@needs_bindings
def test_blocks_arguments_kinds_types_and_required_arguments() -> None:
    stack = _stack(
        Resource("aws_s3_bucket_versioning", "v", {"bucket": "b", "versioning_configuration": {"status": "Enabled"}}),
        Resource("aws_kms_key", "k", {"enable_key_rotation": "yes", "deletion_window_in_days": "thirty",
                                      "tags": Block({"a": "b"}),
                                      "description": Expr("aws_s3_bucket.x.id", ("aws_s3_bucket.x",))}),
        Resource("aws_s3_bucket", "x", {}),
        Resource("aws_s3_bucket_ownership_controls", "o", {"rule": [Block({"object_ownership": "A"}),
                                                                    Block({"object_ownership": "B"})]}),
        Resource("azurerm_resource_group", "rg", {"location": "westeurope"}),
        Resource("aws_s3_buckt", "z", {}),
        DataSource("aws_iam_policy_documnt", "d", {}),
        Resource("azapi_resource", "x", {"anything": 1}),
    )
    report = validate([("p/t", stack)], schema=True)
    assert report.problems == [
        "p/t: aws_s3_bucket_versioning.v: versioning_configuration: is a block, not an argument: write "
        "`versioning_configuration { ... }`",
        "p/t: aws_kms_key.k: enable_key_rotation: expects a bool, got the string 'yes'",
        "p/t: aws_kms_key.k: deletion_window_in_days: expects a number, got the string 'thirty'",
        "p/t: aws_kms_key.k: tags: is an argument (map), not a block: write `tags = ...`",
        "p/t: aws_s3_bucket_ownership_controls.o: rule: a single block, given 2 times",
        "p/t: aws_s3_bucket_ownership_controls.o: bucket: required by S3BucketOwnershipControlsConfig, and not set",
        "p/t: azurerm_resource_group.rg: name: required by ResourceGroupConfig, and not set",
        "p/t: aws_s3_buckt.z: aws_s3_buckt is not a resource type of aws (cdktn-provider-aws 25.8.1 "
        "(hashicorp/aws 6.69.1)); did you mean 'aws_s3_bucket'?",
        "p/t: azapi_resource.x: type: required by azapi_resource, and not set",  # its body is checked (azapi_check)
        "p/t: data.aws_iam_policy_documnt.d: aws_iam_policy_documnt is not a data source type of aws "
        "(cdktn-provider-aws 25.8.1 (hashicorp/aws 6.69.1)); did you mean 'aws_iam_policy_document'?",
    ]
    assert report.unchecked == {"azapi"}  # azapi's own arguments: no bindings


def test_structure_is_checked_without_bindings() -> None:
    stack = _stack(Resource("aws_s3_bucket", "1bad", {"bucket": Expr("aws_kms_key.k.arn", ("aws_kms_key.k",))}))
    problems = validate([("p/t", stack)], schema=False).problems
    assert problems == [
        "p/t: aws_s3_bucket.1bad references aws_kms_key.k, which the stack does not declare",
        "p/t: resource name '1bad' is not a valid Terraform identifier (letters, digits, underscores and hyphens, "
        "not starting with a digit)",
    ]


@needs_bindings
def test_every_committed_stack_matches_the_pinned_schemas() -> None:
    result = subprocess.run([sys.executable, "-m", "mlops_dsl.cli", "validate", "--schema"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    spaces = namespaces.load(ROOT / "namespaces.yaml")
    rendered = synth.render_tree(blueprints.load(None), list(spaces.values()), root=ROOT)
    stacks = sum(len(builds) for builds in rendered.builds.values())
    assert stacks >= 28 and len(spaces) == 4
    assert f"{stacks} stacks in {len(spaces)} namespaces are valid; " in result.stdout
    # azuread (the Cosmos DB principal's lookup) and time (role propagation) are in the Azure data stack
    assert "values of SageMaker requests (pipeline steps, state machines) match the API request shapes, " \
        in result.stdout
    assert " azapi bodies match the types of their API versions (no bindings to check the arguments of azapi, " \
           "azuread, time against)" in result.stdout
    assert " 0 azapi bodies" not in result.stdout


def test_missing_bindings_is_a_clear_error(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bindings, "PACKAGES", {"aws": "no_such_bindings_package", "azurerm": "nor_this"})
    bindings.package_dir.cache_clear()
    try:
        result = project.mlops("validate", "--schema")
    finally:
        bindings.package_dir.cache_clear()
    assert result.exit_code == 1
    assert ("the aws bindings are not installed: pip install 'mlops-dsl[cdktn]' (cdktn-provider-aws)"
            in result.output)
    assert project.mlops("validate").exit_code == 0


def test_validate_starts_no_jsii_runtime() -> None:
    code = ("import sys; from mlops_dsl.cli import main\n"
            "try: main(['validate', '--schema'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jsii', 'cdktn', 'cdktn_provider_aws')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


# --- the range's lower bound: hashicorp/aws 5.100 (vendored floor) as well as the 6.x bindings ---------

AWS_RANGE = Settings(None, {"aws": RequiredProvider("hashicorp/aws", ">= 5.100, < 7.0"),
                             "azurerm": RequiredProvider("hashicorp/azurerm", ">= 4.55, < 5.0")})


def _ranged(*items, providers=(), settings=AWS_RANGE) -> Stack:
    stack = _stack(*items, providers=providers)
    stack.settings = settings
    return stack


@needs_bindings
def test_arguments_and_types_newer_than_the_ranges_lower_bound_are_named() -> None:
    alarm = {"alarm_name": "a", "metric_name": "m", "namespace": "n", "period": 60, "statistic": "Average",
             "threshold": 1}
    variant = Block({"variant_name": "v", "instance_type": "ml.m5.large", "initial_instance_count": 1})
    stack = _ranged(
        Resource("aws_s3_bucket", "b", {"bucket": "b", "region": "eu-west-1"}),
        Resource("aws_cloudwatch_metric_alarm", "a", alarm),
        Resource("aws_sagemaker_endpoint_configuration", "c", {"production_variants": [variant]}),
        Resource("aws_s3_bucket_metadata_configuration", "m", {"bucket": "b", "metadata_configuration": Block({
            "journal_table_configuration": Block({"record_expiration": Block({"expiration": "DISABLED"})}),
            "inventory_table_configuration": Block({"configuration_state": "DISABLED"})})}),
        # azurerm 4.55 has no ip_masking_enabled (the bindings are 4.81.0)
        Resource("azurerm_application_insights", "i", {"name": "i", "location": "l", "resource_group_name": "g",
                                                       "application_type": "web", "ip_masking_enabled": True}),
        providers=[Provider("aws", {"region": "eu-west-1", "endpoints": Block({"s3vectors": "http://127.0.0.1:1"})})],
    )
    at = "hashicorp/aws 5.100.0, which the declared range (>= 5.100, < 7.0) allows"
    at_azurerm = "hashicorp/azurerm 4.55.0, which the declared range (>= 4.55, < 5.0) allows"
    assert validate([("p/t", stack)], schema=True).problems == [
        f"p/t: provider.aws: endpoints.s3vectors: not in {at} (added later), so Terraform on 5.100.0 rejects it; "
        "raise the range's lower bound or leave it out",
        f"p/t: aws_s3_bucket.b: region: not in {at} (added later), so Terraform on 5.100.0 rejects it; raise the "
        "range's lower bound or leave it out",  # 6.0's per-resource region
        f"p/t: aws_cloudwatch_metric_alarm.a: comparison_operator: required by {at}, and not set",
        f"p/t: aws_cloudwatch_metric_alarm.a: evaluation_periods: required by {at}, and not set",
        f"p/t: aws_sagemaker_endpoint_configuration.c: production_variants.model_name: required by {at}, and not set",
        f"p/t: aws_s3_bucket_metadata_configuration.m: aws_s3_bucket_metadata_configuration is not a resource type "
        f"of {at}: it was added later; raise the range's lower bound or do without it",
        f"p/t: azurerm_application_insights.i: ip_masking_enabled: not in {at_azurerm} (added later), so Terraform "
        "on 4.55.0 rejects it; raise the range's lower bound or leave it out",
    ]
    # A range that starts at 6.0 leaves 5.100 out: the bindings alone judge.
    above = Settings(None, {"aws": RequiredProvider("hashicorp/aws", ">= 6.0, < 7.0")})  # and no azurerm range
    assert validate([("p/t", _ranged(Resource("aws_s3_bucket", "b", {"region": "eu-west-1"}), settings=above))],
                    schema=True).problems == []


@needs_bindings
def test_a_range_reaching_below_the_vendored_floor_asks_for_a_new_one() -> None:
    below = Settings(None, {"aws": RequiredProvider("hashicorp/aws", ">= 5.0, < 7.0")})
    problems = validate([("p/t", _ranged(Resource("aws_s3_bucket", "b", {}), settings=below))], schema=True).problems
    assert problems == ["the declared hashicorp/aws range (>= 5.0, < 7.0) allows versions below 5.100.0, the "
                        "lowest whose schema is vendored: regenerate it with tools/vendor_floors.py (its docstring "
                        "says how)"]


@needs_bindings
def test_the_vendored_floors_match_the_pinned_bindings_and_the_declared_ranges() -> None:
    for name, declared in (("aws", AWS_PROVIDER), ("azurerm", AZURERM_PROVIDER)):
        floor = provider_floor.floor(name)
        assert floor is not None and floor.provider == declared.source
        assert floor.bindings == bindings.describe(name)  # regenerate it when the cdktn extra moves
        assert provider_floor.lower_bound(declared.version) == floor.version[:2]  # or when the range does
    assert "region" in provider_floor.floor("aws").arguments["resource"]["aws_s3_bucket"]["added"]
    assert provider_floor.floor("azuread") is None


@needs_bindings
def test_types_whose_module_name_differs_from_the_terraform_name_are_found() -> None:
    # the generator writes aws_s3control_bucket as the module s3_control_bucket; the heading names it
    assert bindings.resource("aws_s3control_bucket").name == "S3ControlBucketConfig"
    assert bindings.resource("aws_s3_control_bucket") is None
    assert bindings.resource("azurerm_sentinel_data_connector_office_365").name == \
        "SentinelDataConnectorOffice365Config"
    assert bindings.resource("azurerm_data_factory").name == "DataFactoryConfig"  # a resource, not a data source
    assert "azurerm_data_factory" in bindings.known_types("azurerm")
    assert "azurerm_data_factory_pipeline" in bindings.known_types("azurerm")
    assert "azurerm_data_factory_pipeline" not in bindings.known_types("azurerm", data=True)
    assert "aws_provider_functions" not in bindings.known_types("aws")


def test_the_lower_bound_of_a_version_constraint() -> None:
    assert provider_floor.lower_bound(">= 5.100, < 7.0") == (5, 100)
    assert provider_floor.lower_bound("~> 6.0") == (6, 0)
    assert provider_floor.lower_bound("5.100.0") == (5, 100, 0)
    assert provider_floor.lower_bound(">= 5.0, >= 5.100") == (5, 100)  # both must hold
    assert provider_floor.lower_bound("<= 7.0") is None and provider_floor.lower_bound("!= 6.1, < 7.0") is None
