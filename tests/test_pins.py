"""Model pins (models/<namespace>.yaml): strict parsing with errors naming file, platform, variant and
field; a promotion rewrites exactly one line and keeps comments and layout."""

from __future__ import annotations

import pytest

from mlops_dsl.errors import NamespaceError
from mlops_dsl.pins import Pin, parse, updated, write

SHA = "b" * 64
PIN = Pin(version=7, group="churn-dev", image="0123456789ab", sha256=SHA,
          artifact="s3://churn-dev-models-111111111111/executions/e7/model.tar.gz")

def _line(variant: str, version: int, group: str = "churn-dev") -> str:
    return Pin(version, group, "0123456789ab", SHA, f"s3://{group}-models-1/e{version}/model.tar.gz").line(variant)


FILE = "\n".join([
    "# Pins of prod: reviewed like code.",
    "churn:",
    _line("champion", 3) + "  # since June",
    "  # the challenger gets a tenth of the traffic",
    _line("challenger", 4),
    "",
    "other:",
    _line("blue", 1, "other-dev"),
]) + "\n"


def test_a_promotion_changes_one_line_and_keeps_the_rest() -> None:
    new = updated(FILE, "prod", "churn", "challenger", PIN)
    old_lines, new_lines = FILE.splitlines(), new.splitlines()
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1] == PIN.line("challenger")
    assert parse(new, "prod.yaml")["churn"]["challenger"] == PIN
    # a trailing comment on the line stays
    assert updated(FILE, "prod", "churn", "champion", PIN).splitlines()[2].endswith("}  # since June")


def test_a_new_variant_or_platform_is_added_where_it_belongs() -> None:
    new = updated(FILE, "prod", "churn", "shadow", PIN)
    assert new.splitlines()[5] == PIN.line("shadow")  # after the platform's last pin, before the blank line
    assert parse(new, "x")["other"]["blue"].version == 1
    fresh = updated("", "prod", "churn", "champion", PIN)
    assert fresh.startswith("# The model version each variant serves in the prod namespace")
    assert parse(fresh, "x") == {"churn": {"champion": PIN}}
    added = updated(FILE, "prod", "third", "a", PIN)
    assert parse(added, "x")["third"] == {"a": PIN} and added.startswith(FILE)


def test_write_is_atomic_and_checked(tmp_path) -> None:
    path = tmp_path / "models" / "prod.yaml"
    write(path, "prod", "churn", "champion", PIN)
    assert parse(path.read_text(), str(path)) == {"churn": {"champion": PIN}}
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize(("text", "expected"), [
    ("churn:\n  champion: 7\n", "prod.yaml: churn.champion: expected {version: ..., group: ..."),
    ("churn:\n  champion: {version: 0, group: g, image: 0123456789ab, sha256: " + SHA + ", artifact: s3://b-b-b/m.tar.gz}\n",
     "prod.yaml: churn.champion.version: expected a package version (an integer >= 1); got 0"),
    ("churn:\n  champion: {version: 2, group: g, image: latest, sha256: " + SHA + ", artifact: s3://b-b-b/m.tar.gz}\n",
     "prod.yaml: churn.champion.image: expected a 12-character image tag"),
    ("churn:\n  champion: {version: 2, group: g, image: 0123456789ab, sha256: abc, artifact: s3://b-b-b/m.tar.gz}\n",
     "prod.yaml: churn.champion.sha256: expected the 64 hex digits"),
    ("churn:\n  champion: {version: 2, group: g, image: 0123456789ab, sha256: " + SHA + "}\n",
     "prod.yaml: churn.champion.artifact: required"),
    ("churn:\n  champion: {version: 2, group: g, image: 0123456789ab, sha256: " + SHA
     + ", artifact: s3://b-b-b/m.tar.gz, verison: 3}\n", "prod.yaml: churn.champion.verison: unknown field"),
    ("churn: [1]\n", "prod.yaml: churn: expected a mapping of variant -> pin"),
    ("churn:\n  champion: {version: 2\n", "prod.yaml:3:1: not valid YAML"),
])
def test_each_pin_error_names_file_platform_variant_and_field(text: str, expected: str) -> None:
    with pytest.raises(NamespaceError) as err:
        parse(text, "prod.yaml")
    assert any(expected in p for p in err.value.problems), err.value.problems
