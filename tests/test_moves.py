"""Refactor safety: renamed resources carry `moved` blocks (rename table, renames against git HEAD,
carried over while needed), `synth --check` stays stable, and a renamed template is an error with
its state migration. With real terraform, a plan against the previous rendering's state destroys nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from mlops_dsl import moves, toolchain
from mlops_dsl.renames import Rename
from mlops_dsl.runner.plans import StackPlan, changes_of
from mlops_dsl.runner.plans import summary as plan_summary
from mlops_dsl.terraform import Moved, Resource, Stack, check_references, render

# A team template rendering terraform_data markers (Terraform's built-in provider: applying them needs
# no cloud), and a DataInfrastructure whose name the template-rename tests change.
BLUEPRINT = textwrap.dedent("""\
    from dataclasses import dataclass, field
    from typing import ClassVar

    from mlops_dsl import Constraint, ListOf, Pattern, Platform, Resource, Template, renderer


    @dataclass(eq=False, repr=False)
    class Markers(Template):
        items: list = field(default_factory=list)
        name: str = field(default="markers", kw_only=True)
        _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {{
            "items": [ListOf(Pattern(r"[a-z_]+", "a marker name"))],
            "name": [Pattern(r"[a-z][a-z0-9-]*", "a name")],
        }}


    @renderer(Markers, cloud="aws")
    def render_markers(t, ctx):
        for item in t.items:
            ctx.stack.add(Resource("terraform_data", item, {{"input": "same body"}}))


    platform = Platform("churn", cloud="aws")
    platform.add(Markers(items={items!r}){renamed})
    """)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=root, check=True,
                   capture_output=True)


@pytest.fixture
def repo(project):
    if shutil.which("git") is None:
        pytest.skip("no git binary")
    _git(project.root, "init", "-q")
    return project


def _write(project, items: list[str], renamed: str = "") -> None:
    project.write("blueprints/churn.py", BLUEPRINT.format(items=items, renamed=renamed))


def _commit(project) -> None:
    _git(project.root, "add", "-A")
    _git(project.root, "commit", "-q", "-m", "render")


def _moved(project, ns: str = "dev", template: str = "markers") -> str | None:
    path = project.root / "terraform" / ns / "churn" / template / "moved.tf"
    return path.read_text() if path.exists() else None


# --- detection, in memory -----------------------------------------------------------------------

def test_detect_matches_a_rename_up_to_the_changed_name_and_references_to_moved_resources():
    old = {"aws_sagemaker_model.variant_challenger": 'name = "p-dev-challenger-v3"',
           "aws_cloudwatch_metric_alarm.latency_challenger": "dims = aws_sagemaker_model.variant_challenger.name",
           "aws_sns_topic.alarms": 'name = "t"'}
    new = {"aws_sagemaker_model.variant_candidate": 'name = "p-dev-candidate-v3"',
           "aws_cloudwatch_metric_alarm.latency_candidate": "dims = aws_sagemaker_model.variant_candidate.name",
           "aws_sns_topic.alarms": 'name = "t"'}
    assert moves.detect(old, new) == [
        ("aws_cloudwatch_metric_alarm.latency_challenger", "aws_cloudwatch_metric_alarm.latency_candidate"),
        ("aws_sagemaker_model.variant_challenger", "aws_sagemaker_model.variant_candidate")]


def test_detect_is_conservative():
    # the body changed too: a destroy and a create the reviewer can see, not a guess
    assert moves.detect({"aws_x.a": "v = 1"}, {"aws_x.b": "v = 2"}) == []
    # two candidates with the same body: ambiguous, no move
    assert moves.detect({"aws_x.a": "v = 1"}, {"aws_x.b": "v = 1", "aws_x.c": "v = 1"}) == []
    # another type
    assert moves.detect({"aws_x.a": "v = 1"}, {"aws_y.b": "v = 1"}) == []
    # a removed-only and added-only pair of the same block is a move
    assert moves.detect({"aws_x.a": "v = 1", "aws_x.k": "k"}, {"aws_x.b": "v = 1", "aws_x.k": "k"}) == \
        [("aws_x.a", "aws_x.b")]


@pytest.mark.parametrize("fmt", ["hcl", "json"])
def test_both_writers_render_moved_blocks_that_read_back_and_compare_equal(fmt):
    stack = Stack("t", header="Generated.")
    stack.add(Resource("aws_sns_topic", "b", {"name": "x", "tags": {"a": "${literal}"}}))
    stack.moved = [Moved("aws_sns_topic.a", "aws_sns_topic.b", "renamed in the blueprint")]
    files = render(stack, fmt)
    name = "moved.tf" if fmt == "hcl" else "moved.tf.json"
    assert moves.committed_moves(files) == stack.moved
    parsed = moves.committed_resources(files)
    assert parsed is not None and parsed[0] == fmt
    assert parsed[1] == moves.current_resources(stack, fmt)
    if fmt == "hcl":
        block = "moved {\n  # renamed in the blueprint\n  from = aws_sns_topic.a\n  to   = aws_sns_topic.b\n}"
        assert block in files[name]
    else:
        assert json.loads(files[name])["moved"] == [{"//": "renamed in the blueprint", "from": "aws_sns_topic.a",
                                                    "to": "aws_sns_topic.b"}]


def test_check_references_rejects_a_move_to_nothing_from_something_declared_or_twice():
    stack = Stack("t")
    stack.add(Resource("aws_x", "a"), Resource("aws_x", "b"))
    stack.moved = [Moved("aws_x.old", "aws_x.gone"), Moved("aws_x.a", "aws_x.b"), Moved("aws_x.z", "aws_x.a"),
                   Moved("aws_x.z", "aws_x.b")]
    problems = check_references(stack)
    assert "stack t: moved from aws_x.old to aws_x.gone, which the stack does not declare" in problems
    assert "stack t: moved from aws_x.a, which the stack still declares" in problems
    assert "stack t: aws_x.z is moved twice" in problems
    chained = Stack("c")
    chained.add(Resource("aws_x", "c"))
    chained.moved = [Moved("aws_x.a", "aws_x.b"), Moved("aws_x.b", "aws_x.c")]
    assert check_references(chained) == []


def test_the_rename_table_applies_to_its_template_and_cloud_only():
    stack = Stack("t")
    stack.add(Resource("aws_iam_role", "drift"))
    table = [Rename("aws", "ModelServing", "aws_iam_role.retrain", "aws_iam_role.drift", "0.9"),
             Rename("azure", "ModelServing", "aws_iam_role.x", "aws_iam_role.drift", "0.9")]
    assert moves.moves_for(stack, "aws", "ModelServing", {}, table=table) == [
        Moved("aws_iam_role.retrain", "aws_iam_role.drift", "renamed by mlops-dsl 0.9 (mlops_dsl/renames.py)")]
    assert moves.moves_for(stack, "aws", "TrainingInfrastructure", {}, table=table) == []


# --- against git HEAD, through the CLI -----------------------------------------------------------

def test_a_blueprint_rename_is_a_move_that_stays_stable_chains_and_can_be_dropped(repo):
    _write(repo, ["alpha", "keep"])
    assert repo.mlops("synth").exit_code == 0
    assert _moved(repo) is None
    _commit(repo)

    _write(repo, ["beta", "keep"])
    result = repo.mlops("synth")
    assert result.exit_code == 0, result.output
    moved = _moved(repo)
    assert moved is not None and "from = terraform_data.alpha\n  to   = terraform_data.beta" in moved
    assert moved.count("moved {") == 1  # `keep` did not move
    assert repo.mlops("synth", "--check").exit_code == 0  # before the commit: detected against HEAD
    _commit(repo)
    assert repo.mlops("synth", "--check").exit_code == 0  # after it: carried over from HEAD, same text

    _write(repo, ["gamma", "keep"])
    assert repo.mlops("synth").exit_code == 0
    moved = _moved(repo)
    assert "from = terraform_data.alpha\n  to   = terraform_data.beta" in moved  # a state still at alpha
    assert "from = terraform_data.beta\n  to   = terraform_data.gamma" in moved
    _commit(repo)

    assert repo.mlops("synth", "--drop-moves").exit_code == 0
    assert _moved(repo) is None
    _commit(repo)
    result = repo.mlops("synth", "--check")
    assert result.exit_code == 0, result.output  # stable once dropped, too


def test_a_committed_json_tree_is_compared_as_json(repo):
    _write(repo, ["alpha"])
    assert repo.mlops("synth", "--format", "json").exit_code == 0
    _commit(repo)
    _write(repo, ["beta"])
    assert repo.mlops("synth", "--format", "json").exit_code == 0
    moved = json.loads((repo.root / "terraform/dev/churn/markers/moved.tf.json").read_text())["moved"]
    assert moved == [{"//": moves.BLUEPRINT_REASON, "from": "terraform_data.alpha", "to": "terraform_data.beta"}]
    _commit(repo)
    assert repo.mlops("synth", "--format", "json", "--check").exit_code == 0


def test_outside_a_git_work_tree_there_is_nothing_to_compare_with(project):
    _write(project, ["alpha"])
    assert project.mlops("synth").exit_code == 0
    _write(project, ["beta"])
    assert project.mlops("synth").exit_code == 0
    assert _moved(project) is None


def test_a_renamed_template_is_an_error_with_its_migration_until_it_says_so(repo):
    _write(repo, ["alpha"])
    assert repo.mlops("synth").exit_code == 0
    _commit(repo)
    repo.write("blueprints/churn.py", BLUEPRINT.format(items=["alpha"], renamed="").replace(
        'Markers(items=', 'Markers(name="flags", items='))
    result = repo.mlops("synth")
    assert result.exit_code == 2, result.output
    assert "Markers 'flags' (namespace 'dev') looks renamed from 'markers'" in result.output
    assert "terraform -chdir=terraform/dev/churn/markers init -migrate-state " \
           "-backend-config=key=churn/dev/flags.tfstate" in result.output
    assert ".renamed_from('markers')" in result.output
    assert (repo.root / "terraform/dev/churn/markers/main.tf").exists()  # nothing written

    # Another template in place of the old one (not the same resources): no rename, no error.
    repo.write("blueprints/churn.py", BLUEPRINT.format(items=["other"], renamed="").replace(
        'Markers(items=', 'Markers(name="flags", items='))
    result = repo.mlops("synth", "--check")
    assert result.exit_code == 1 and "looks renamed" not in result.output, result.output

    repo.write("blueprints/churn.py", BLUEPRINT.format(items=["alpha"], renamed=".renamed_from('markers')").replace(
        'Markers(items=', 'Markers(name="flags", items='))
    result = repo.mlops("synth")
    assert result.exit_code == 0, result.output
    manifest = json.loads((repo.root / "terraform/dev/churn/stacks.json").read_text())
    assert manifest["stacks"]["flags"]["notes"] == [
        "flags: renamed from markers; its state must already be at churn/dev/flags.tfstate"]
    assert not (repo.root / "terraform/dev/churn/markers").exists()


# --- with real terraform -------------------------------------------------------------------------

def _terraform(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = toolchain.find_binary()
    env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    return subprocess.run([binary, *args], cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False)


def _plan(work: Path) -> dict:
    planned = _terraform(work, "plan", "-input=false", "-out=plan.bin")
    assert planned.returncode == 0, planned.stderr
    return json.loads(_terraform(work, "show", "-json", "plan.bin").stdout)


def test_terraform_plans_the_rename_as_a_move_against_the_previous_state(repo, tmp_path):
    """The rendered main.tf and moved.tf, planned by real terraform against the state the previous
    rendering's apply left. The stack's versions.tf is replaced by a local backend (its S3 backend
    needs a bucket, and terraform_data needs no AWS provider, whose start-up alone takes 10 s here)."""
    if toolchain.find_binary() is None:
        pytest.skip("no terraform or tofu binary on PATH")
    _write(repo, ["alpha", "keep"])
    assert repo.mlops("synth").exit_code == 0
    _commit(repo)
    stack = repo.root / "terraform/dev/churn/markers"
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(stack / "main.tf", work / "main.tf")
    (work / "versions.tf").write_text('terraform {\n  backend "local" {\n    path = "state.tfstate"\n  }\n}\n')
    init = _terraform(work, "init", "-input=false")
    assert init.returncode == 0, init.stderr
    applied = _terraform(work, "apply", "-input=false", "-auto-approve")
    assert applied.returncode == 0, applied.stderr

    _write(repo, ["beta", "keep"])
    assert repo.mlops("synth").exit_code == 0
    for name in ("main.tf", "moved.tf"):
        shutil.copy(stack / name, work / name)
    plan = _plan(work)
    changes = plan["resource_changes"]
    assert [c["address"] for c in changes if "delete" in c["change"]["actions"]] == []
    moved = [c for c in changes if c.get("previous_address")]
    assert [(c["previous_address"], c["address"], c["change"]["actions"]) for c in moved] == [
        ("terraform_data.alpha", "terraform_data.beta", ["no-op"])]
    # The runner's summary shows the move, and does not skip the apply that records it in the state.
    summary = changes_of(plan)
    assert summary.moved == ["terraform_data.alpha -> terraform_data.beta"] and not summary.empty
    assert summary.counts() == "0 to add, 0 to change, 0 to replace, 0 to destroy, 1 moved"

    record = StackPlan("churn", "markers", "0" * 64, "planned", summary)
    text = plan_summary("dev", "terraform", [StackPlan.from_json(record.to_json())])
    assert "**Moved (the same object, at a new address)** (1):\n\n- `terraform_data.alpha -> terraform_data.beta`" \
        in text and "No changes." not in text

    (work / "moved.tf").unlink()  # the control: without the block, the same rename destroys
    changes = _plan(work)["resource_changes"]
    assert [c["address"] for c in changes if "delete" in c["change"]["actions"]] == ["terraform_data.alpha"]
