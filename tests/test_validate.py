"""`mlops validate`: structure always; with --schema every emitted name against the pinned bindings."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from mlops_dsl import bindings
from mlops_dsl.terraform import Block, DataSource, Expr, Provider, Resource, Stack
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
    assert "28 stacks in 4 namespaces are valid; " in result.stdout
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
