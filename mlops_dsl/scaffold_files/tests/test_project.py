"""This project's own checks: the blueprint loads, terraform/ matches it, the images are built from here.

Run from the project's root (`make test`), with mlops-dsl installed (requirements.txt).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlops_dsl import blueprints
from mlops_dsl.cli import main
from mlops_dsl.images import content_tag

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = "{{name}}"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """mlops finds blueprints/ and namespaces.yaml in the working directory, as `make` runs it."""
    monkeypatch.chdir(ROOT)


def test_the_blueprint_declares_the_platform_with_its_four_templates_in_order() -> None:
    [platform] = blueprints.load()
    assert platform.name == PLATFORM
    assert platform.cloud == "{{cloud}}"
    assert [t.kind for t in platform.templates] == [
        "DataInfrastructure", "FeatureStore", "TrainingInfrastructure", "ModelServing"]
    edges = platform.edges()
    assert edges["serving"] == ["training"]


def test_terraform_matches_the_blueprint_and_namespaces() -> None:
    result = CliRunner().invoke(main, ["synth", "--all", "--check"])
    assert result.exit_code == 0, result.output
    assert "is up to date" in result.output


def test_the_training_stack_runs_the_image_of_training_here() -> None:
    [platform] = blueprints.load()
    image = platform["training"].image
    tag = content_tag(ROOT / image.context, image.target)
    stack = (ROOT / "terraform" / "dev" / PLATFORM / "training").glob("*.tf")
    assert any(tag in path.read_text(encoding="utf-8") for path in stack), (
        f"no file of terraform/dev/{PLATFORM}/training names the tag {tag} of {image.context}/; run make synth")


def test_both_images_build_from_this_project_tagged_by_their_content() -> None:
    [platform] = blueprints.load()
    result = CliRunner().invoke(main, ["images", "-n", "dev", "--dry-run"])
    assert result.exit_code == 0, result.output
    images = list(platform.images().values())
    assert sorted(i.context for i in images) == ["serving", "training"]
    for image in images:
        tag = content_tag(ROOT / image.context, image.target)
        assert f"/{PLATFORM}-dev/{image.repository}:{tag} {image.context}\n" in result.output


def test_the_training_code_registers_the_model_under_the_platform_name() -> None:
    config = yaml.safe_load((ROOT / "training" / "config.yaml").read_text(encoding="utf-8"))
    assert config["platform"] == PLATFORM
