"""Escape hatches: `extend` adds to a template's stack, `override` changes one generated value; both
are validated like generated resources, and every mistake is a user error naming the blueprint line."""

from __future__ import annotations

import textwrap

import pytest

from mlops_dsl import DataInfrastructure, ParameterError, Platform, Resource, Stack, set_attribute
from mlops_dsl.namespaces import load as load_namespaces
from mlops_dsl.terraform import Block, Blocks, render

from .conftest import NAMESPACES

HEAD = textwrap.dedent("""\
    from mlops_dsl import Block, DataInfrastructure, Platform, Resource

    platform = Platform("churn", cloud="aws")
    data = DataInfrastructure(zones=["raw", "models"])
    platform.add(data)
    """)


def _synth(project, body: str, *args: str):
    project.write("blueprints/churn.py", HEAD + textwrap.dedent(body))
    return project.mlops("synth", *args)


def _stacks(tmp_path, *hatches):
    """The data stack in dev and prod, rendered in memory with the given hatches applied in order."""
    (tmp_path / "namespaces.yaml").write_text(NAMESPACES)
    spaces = load_namespaces(tmp_path / "namespaces.yaml")
    data = DataInfrastructure(zones=["raw", "models"])
    for name, *args in hatches:
        getattr(data, name)(*args)
    platform = Platform("churn", cloud="aws").add(data)
    return {ns: platform.synth(spaces[ns])[0].stack for ns in ("dev", "prod")}


def _resource(stack: Stack, address: str) -> Resource:
    return next(r for r in stack.resources if r.address == address)


def test_override_sets_a_map_key_a_nested_block_value_and_removes_an_attribute(tmp_path):
    stacks = _stacks(tmp_path,
                     ("override", "aws_s3_bucket.raw", "tags.data-classification", "confidential"),
                     ("override", "aws_s3_bucket_lifecycle_configuration.raw", "rule[0].status", "Disabled"),
                     ("override", "aws_s3_bucket.models", "force_destroy", None))
    for stack in stacks.values():
        assert _resource(stack, "aws_s3_bucket.raw").body["tags"] == {"data-classification": "confidential"}
        rules = _resource(stack, "aws_s3_bucket_lifecycle_configuration.raw").body["rule"]
        assert rules[0].body["status"] == "Disabled"
        assert "force_destroy" not in _resource(stack, "aws_s3_bucket.models").body
        assert "force_destroy" in _resource(stack, "aws_s3_bucket.raw").body
    main = render(stacks["dev"])["main.tf"]
    assert 'data-classification = "confidential"' in main


def test_set_attribute_copies_what_it_changes_and_explains_a_path_it_cannot_follow():
    shared = Block({"days": 7})
    stack = Stack("s")
    stack.add(Resource("aws_x", "a", {"rule": Blocks([Block({"expiration": shared})]), "name": "n"}),
              Resource("aws_x", "b", {"rule": Blocks([Block({"expiration": shared})])}))
    set_attribute(stack, "aws_x.a", "rule[0].expiration.days", 30)
    assert stack.resources[0].body["rule"][0].body["expiration"].body["days"] == 30
    assert isinstance(stack.resources[0].body["rule"], Blocks)
    assert shared.body["days"] == 7 and stack.resources[1].body["rule"][0].body["expiration"].body["days"] == 7
    with pytest.raises(ValueError, match=r"aws_x\.a\.rule has 1 items, so \[3\] is out of range"):
        set_attribute(stack, "aws_x.a", "rule[3].status", "x")
    with pytest.raises(ValueError, match=r"aws_x\.a\.name is str, not a map or block"):
        set_attribute(stack, "aws_x.a", "name.first", "x")
    with pytest.raises(KeyError, match=r"did you mean 'aws_x\.a'"):
        set_attribute(stack, "aws_x.aa", "name", "x")


def test_override_of_an_unknown_address_names_the_closest_and_the_blueprint_line(project):
    result = _synth(project, """\
        data.override("aws_s3_bucket.rwa", "tags.owner", "ml")
        """)
    assert result.exit_code == 2, result.output
    assert "blueprints/churn.py:6: DataInfrastructure 'data': override('aws_s3_bucket.rwa', 'tags.owner', ...)" \
        in result.output
    assert "declares no aws_s3_bucket.rwa; did you mean 'aws_s3_bucket.raw'?" in result.output
    assert "Traceback" not in result.output


def test_a_malformed_path_is_refused_when_declared(project):
    with pytest.raises(ParameterError, match=r"path 'tags\.\.\[0\]': '' is not a name"):
        DataInfrastructure().override("aws_s3_bucket.raw", "tags..[0]", "x")
    with pytest.raises(ParameterError, match="extend\\(\\) takes a function"):
        DataInfrastructure().extend("not a function")  # type: ignore[arg-type]


