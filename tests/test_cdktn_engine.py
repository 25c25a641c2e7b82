"""The cdktn engine (CDK Terrain) builds the same stacks as the native writers, through the provider bindings."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

from mlops_dsl import blueprints, namespaces, synth
from mlops_dsl.cdktn_engine import OUTPUT, comparable
from mlops_dsl.terraform import render

from .conftest import ROOT, Project

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("cdktn") is None or shutil.which("node") is None,
    reason="the cdktn engine needs `pip install '.[cdktn]'` and Node.js")


def _merge(into: dict, doc: dict) -> dict:
    for key, value in doc.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def _native(stack) -> dict:
    """The native .tf.json files of a stack as one document."""
    merged: dict = {}
    for text in render(stack, "json").values():
        doc = json.loads(text)
        doc.pop("//", None)
        _merge(merged, doc)
    return comparable(merged)


def test_both_engines_produce_the_same_stacks(tmp_path) -> None:
    """Every resource, data source, provider, backend, local and output of both example blueprints
    (AWS and Azure) in one namespace, with the same names and arguments; only cdktn's metadata
    differs."""
    out = tmp_path / "cdktn.out"
    result = subprocess.run([sys.executable, "-m", "mlops_dsl.cli", "synth", "--engine", "cdktn", "-n", "dev",
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = synth.render_tree(blueprints.load(None), [namespaces.load(ROOT / "namespaces.yaml")["dev"]], root=ROOT)
    expected = {f"{ns}/{platform}/{build.template}": build for (ns, platform), builds in rendered.builds.items()
                for build in builds}
    assert len(expected) >= 8  # both clouds' data, training and serving stacks at least
    assert f"synth --engine cdktn: {len(expected)} stacks" in result.stdout
    assert {str(p.parent.relative_to(out)) for p in out.rglob(OUTPUT)} == set(expected)
    for path, build in expected.items():
        cdk = comparable(json.loads((out / path / OUTPUT).read_text()))
        assert cdk == _native(build.stack), path


def test_cdktn_output_never_lands_beside_native_files(project: Project) -> None:
    assert project.mlops("synth").exit_code == 0
    result = project.mlops("synth", "--engine", "cdktn", "--out", "terraform")
    assert result.exit_code == 2
    assert "holds native .tf files; cdk.tf.json beside them would declare every resource twice" in result.output
    assert project.mlops("synth", "--engine", "cdktn", "--check").exit_code == 2


def test_meta_arguments_variables_and_types_without_bindings_survive_the_engine(tmp_path) -> None:
    from mlops_dsl import cdktn_engine
    from mlops_dsl.terraform import (
        Backend,
        Block,
        DataSource,
        Expr,
        Lifecycle,
        Output,
        Provider,
        RequiredProvider,
        Resource,
        Settings,
        Stack,
        Variable,
        interp,
    )

    stack = Stack("t")
    stack.settings = Settings(">= 1.10", {"aws": RequiredProvider("hashicorp/aws", ">= 5.100, < 7.0")},
                              Backend("s3", {"bucket": "b", "key": "k", "region": "eu-west-1", "use_lockfile": True}))
    stack.providers = [Provider("aws", {"region": "eu-west-1", "default_tags": Block({"tags": {"a": "b"}})})]
    key = Resource("aws_kms_key", "k", {"enable_key_rotation": True}, lifecycle=Lifecycle(prevent_destroy=True))
    doc = DataSource("aws_iam_policy_document", "p", {"statement": [Block({"actions": ["s3:*"]})]})
    stack.add(
        Variable("suffix", type="string", default="x", description="a suffix"),
        key, doc,
        Resource("aws_s3_bucket", "b", {"bucket": interp("b-", Expr("var.suffix", ("var.suffix",)), "-${x}")},
                 depends_on=(key,), count=2),
        Resource("azapi_resource", "x", {"type": "Microsoft.Foo/bars@2024-01-01", "body": {"properties": {}}}),
        Output("arn", key.attr("arn"), description="the key", sensitive=True),
    )
    stack.local("name", "literal ${not an expression}")
    out = tmp_path / "out"
    cdktn_engine.synth([("dev/p/t", stack)], out)
    cdk = comparable(json.loads((out / "dev/p/t" / OUTPUT).read_text()))
    assert cdk == _native(stack)
    assert cdk["resource"]["aws_s3_bucket"]["b"]["bucket"] == "b-${var.suffix}-$${x}"
    assert cdk["resource"]["aws_kms_key"]["k"]["lifecycle"] == {"prevent_destroy": True}
