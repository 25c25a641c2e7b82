"""The HCL and JSON writers: literal escaping, canonical layout, blocks vs maps, determinism."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import tfparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_dsl.terraform import (
    Block,
    CheckovSkip,
    DataSource,
    Expr,
    Lifecycle,
    Output,
    Provider,
    Resource,
    Stack,
    Variable,
    check_references,
    interp,
    jsonencode,
    render,
)
from mlops_dsl.terraform.hcl import quote

from .conftest import run_terraform

# Any text, minus lone surrogates (which no UTF-8 file can hold), built partly from the sequences that
# mean something to HCL so that template markers, quotes and escapes turn up in most examples.
TOKENS = ["${", "%{", "$${", "%%{", "}", "$", "\\", '"', "\n", "\r", "\t", "\x00", "\u00e9", "e\u0301"]
TEXT = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.characters(blacklist_categories=("Cs",))), max_size=25
).map("".join)


def _parse(tmp: Path, files: dict[str, str]) -> dict:
    for old in tmp.glob("*.tf*"):
        old.unlink()
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    parsed = tfparse.load_from_path(str(tmp))
    assert parsed, "tfparse could not parse the generated HCL"  # it answers {} on a syntax error
    return parsed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=TEXT.filter(lambda s: s != ""), value=TEXT, name=TEXT)
def test_any_string_in_a_tag_comes_back_literally(tmp_path: Path, key: str, value: str, name: str) -> None:
    stack = Stack("t")
    stack.add(Resource("aws_s3_bucket", "b", {"bucket": name, "tags": {key: value, "fixed": value}}))
    parsed = _parse(tmp_path, render(stack, "hcl"))["aws_s3_bucket"][0]
    # Terraform (cty) normalises every string to NFC; that is the only change allowed.
    nfc = lambda s: unicodedata.normalize("NFC", s)  # noqa: E731
    assert parsed["bucket"] == nfc(name)
    assert parsed["tags"] == {nfc(key): nfc(value), "fixed": nfc(value)}


@pytest.mark.parametrize("text", ["${var.x}", "%{ if true }x%{ endif }", "$${x}", "$$${x}", 'a"b\\c\nd\te'])
def test_template_sequences_stay_literal_in_both_formats(tmp_path: Path, text: str) -> None:
    stack = Stack("t")
    stack.add(Resource("aws_s3_bucket", "b", {"bucket": text}))
    assert _parse(tmp_path, render(stack, "hcl"))["aws_s3_bucket"][0]["bucket"] == text
    doc = json.loads(render(stack, "json")["main.tf.json"])
    assert doc["resource"]["aws_s3_bucket"]["b"]["bucket"] == text.replace("${", "$${").replace("%{", "%%{")


def test_quote_escapes_control_characters() -> None:
    assert quote("a\x00b\x1fc\x7f") == '"a\\u0000b\\u001fc\\u007f"'
    assert quote("${") == '"$${"'


def _sample_stack() -> Stack:
    stack = Stack("sample", header="Generated.\nDo not edit.")
    stack.providers.append(Provider("aws", {"region": "eu-west-1", "default_tags": Block({"tags": {"a": "b"}})}))
    key = Resource("aws_kms_key", "k", {"description": "key", "enable_key_rotation": True})
    bucket = Resource("aws_s3_bucket", "b", {"bucket": "name", "tags": {"x": "1", "longer-key": "2"}},
                      skips=(CheckovSkip("CKV_AWS_1", "a reason"),),
                      lifecycle=Lifecycle(prevent_destroy=True, ignore_changes=("tags",)))
    rule = Resource("aws_s3_bucket_lifecycle_configuration", "b", {
        "bucket": bucket.attr("id"),
        "rule": [Block({"id": "one", "status": "Enabled", "filter": Block({})}),
                 Block({"id": "two", "status": "Enabled"})],
    }, depends_on=(key,))
    policy = Resource("aws_s3_bucket_policy", "b", {
        "bucket": bucket.attr("id"),
        "policy": jsonencode({"Statement": [{"Resource": interp("", bucket.attr("arn"), "/*"),
                                             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}),
    })
    east = Provider("aws", {"region": "us-east-1"}, alias="east")
    stack.providers.append(east)
    replicas = Resource("aws_s3_bucket", "replica", {"bucket": Expr("each.value")},
                        for_each={"a": "replica-a", "b": "replica-b"}, provider=Expr("aws.east"))
    counted = Resource("aws_sns_topic", "maybe", {"name": "t"}, count=Expr("var.n"))
    stack.add(replicas, counted, Variable("n", "number", 1))
    stack.add(key, bucket, rule, policy, Variable("v", "string", "d"), Output("arn", bucket.attr("arn")),
              DataSource("terraform_remote_state", "up", {"backend": "s3", "config": {"bucket": "s"}}))
    return stack


def test_layout_is_canonical() -> None:
    files = render(_sample_stack(), "hcl")
    assert sorted(files) == ["main.tf", "outputs.tf", "remote_state.tf", "variables.tf", "versions.tf"]
    main = files["main.tf"]
    assert main.startswith("# Generated.\n# Do not edit.\n\n")
    # `=` aligned within a run of one-line attributes, as terraform fmt does
    assert '    x          = "1"\n    longer-key = "2"\n' in main
    # a nested block is a block, repeated blocks repeat, a map is an attribute
    assert "\n  rule {\n    id     = \"one\"\n" in main and main.count("\n  rule {") == 2
    assert "    filter {}\n" in main
    assert "  tags = {\n" in main
    assert "  depends_on = [aws_kms_key.k]\n" in main
    assert "  lifecycle {\n    prevent_destroy = true\n    ignore_changes  = [tags]\n  }\n" in main
    assert "  # checkov:skip=CKV_AWS_1:a reason\n" in main
    assert '  policy = jsonencode({\n' in main and '"aws:SecureTransport" = "false"' in main
    assert '"${aws_s3_bucket.b.arn}/*"' in main
    assert "\n\n\n" not in main and main.endswith("}\n")
    # meta-arguments come first in the block, as in hand-written Terraform
    assert 'resource "aws_s3_bucket" "replica" {\n  provider = aws.east\n  for_each = {\n' in main
    assert 'resource "aws_sns_topic" "maybe" {\n  count = var.n\n  name  = "t"\n}' in main
    assert 'provider "aws" {\n  alias  = "east"\n  region = "us-east-1"\n}' in files["versions.tf"]


def test_same_input_gives_byte_identical_output() -> None:
    for fmt in ("hcl", "json"):
        assert render(_sample_stack(), fmt) == render(_sample_stack(), fmt)


def test_json_writer_mirrors_the_model() -> None:
    files = render(_sample_stack(), "json")
    assert sorted(files) == ["main.tf.json", "outputs.tf.json", "remote_state.tf.json", "variables.tf.json",
                             "versions.tf.json"]
    main = json.loads(files["main.tf.json"])
    bucket = main["resource"]["aws_s3_bucket"]["b"]
    assert main["//"] == "Generated.\nDo not edit."
    assert bucket["lifecycle"] == {"prevent_destroy": True, "ignore_changes": ["tags"]}
    rule = main["resource"]["aws_s3_bucket_lifecycle_configuration"]["b"]
    assert rule["bucket"] == "${aws_s3_bucket.b.id}"
    assert [r["id"] for r in rule["rule"]] == ["one", "two"]
    assert rule["depends_on"] == ["aws_kms_key.k"]
    assert main["resource"]["aws_s3_bucket_policy"]["b"]["policy"].startswith("${jsonencode({")
    replica = main["resource"]["aws_s3_bucket"]["replica"]
    assert replica["provider"] == "aws.east" and replica["for_each"] == {"a": "replica-a", "b": "replica-b"}
    assert main["resource"]["aws_sns_topic"]["maybe"]["count"] == "${var.n}"
    assert json.loads(files["versions.tf.json"])["provider"]["aws"][1] == {"alias": "east", "region": "us-east-1"}


def test_reference_check_names_the_missing_object() -> None:
    stack = _sample_stack()
    stack.add(Resource("aws_s3_bucket_versioning", "x", {"bucket": Expr("aws_s3_bucket.nope.id",
                                                                         ("aws_s3_bucket.nope",))}))
    assert check_references(stack) == [
        "stack sample: aws_s3_bucket_versioning.x references aws_s3_bucket.nope, which the stack does not declare"]
    assert check_references(_sample_stack()) == []


@pytest.mark.terraform
@pytest.mark.parametrize("fmt", ["hcl", "json"])
def test_terraform_accepts_both_formats(terraform_env: dict[str, str], tmp_path: Path, fmt: str) -> None:
    stack = _sample_stack()
    stack.data = [d for d in stack.data if d.type != "terraform_remote_state"]
    for name, text in render(stack, fmt).items():
        (tmp_path / name).write_text(text)
    if fmt == "hcl":
        fmt_run = run_terraform(terraform_env, tmp_path, "fmt", "-check", "-diff")
        assert fmt_run.returncode == 0, fmt_run.stdout + fmt_run.stderr
    init = run_terraform(terraform_env, tmp_path, "init", "-backend=false", "-input=false")
    assert init.returncode == 0, init.stderr
    result = run_terraform(terraform_env, tmp_path, "validate", "-json")
    assert json.loads(result.stdout)["valid"], result.stdout
