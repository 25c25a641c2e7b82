"""`mlops init`: a new project works from its own directory, with this repository's environment.

Each cloud's project is created in tmp_path and then driven as a user would from inside it:
`mlops synth --all`, `mlops synth --all --check`, `mlops validate --schema` and the project's own
tests, in subprocesses whose working directory is the new project (no fresh pip install: the
mlops-dsl installed here is the one the project depends on by path).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlops_dsl import scaffold
from mlops_dsl.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _init(*args: str) -> object:
    return CliRunner().invoke(main, ["init", *args])


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)} in {project}:\n{result.stdout}\n{result.stderr}"
    return result


def _phony(makefile: Path) -> set[str]:
    return {t for line in makefile.read_text().splitlines() if line.startswith(".PHONY:") for t in line.split()[1:]}


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_a_new_project_synthesizes_validates_and_passes_its_own_tests_from_its_directory(tmp_path: Path,
                                                                                         cloud: str) -> None:
    project = tmp_path / "churn-team"
    result = _init(str(project), "--cloud", cloud)
    assert result.exit_code == 0, result.output
    assert "platform churn-team" in result.output

    blueprint = project / "blueprints" / "churn_team.py"
    assert 'Platform("churn-team", cloud="' + cloud + '")' in blueprint.read_text()
    spaces = yaml.safe_load((project / "namespaces.yaml").read_text())["namespaces"]
    assert sorted(spaces) == (["dev", "local", "prod", "staging"] if cloud == "aws" else ["dev", "prod", "staging"])
    requirement = (project / "requirements.txt").read_text().splitlines()[-1]
    extras = ",".join(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert requirement == f"mlops-dsl[{extras}] @ {ROOT.as_uri()}"
    # This repository's targets, but `bench`: its benchmarks measure mlops-dsl itself.
    assert _phony(project / "Makefile") == _phony(ROOT / "Makefile") - {"bench"}
    assert (project / ".ci" / "run").stat().st_mode & 0o100
    workflow = yaml.safe_load((project / "examples" / "github-actions" / "mlops.yml").read_text())
    ours = yaml.safe_load((ROOT / "examples" / "github-actions" / "mlops.yml").read_text())
    assert list(workflow["jobs"]) == list(ours["jobs"]) and workflow["permissions"] == ours["permissions"]
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "pip install -r requirements.txt" in runs
    assert any("mlops smoke -n staging --platform churn-team" in run for run in runs)
    assert yaml.safe_load((project / "training" / "config.yaml").read_text())["platform"] == "churn-team"
    for context in ("training", "serving"):
        assert (project / context / "Dockerfile").is_file()
    assert not list(project.rglob("__pycache__"))
    assert not list(tmp_path.glob(".*mlops-init*")), "the staging directory was left behind"

    _run(project, "-m", "mlops_dsl.cli", "synth", "--all")
    check = _run(project, "-m", "mlops_dsl.cli", "synth", "--all", "--check")
    stacks = 16 if cloud == "aws" else 12
    assert f"terraform/ is up to date: {stacks} stacks" in check.stdout
    assert (project / "terraform" / "dev" / "churn-team" / "serving").is_dir()
    validate = _run(project, "-m", "mlops_dsl.cli", "validate", "--schema")
    assert f"{stacks} stacks in" in validate.stdout and "are valid" in validate.stdout
    tests = _run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
    assert re.search(r"\b5 passed\b", tests.stdout), tests.stdout


def test_it_refuses_a_non_empty_directory_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    project = tmp_path / "existing"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    result = _init(str(project), "--cloud", "aws", "--name", "churn-team")
    assert result.exit_code == 2
    assert f"Error: {project}: not empty (holds notes.txt)" in result.output
    assert [p.name for p in project.iterdir()] == ["notes.txt"]


def test_a_file_or_a_missing_parent_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = _init(str(tmp_path / "file"), "--cloud", "aws", "--name", "churn-team")
    assert result.exit_code == 2 and f"Error: {tmp_path / 'file'}: exists and is not a directory" in result.output
    result = _init(str(tmp_path / "no" / "such"), "--cloud", "aws", "--name", "churn-team")
    assert result.exit_code == 2
    assert f"Error: {tmp_path / 'no' / 'such'}: its parent directory {tmp_path / 'no'} does not exist" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_the_empty_working_directory_is_filled_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "empty"
    project.mkdir()
    monkeypatch.chdir(project)
    inode = os.stat(".").st_ino
    assert _init(".", "--cloud", "azure", "--name", "fin-team").exit_code == 0
    assert os.stat(".").st_ino == inode, "the directory was replaced: a shell in it would see none of the files"
    assert Path("blueprints/fin_team.py").is_file()
    assert not [p for p in project.iterdir() if p.name.startswith(".mlops-init")]
    names = [line.split(":", 1)[1].strip() for line in (project / "namespaces.yaml").read_text().splitlines()
             if "storage_account_name" in line]
    assert names == ["finteamtfdev", "finteamtfstaging", "finteamtfprod"]


@pytest.mark.parametrize(("args", "message"), [
    (["--name", "Churn_Team"], "--name: 'Churn_Team' is not a platform name"),
    (["--name", "churn-"], "--name: 'churn-' is not a platform name"),
])
def test_a_bad_name_is_a_user_error_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    result = _init(str(tmp_path / "p"), "--cloud", "aws", *args)
    assert result.exit_code == 2
    assert f"Error: {message}: 3 to 24 lowercase letters" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_directory_name_that_is_no_platform_name_asks_for_name(tmp_path: Path) -> None:
    result = _init(str(tmp_path / "ab"), "--cloud", "aws")
    assert result.exit_code == 2
    assert f"Error: {tmp_path / 'ab'} (the default --name): 'ab' is not a platform name" in result.output
    assert "Error: give the platform a name with --name" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_cloud_is_refused_by_the_option(tmp_path: Path) -> None:
    result = _init(str(tmp_path / "churn-team"), "--cloud", "gcp")
    assert result.exit_code == 2 and "'gcp' is not one of 'aws', 'azure'" in result.output


def test_a_failure_while_writing_leaves_no_half_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Path] = []
    real = Path.write_bytes

    def fail_on_the_tenth(self: Path, data: bytes) -> int:
        written.append(self)
        if len(written) % 10 == 0:  # the tenth file of each run
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", fail_on_the_tenth)
    result = _init(str(tmp_path / "churn-team"), "--cloud", "aws")
    assert result.exit_code == 1
    assert "could not create the project (No space left on device); nothing was written" in result.output
    assert len(written) == 10
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "empty").mkdir()  # an existing empty directory stays empty
    result = _init(str(tmp_path / "empty"), "--cloud", "aws", "--name", "churn-team")
    assert result.exit_code == 1 and len(written) == 20
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_failure_while_moving_into_an_empty_directory_moves_everything_back(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "empty"
    project.mkdir()
    real, moves = os.rename, []

    def fail_on_the_fourth(src: Path, dst: Path) -> None:
        moves.append(dst)
        if len(moves) == 4:
            raise OSError(18, "Invalid cross-device link")
        real(src, dst)

    monkeypatch.setattr(os, "rename", fail_on_the_fourth)
    result = _init(str(project), "--cloud", "aws", "--name", "churn-team")
    assert result.exit_code == 1 and "Invalid cross-device link" in result.output
    assert len(moves) == 4 + 3  # three moved in, three moved back
    assert list(project.iterdir()) == []


def _fake_checkout(root: Path, config: str) -> Path:
    (root / "training").mkdir(parents=True)
    (root / "serving").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "mlops-dsl"\n[project.optional-dependencies]\nml = []\n'
                                         'aws = []\n')
    (root / "training" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (root / "serving" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (root / "training" / "config.yaml").write_text(config)
    return root


def test_a_source_that_is_no_checkout_or_lacks_the_config_line_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _init(str(tmp_path / "a"), "--cloud", "aws", "--name", "churn-team", "--source", str(empty))
    assert result.exit_code == 2
    assert f"Error: --source {empty}: not an mlops-dsl checkout" in result.output
    assert f"Error: --source {empty}: no training/Dockerfile to copy" in result.output

    source = _fake_checkout(tmp_path / "src", "data: {}\n")
    result = _init(str(tmp_path / "b"), "--cloud", "aws", "--name", "churn-team", "--source", str(source))
    assert result.exit_code == 2
    assert "config.yaml: no top-level `platform:` line" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "src"]


def test_a_wheel_is_copied_into_the_project_and_depended_on_relatively(tmp_path: Path) -> None:
    source = _fake_checkout(tmp_path / "src", "platform: customer-churn   # the model's name\n")
    wheel = tmp_path / "mlops_dsl-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: only its name and bytes matter here
    project = tmp_path / "churn-team"
    result = _init(str(project), "--cloud", "aws", "--source", str(source), "--wheel", str(wheel))
    assert result.exit_code == 0, result.output
    assert (project / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()
    lines = (project / "requirements.txt").read_text().splitlines()
    assert lines[-1] == "./wheels/mlops_dsl-0.1.0-py3-none-any.whl[ml,aws]"
    assert (project / "training" / "config.yaml").read_text() == "platform: churn-team   # the model's name\n"

    bad = tmp_path / "other.whl"
    bad.write_bytes(b"")
    result = _init(str(tmp_path / "x"), "--cloud", "aws", "--name", "churn-team", "--source", str(source),
                   "--wheel", str(bad))
    assert result.exit_code == 2 and f"--wheel {bad}: not an mlops-dsl wheel file" in result.output


def test_the_package_data_globs_ship_every_scaffold_template() -> None:
    """A wheel install has what the editable one reads: pyproject's globs match every template file."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["mlops_dsl"]
    package = ROOT / "mlops_dsl"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    templates = {p for p in scaffold.TEMPLATES.rglob("*") if p.is_file() and not scaffold.SKIPPED_DIRS & set(p.parts)}
    assert templates and templates <= shipped, sorted(str(p) for p in templates - shipped)
    assert not [p for p in templates if p.name.startswith(".")], "setuptools' globs skip hidden files"
    used = {scaffold.TEMPLATES / t.format(cloud=c) for t in scaffold.LAYOUT.values() for c in ("aws", "azure")}
    assert used == templates, "a template nothing renders, or a layout entry without its template"


def test_from_a_wheel_install_without_source_it_asks_for_a_checkout(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # site-packages/mlops_dsl has no training/ or serving/ beside it (checked by hand on a built wheel)
    monkeypatch.setattr(scaffold, "installed_checkout", lambda: None)
    result = _init(str(tmp_path / "churn-team"), "--cloud", "aws")
    assert result.exit_code == 2
    assert "installed from a wheel" in result.output and "pass --source /path/to/an/mlops-dsl/checkout" in result.output
    assert list(tmp_path.iterdir()) == []
