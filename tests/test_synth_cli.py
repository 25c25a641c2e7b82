"""`mlops synth`, `--check`, `graph` and `plan` as users run them, including every bad-input path."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from mlops_dsl import toolchain

from .conftest import BLUEPRINT, ROOT, Project


def test_synth_writes_each_stack_and_a_manifest(project: Project) -> None:
    result = project.mlops("synth", "--all")
    assert result.exit_code == 0, result.output
    tree = project.tree()
    assert sorted(tree) == [
        f"{ns}/churn/{f}" for ns in ("dev", "prod")
        for f in ("data/main.tf", "data/outputs.tf", "data/versions.tf", "stacks.json")
    ]
    manifest = json.loads(tree["prod/churn/stacks.json"])
    assert manifest["platform"] == "churn" and manifest["namespace"] == "prod"
    assert manifest["order"] == ["data"]
    stack = manifest["stacks"]["data"]
    assert stack["path"] == "prod/churn/data" and stack["depends_on"] == []
    assert len(stack["sha256"]) == 64
    assert "synth: 2 stacks in 2 namespaces" in result.output


def test_repeated_synth_is_byte_identical_and_check_passes(project: Project) -> None:
    project.mlops("synth")
    first = project.tree()
    again = project.mlops("synth")
    assert "0 written, 0 removed" in again.output
    assert project.tree() == first
    check = project.mlops("synth", "--all", "--check")
    assert check.exit_code == 0 and "up to date" in check.output


def test_check_lists_what_is_out_of_date(project: Project) -> None:
    project.mlops("synth")
    main = project.root / "terraform/dev/churn/data/main.tf"
    main.write_text(main.read_text().replace("90", "91"))
    (project.root / "terraform/prod/churn/data/outputs.tf").unlink()
    stray = project.root / "terraform/dev/churn/old/main.tf"
    stray.parent.mkdir()
    stray.write_text("# no longer declared\n")
    result = project.mlops("synth", "--check")
    assert result.exit_code == 1
    assert "out of date: terraform/dev/churn/data/main.tf differs from the blueprints" in result.output
    assert "out of date: terraform/prod/churn/data/outputs.tf is missing" in result.output
    assert "out of date: terraform/dev/churn/old/main.tf is no longer declared" in result.output
    assert main.read_text().count("91") >= 1  # --check writes nothing


def test_synth_removes_stacks_and_namespaces_no_longer_declared(project: Project) -> None:
    project.mlops("synth")
    lock = project.root / "terraform/dev/churn/data/.terraform.lock.hcl"
    lock.write_text("# made by terraform init\n")
    old = project.root / "terraform/qa/churn/data"
    old.mkdir(parents=True)
    (old / "main.tf").write_text("\n")
    (project.root / "terraform/dev/churn/gone").mkdir()
    (project.root / "terraform/dev/churn/gone/main.tf").write_text("\n")
    result = project.mlops("synth", "--all")
    assert "- qa/churn/data/main.tf" in result.output and "- dev/churn/gone/main.tf" in result.output
    assert not (project.root / "terraform/qa").exists()
    assert not (project.root / "terraform/dev/churn/gone").exists()
    assert lock.exists()  # files terraform init made in a live stack are left alone


def test_synth_of_one_namespace_leaves_the_others_alone(project: Project) -> None:
    project.mlops("synth")
    prod_before = {k: v for k, v in project.tree().items() if k.startswith("prod/")}
    project.write("blueprints/churn.py", BLUEPRINT.replace('["raw", "models"]', '["raw"]'))
    result = project.mlops("synth", "-n", "dev")
    assert result.exit_code == 0
    assert {k: v for k, v in project.tree().items() if k.startswith("prod/")} == prod_before
    assert 'resource "aws_s3_bucket" "models"' not in (project.root / "terraform/dev/churn/data/main.tf").read_text()


def test_json_format(project: Project) -> None:
    result = project.mlops("synth", "--format", "json", "--out", "tfjson")
    assert result.exit_code == 0
    doc = json.loads((project.root / "tfjson/dev/churn/data/main.tf.json").read_text())
    assert "aws_s3_bucket" in doc["resource"]


BAD_BLUEPRINTS = [
    ("raise RuntimeError('boom')\n", "blueprints/churn.py:1: the blueprint raised RuntimeError: boom"),
    ("from mlops_dsl import DataInfrastructure\nDataInfrastructure(zones=['Raw Data'])\n",
     "blueprints/churn.py:2: The 'zones' parameter of DataInfrastructure 'data' must be a list of 1 to 10 "
     "unique items, each a string of 2 to 16 lowercase letters, digits and hyphens. Got ['Raw Data'] instead."),
    ("from mlops_dsl import DataInfrastructure\nDataInfrastructure(noncurrent_version_days='90')\n",
     "blueprints/churn.py:2: The 'noncurrent_version_days' parameter of DataInfrastructure 'data' must be an int "
     "in the range [1, 3650]. Got '90' instead."),
    ("def broken(:\n", "blueprints/churn.py:1: syntax error: invalid syntax"),
    ("x = 1\n", "blueprints/churn.py: declares no Platform at module level"),
    ("from mlops_dsl import Platform\np = Platform('churn', cloud='aws')\n",
     "blueprints/churn.py: platform 'churn' has no templates"),
    ("from mlops_dsl import Platform\np = Platform('Churn', cloud='aws')\n",
     "blueprints/churn.py:2: Platform name must be 3 to 24 lowercase letters"),
]


@pytest.mark.parametrize(("source", "expected"), BAD_BLUEPRINTS)
def test_bad_blueprint_is_one_clear_error_and_writes_nothing(project: Project, source: str, expected: str) -> None:
    project.mlops("synth")
    before = project.tree()
    project.write("blueprints/churn.py", source)
    result = project.mlops("synth")
    assert result.exit_code == 2, result.output
    assert f"Error: {expected}" in result.output
    assert "Traceback" not in result.output
    assert project.tree() == before


def test_bucket_name_rules_are_checked_on_the_final_name(project: Project) -> None:
    """Each part is valid alone; only the bucket name they make together breaks S3's limit."""
    project.write("blueprints/churn.py", textwrap.dedent("""\
        from mlops_dsl import DataInfrastructure, Platform
        p = Platform("customer-churn-forecast", cloud="aws")
        p.add(DataInfrastructure(zones=["raw", "experiments-arch"]))
        """))
    assert project.mlops("synth", "-n", "dev").exit_code == 0
    text = (project.root / "namespaces.yaml").read_text().replace("  prod:", "  load-testing-eu1:")
    project.write("namespaces.yaml", text)
    result = project.mlops("synth", "-n", "load-testing-eu1")
    assert result.exit_code == 2
    assert ("Error: blueprints/churn.py:3: DataInfrastructure 'data': zones: zone 'experiments-arch' gives the S3 "
            "bucket name 'customer-churn-forecast-load-testing-eu1-experiments-arch-333333333333', which is 70 "
            "characters long; S3 allows 3 to 63 (namespace 'load-testing-eu1')") in result.output
    assert not (project.root / "terraform/load-testing-eu1").exists()


