"""Content-hash image tags, the one-line diff they promise, and `mlops images`."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from mlops_dsl.images import content_tag, context_files

from .conftest import ROOT, Project


def _context(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_dockerignore_rules_follow_docker(tmp_path: Path) -> None:
    ctx = _context(tmp_path, {
        ".dockerignore": "# comment\n**/__pycache__\n*.md\n!README.md\ndata/\nDockerfile\n/secret.txt\n",
        "Dockerfile": "FROM x\n", "app.py": "", "README.md": "", "NOTES.md": "", "docs/guide.md": "",
        "pkg/__pycache__/m.pyc": "", "__pycache__/n.pyc": "", "data/big.csv": "", "secret.txt": "",
    })
    assert context_files(ctx) == [".dockerignore", "Dockerfile", "README.md", "app.py", "docs/guide.md"]


def test_tag_is_stable_and_follows_the_content(tmp_path: Path) -> None:
    ctx = _context(tmp_path, {".dockerignore": "*.log\n", "Dockerfile": "FROM x\n", "app.py": "print(1)\n"})
    first = content_tag(ctx)
    assert len(first) == 12 and first == content_tag(ctx)
    (ctx / "debug.log").write_text("ignored")
    assert content_tag(ctx) == first
    (ctx / "app.py").write_text("print(2)\n")
    changed = content_tag(ctx)
    assert changed != first
    (ctx / "app.py").chmod((ctx / "app.py").stat().st_mode | stat.S_IXUSR)
    assert content_tag(ctx) != changed  # the executable bit is part of what Docker copies
    (ctx / "app.py").rename(ctx / "main.py")
    assert content_tag(ctx) not in (first, changed)


def _copy_project(dst: Path) -> Project:
    for name in ("blueprints", "training", "serving"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "namespaces.yaml", dst / "namespaces.yaml")
    return Project(dst)


def test_a_code_change_is_a_one_line_diff_per_stack_using_the_image(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    assert project.mlops("synth", "-n", "dev").exit_code == 0
    before = project.tree()
    (tmp_path / "serving" / "__init__.py").write_text('"""Changed serving code."""\n')
    assert project.mlops("synth", "-n", "dev").exit_code == 0
    after = project.tree()
    changed = {}
    for rel in sorted(set(before) | set(after)):
        old, new = before.get(rel, b"").decode(), after.get(rel, b"").decode()
        lines = [d for d in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
                 if d[:1] in "+-" and not d.startswith(("+++", "---"))]
        if lines:
            changed[rel] = lines
    # On both clouds the served models run the serving image a pin names, so a serving change reaches
    # them with the next promotion (README: the model lifecycle); the AWS training stack registers
    # with the new tag (the Azure one builds no serving image into anything it declares).
    stacks = ["dev/customer-churn/training/main.tf"]
    manifests = ["dev/customer-churn/stacks.json"]
    assert sorted(changed) == sorted(stacks + manifests)
    for rel in stacks:
        minus, plus = changed[rel]
        assert minus.startswith('-  serving_image_tag') and plus.startswith('+  serving_image_tag')
    # the manifest's hash of exactly that stack moved
    assert len(changed["dev/customer-churn/stacks.json"]) == 2

def test_a_missing_build_context_is_a_clear_error(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    shutil.rmtree(tmp_path / "serving")
    result = project.mlops("synth")
    assert result.exit_code == 2
    assert "Error: platform 'customer-churn': Image('serving'): the build context serving/ does not exist" in \
        result.output


def test_images_without_a_docker_engine_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _copy_project(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = project.mlops("images", "-n", "prod", "--blueprint", "blueprints/customer_churn.py")
    assert result.exit_code == 1
    assert "Nothing was built or pushed: there is no docker command on PATH" in result.output
    tag = content_tag(tmp_path / "training")
    assert (f"  docker build --tag 333333333333.dkr.ecr.eu-west-1.amazonaws.com/customer-churn-prod/training:{tag} "
            f"training") in result.output
    assert "Error: images were not built or pushed" in result.output


def test_images_builds_and_pushes_with_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _copy_project(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("docker", "aws"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n[ "$1" = get-login-password ] && echo token\n'
                          "exit 0\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    result = project.mlops("images", "-n", "dev", "--blueprint", "blueprints/customer_churn.py")
    assert result.exit_code == 0, result.output
    calls = log.read_text().splitlines()
    serving, training = content_tag(tmp_path / "serving"), content_tag(tmp_path / "training")
    repo = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/customer-churn-dev"
    assert calls[0] == "docker info --format {{.ServerVersion}}"
    assert set(calls[1:3]) == {  # the two sides of the login pipe run at the same time
        "aws ecr get-login-password --region eu-west-1",
        "docker login --username AWS --password-stdin 111111111111.dkr.ecr.eu-west-1.amazonaws.com",
    }
    assert calls[3:] == [
        f"docker build --tag {repo}/serving:{serving} serving",
        f"docker push {repo}/serving:{serving}",
        f"docker build --tag {repo}/training:{training} training",
        f"docker push {repo}/training:{training}",
    ]
    # the tags pushed are the ones the committed Terraform references (registration uses the serving tag)
    committed = (ROOT / "terraform/dev/customer-churn/training/main.tf").read_text()
    assert re.search(rf'serving_image_tag += "{serving}"', committed), committed[:300]
    assert re.search(rf'training_image_tag += "{training}"', committed), committed[:300]


def test_a_failed_push_stops_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _copy_project(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text('#!/bin/sh\n[ "$1" = push ] && exit 3\nexit 0\n')
    (bin_dir / "aws").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("docker", "aws"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    result = project.mlops("images", "-n", "dev", "--blueprint", "blueprints/customer_churn.py")
    assert result.exit_code == 1
    assert "failed with exit code 3; nothing after it was run" in result.output
    assert "[4/5]" not in result.output and "Traceback" not in result.output


def test_azure_platforms_push_to_their_registry(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    result = project.mlops("images", "-n", "staging", "--dry-run", "--blueprint", "blueprints/financial_behavior.py")
    assert result.exit_code == 0, result.output
    tag = content_tag(tmp_path / "serving")
    lines = result.output.splitlines()
    assert lines[0] == ("az acr login --name crfinancialbehaviorstaging "
                        "--subscription 22222222-2222-2222-2222-222222222222")
    assert f"docker push crfinancialbehaviorstaging.azurecr.io/financial-behavior-staging/serving:{tag}" in lines
    # the registry and repository the Terraform declares
    main = (ROOT / "terraform/staging/financial-behavior/data/main.tf").read_text()
    assert 'name                          = "crfinancialbehaviorstaging"' in main


# --- one context, two stages: the Azure ML training image (issue 16, point 4) ---------------------

def _pins(path: Path) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_azureml_stage_pins_satisfy_the_plugin_it_installs() -> None:
    """The stage installs requirements-azureml.txt over requirements.txt: every requirement that
    azureml-mlflow declares (its wheel's METADATA, vendored) must hold for the resulting versions,
    or Azure ML jobs would run with a plugin whose MLflow it does not support."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    base, azure = _pins(ROOT / "training/requirements.txt"), _pins(ROOT / "training/requirements-azureml.txt")
    installed = {**base, **azure}
    metadata = (ROOT / "tests/reference/azureml_mlflow-1.62.0.post6.METADATA").read_text()
    assert azure["azureml-mlflow"] == "1.62.0.post6"
    requirements = [Requirement(line.split(":", 1)[1].strip()) for line in metadata.splitlines()
                    if line.startswith("Requires-Dist:")]
    checked = 0
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an extra ("deployments") the image does not install
        name = canonicalize_name(req.name)
        assert name in installed, f"azureml-mlflow needs {req}, which neither requirements file pins"
        assert req.specifier.contains(installed[name], prereleases=True), \
            f"azureml-mlflow needs {req}; the Azure ML image pins {name}=={installed[name]}"
        checked += 1
    assert checked >= 10
    # the one downgrade is MLflow's; the model's own libraries stay those of the serving image
    assert set(base) & set(azure) == {"mlflow-skinny"}


def test_the_azure_training_image_is_the_azureml_stage_with_its_own_tag_and_repository(tmp_path: Path) -> None:
    from mlops_dsl.images import dockerfile_stages

    assert dockerfile_stages(ROOT / "training") == ["sagemaker", "azureml"]
    project = _copy_project(tmp_path)
    result = project.mlops("images", "-n", "staging", "--dry-run", "--blueprint", "blueprints/financial_behavior.py")
    assert result.exit_code == 0, result.output
    tag = content_tag(tmp_path / "training", "azureml")
    assert tag != content_tag(tmp_path / "training")  # two stages never share a tag
    uri = f"crfinancialbehaviorstaging.azurecr.io/financial-behavior-staging/training-azureml:{tag}"
    assert f"docker build --target azureml --tag {uri} training" in result.output.splitlines()
    # the environment version the scheduled job runs is that image
    main = (ROOT / "terraform/staging/financial-behavior/training/main.tf").read_text()
    assert f'training_azureml_image_tag = "{tag}"' in main
    assert "/training-azureml:${local.training_azureml_image_tag}" in main


def test_an_azure_image_must_build_the_azureml_stage_and_a_stage_must_exist(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    blueprint = tmp_path / "blueprints/financial_behavior.py"
    text = blueprint.read_text()
    blueprint.write_text(text.replace('Image("training", target="azureml")', 'Image("training")'))
    result = project.mlops("synth")
    assert result.exit_code == 2
    assert ("Image('training') builds the default stage, but training/Dockerfile has a stage 'azureml' for "
            "Azure ML; write Image('training', target='azureml')") in result.output
    blueprint.write_text(text.replace('Image("training", target="azureml")', 'Image("training", target="azure")'))
    result = project.mlops("synth")
    assert result.exit_code == 2
    assert ("Image('training', target='azure'): training/Dockerfile has no stage named 'azure' "
            "(stages: sagemaker, azureml)") in result.output
    assert "Traceback" not in result.output