def test_extend_sees_the_stack_and_the_namespace_and_adds_per_namespace(tmp_path):
    seen = []

    def alarm_topic_in_prod(stack, namespace):
        seen.append((namespace.name, len(stack.resources)))
        if namespace.name == "prod":
            key = _resource(stack, "aws_kms_key.data")
            stack.add(Resource("aws_sns_topic", "ops", {"name": "churn-ops", "kms_master_key_id": key.attr("arn")}))

    stacks = _stacks(tmp_path, ("extend", alarm_topic_in_prod))
    assert [ns for ns, _ in seen] == ["dev", "prod"] and all(n > 20 for _, n in seen)
    assert "aws_sns_topic.ops" in {r.address for r in stacks["prod"].resources}
    assert "aws_sns_topic.ops" not in {r.address for r in stacks["dev"].resources}
    assert "kms_master_key_id = aws_kms_key.data.arn" in render(stacks["prod"])["main.tf"]


def test_hatches_survive_namespace_overrides_and_run_in_declaration_order(tmp_path):
    order = []
    data = DataInfrastructure(zones=["raw"])
    data.extend(lambda stack, ns: order.append("first"))
    data.override("aws_s3_bucket.raw", "tags.a", "1")
    data.extend(lambda stack, ns: order.append(_resource(stack, "aws_s3_bucket.raw").body["tags"]["a"]))
    copy = data.with_overrides({"force_destroy": True})
    assert [type(h).__name__ for h in copy.hatches()] == ["Extend", "Override", "Extend"]
    (tmp_path / "namespaces.yaml").write_text(NAMESPACES)
    Platform("churn", cloud="aws").add(copy).synth(load_namespaces(tmp_path / "namespaces.yaml")["dev"])
    assert order == ["first", "1"]


def test_an_extension_that_raises_or_leaves_a_dangling_reference_is_a_user_error(project):
    result = _synth(project, """\
        def broken(stack, namespace):
            raise ValueError("no such zone")


        data.extend(broken)
        """)
    assert result.exit_code == 2, result.output
    assert "blueprints/churn.py:10: DataInfrastructure 'data': extend(broken) raised ValueError: no such zone " \
           "(namespace 'dev')" in result.output

    result = _synth(project, """\
        from mlops_dsl import Expr

        data.extend(lambda stack, ns: stack.add(Resource("aws_sns_topic", "t", {
            "name": "t", "kms_master_key_id": Expr("aws_kms_key.nope.arn", ("aws_kms_key.nope",))})))
        """)
    assert result.exit_code == 2, result.output
    assert "references aws_kms_key.nope, which the stack does not declare" in result.output


def test_validate_schema_catches_a_misspelled_argument_from_either_hatch(project):
    _synth(project, """\
        data.override("aws_s3_bucket.raw", "tagz.owner", "ml")
        data.extend(lambda stack, ns: stack.add(Resource("aws_cloudwatch_log_metric_filter", "errors", {
            "name": "errors", "log_group_name": "/x", "patern": "ERROR",
            "metric_transformation": Block({"name": "Errors", "namespace": "churn", "value": "1"})})))
        """)
    result = project.mlops("validate", "--schema")
    assert result.exit_code == 2, result.output
    assert "aws_s3_bucket.raw: tagz: no such argument or block in S3BucketConfig; did you mean 'tags'?" in result.output
    assert "aws_cloudwatch_log_metric_filter.errors: patern: no such argument or block" in result.output
    assert "did you mean 'pattern'?" in result.output
    assert "aws_cloudwatch_log_metric_filter.errors: pattern: required" in result.output


def test_the_example_blueprint_uses_both_hatches():
    """README's example: a tag override on the raw bucket, and a metric filter where the endpoint logs
    (only where a version is pinned: dev has one, local none)."""
    from pathlib import Path

    from mlops_dsl import blueprints, synth

    root = Path(__file__).resolve().parent.parent
    platform, = blueprints.load([root / "blueprints" / "customer_churn.py"])
    spaces = load_namespaces(root / "namespaces.yaml")
    tags = synth.image_tags([platform], root)
    files = {f"{ns}/{b.template}": render(b.stack)["main.tf"]
             for ns in ("dev", "local") for b in platform.synth(spaces[ns], image_tags=tags)}
    for ns in ("dev", "local"):
        assert 'data-classification = "confidential"' in files[f"{ns}/data"]
    assert 'resource "aws_cloudwatch_log_metric_filter" "tracebacks"' in files["dev/serving"]
    assert "aws_cloudwatch_log_metric_filter" not in files["local/serving"]