@pytest.mark.parametrize(("namespaces", "args", "expected"), [
    ("namespaces:\n  dev:\n    aproval: auto\n", ["synth"],
     "Error: namespaces.yaml: namespaces.dev.aproval: unknown key"),
    ("namespaces:\n  dev:\n    approval: auto\n", ["synth"],
     "Error: namespaces.yaml: namespaces.dev: has no 'aws' section (and defaults has none), which platform "
     "'churn' needs"),
    (None, ["synth", "-n", "prd"],
     "Error: namespaces.yaml: no namespace 'prd' (namespaces: dev, prod). Did you mean 'prod'?"),
    (None, ["synth", "--namespaces", "missing.yaml"], "Error: missing.yaml: not found"),
])
def test_bad_namespaces_are_one_clear_error(project: Project, namespaces, args, expected) -> None:
    if namespaces is not None:
        project.write("namespaces.yaml", namespaces)
    result = project.mlops(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert not (project.root / "terraform").exists()


def test_override_of_an_undeclared_template_is_an_error(project: Project) -> None:
    text = (project.root / "namespaces.yaml").read_text() + "    overrides:\n      serving:\n        x: 1\n"
    project.write("namespaces.yaml", text)
    result = project.mlops("synth")
    assert result.exit_code == 2
    assert ("Error: namespaces.yaml: namespaces.prod.overrides.serving: no platform declares a template named "
            "'serving' (templates: data; platforms: churn)") in result.output


CUSTOM_TEMPLATE = textwrap.dedent("""\
    from dataclasses import dataclass, field
    from mlops_dsl import DataInfrastructure, Platform, Template

    @dataclass(eq=False, repr=False)
    class Reports(Template):
        sources: list = field(default_factory=list)
        name: str = field(default="reports", kw_only=True)

    data = DataInfrastructure()
    reports = Reports([data])
    """)


@pytest.mark.parametrize(("tail", "expected"), [
    ('p = Platform("churn", cloud="aws").add(reports)\n',
     "Error: blueprints/churn.py:10: Platform 'churn': Reports 'reports' depends on DataInfrastructure 'data', "
     "which is not part of the platform; add it with platform.add()."),
    ('other = Reports([reports], name="other")\nreports.sources.append(other)\n'
     'p = Platform("churn", cloud="aws").add(data, reports, other)\n',
     "Error: Platform 'churn': dependency cycle: reports -> other -> reports"),
])
def test_graph_errors_in_a_blueprint_are_clear(project: Project, tail: str, expected: str) -> None:
    project.write("blueprints/churn.py", CUSTOM_TEMPLATE + tail)
    for command in (["synth"], ["graph"]):
        result = project.mlops(*command)
        assert result.exit_code == 2, result.output
        assert expected in result.output and "Traceback" not in result.output
    assert not (project.root / "terraform").exists()


def test_missing_blueprint_dir_and_file(project: Project) -> None:
    result = project.mlops("synth", "--blueprint", "nope.py")
    assert result.exit_code == 2 and "Error: nope.py: no such blueprint file" in result.output
    (project.root / "blueprints/churn.py").unlink()
    (project.root / "blueprints").rmdir()
    result = project.mlops("synth")
    assert result.exit_code == 2 and "Error: blueprints/: no blueprint directory here" in result.output


def test_graph_formats(project: Project) -> None:
    mermaid = project.mlops("graph")
    assert mermaid.exit_code == 0
    assert mermaid.output.startswith("flowchart LR\n")
    assert 'churn__data["data<br/>DataInfrastructure"]' in mermaid.output
    dot = project.mlops("graph", "--format", "dot")
    assert dot.output.startswith("digraph mlops {")
    assert '"churn/data" [label="data\\nDataInfrastructure"];' in dot.output


def test_plan_without_terraform_or_git_synthesizes_and_lists_new_stacks(project: Project, monkeypatch) -> None:
    monkeypatch.delenv("TF_BINARY", raising=False)
    monkeypatch.setattr(toolchain, "find_binary", lambda: None)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(project.root.parent))
    result = project.mlops("plan", "-n", "prod")
    assert result.exit_code == 0, result.output
    assert "CONFIGURATION DIFF, NOT A STATE-AWARE PLAN" in result.output
    assert "every stack is shown as new" in result.output
    assert "prod / churn  (approval: manual)" in result.output and "1. data         new stack" in result.output
    assert (project.root / "terraform/prod/churn/data/main.tf").exists()


def test_committed_tree_matches_the_blueprints() -> None:
    result = subprocess.run([sys.executable, "-m", "mlops_dsl.cli", "synth", "--all", "--check"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_help_and_synth_import_no_ml_library_or_cdktn(tmp_path) -> None:
    heavy = ("sklearn", "mlflow", "pandas", "numpy", "scipy", "cdktn", "cdktf", "jsii", "onnxruntime", "tfparse",
             "checkov")
    code = textwrap.dedent(f"""\
        import sys
        from click.testing import CliRunner
        from mlops_dsl.cli import main
        r = CliRunner()
        assert r.invoke(main, ["--help"]).exit_code == 0
        res = r.invoke(main, ["synth", "--all", "--check"])
        assert res.exit_code == 0, res.output
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
        print(loaded)
        """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cdktn_engine_without_cdktn_is_a_clear_error(project: Project, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cdktn", None)  # import cdktn now raises ImportError
    result = project.mlops("synth", "--engine", "cdktn")
    assert result.exit_code == 1
    assert "the cdktn engine needs `pip install 'mlops-dsl[cdktn]'` and Node.js >= 20" in result.output
    assert not (project.root / "cdktn.out").exists()


def test_cdktn_engine_without_a_recent_node_is_a_clear_error(project: Project, monkeypatch, tmp_path) -> None:
    old = tmp_path / "bin" / "node"
    old.parent.mkdir()
    old.write_text("#!/bin/sh\necho v18.20.4\n")
    old.chmod(0o755)
    monkeypatch.setenv("PATH", str(old.parent))
    result = project.mlops("synth", "--engine", "cdktn")
    assert result.exit_code == 1
    assert f"needs Node.js: {old} is v18.20.4; it needs Node.js >= 20" in result.output
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert "Node.js >= 20 is not on PATH" in project.mlops("synth", "--engine", "cdktn").output


def test_the_archived_cdktf_engine_is_refused_with_its_successor_named(project: Project) -> None:
    result = project.mlops("synth", "--engine", "cdktf")
    assert result.exit_code == 2
    assert ("--engine cdktf: CDK for Terraform was archived in December 2025; the engine now runs on its "
            "maintained fork, CDK Terrain: use --engine cdktn") in result.output
    assert not (project.root / "cdktf.out").exists() and not (project.root / "cdktn.out").exists()
    assert "--engine [native|cdktn]" in project.mlops("synth", "--help").output
