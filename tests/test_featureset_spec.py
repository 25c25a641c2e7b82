"""Azure feature set specifications: rendered from the groups (mlops_dsl/azure/featureset_spec.py),
written beside the features stack, checked against the azureml-featurestore schema (vendored), and
uploaded by `mlops featuresets` (mlops_dsl/azureml/featuresets.py) against Azurite."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from mlops_dsl.cli import main
from tests.test_drift_job import azurite  # noqa: F401  (the module's Azurite fixture, reused)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests/reference/featureset_spec_schema.json").read_text())
SPEC = ROOT / "terraform/dev/financial-behavior/features/featuresets/client/FeatureSetSpec.yaml"


def _check(kind: str, body: dict[str, Any], where: str) -> list[str]:
    rule = SCHEMA[kind]
    problems = [f"{where}.{k}: not a field of the SDK's schema" for k in body if k not in rule["fields"]]
    return problems + [f"{where}.{k}: required" for k in rule["required"] if k not in body]


def test_the_committed_specification_is_one_the_sdk_loads_and_matches_what_ingestion_writes() -> None:
    from mlops_dsl.azure.feature_ingestion import spec_document
    from mlops_dsl.blueprints import load

    spec = yaml.safe_load(SPEC.read_text())
    problems = _check("spec", spec, "spec") + _check("source", spec["source"], "source")
    problems += _check("timestamp_column", spec["source"]["timestamp_column"], "source.timestamp_column")
    problems += [p for c in spec["index_columns"] for p in _check("column", c, "index_columns")]
    problems += [p for f in spec["features"] for p in _check("feature", f, "features")]
    assert not problems
    assert spec["source"]["type"] in SCHEMA["source_types"] and spec["schema_version"] == 1
    assert any(re.match(p, spec["source"]["path"]) for p in SCHEMA["cloud_path_patterns"])  # "must be cloud path"
    assert {c["type"] for c in spec["features"] + spec["index_columns"]} <= set(SCHEMA["column_types"])
    # The source is where the ingestion writes, in the lake the data stack names, and its columns are
    # the ones the ingestion writes (the event time as a timestamp, the record id as the index).
    [platform] = [p for p in load(None) if p.name == "financial-behavior"]
    store = next(t for t in platform.templates if type(t).__name__ == "FeatureStore")
    written = json.loads(json.dumps(spec_document(store, store.groups[0])))
    data_tf = (ROOT / "terraform/dev/financial-behavior/data/main.tf").read_text()
    assert 'name                              = "stfinancialbehaviordev"' in data_tf
    assert spec["source"]["path"] == (f"abfss://{written['output_bucket']}@stfinancialbehaviordev.dfs.core.windows"
                                      f".net/{written['output_prefix']}")
    assert spec["source"]["timestamp_column"] == {"name": written["event_time"]}
    assert spec["index_columns"] == [{"name": written["record_id"], "type": "string"}]
    names = [f["name"] for f in written["features"]]
    assert [f["name"] for f in spec["features"]] == [n for n in names if n not in (written["record_id"],
                                                                                    written["event_time"])]
    types = {f["name"]: f["type"] for f in spec["features"]}
    assert (types["age"], types["balance"], types["job"]) == ("long", "double", "string")
    # The feature set version reads the folder the upload writes to.
    main_tf = (ROOT / "terraform/dev/financial-behavior/features/main.tf").read_text()
    assert 'path = "azureml://datastores/processed/paths/featuresets/client/spec"' in main_tf


def _project(tmp_path: Path) -> Path:
    for name in ("blueprints", "training", "serving"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "namespaces.yaml", tmp_path / "namespaces.yaml")
    shutil.copytree(ROOT / "terraform/dev/financial-behavior", tmp_path / "terraform/dev/financial-behavior")
    return tmp_path


def test_upload_writes_each_specification_once_and_refuses_to_replace_a_different_one(
        tmp_path: Path, azurite: str, monkeypatch) -> None:  # noqa: F811
    from azure.storage.blob import BlobServiceClient

    project = _project(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    service = BlobServiceClient.from_connection_string(azurite)
    container = service.get_container_client("processed")
    if container.exists():
        container.delete_container()
    service.create_container("processed")
    runner = CliRunner()

    first = runner.invoke(main, ["featuresets", "-n", "dev"])
    assert first.exit_code == 0, first.output
    assert "1 uploaded, 0 unchanged, 0 not" in first.output
    blob = container.get_blob_client("featuresets/client/spec/FeatureSetSpec.yaml")
    assert blob.download_blob().readall() == SPEC.read_bytes()

    again = runner.invoke(main, ["featuresets", "-n", "dev"])
    assert again.exit_code == 0 and "/processed/featuresets/client/spec/FeatureSetSpec.yaml: unchanged" in \
        again.output and "0 uploaded, 1 unchanged, 0 not" in again.output

    spec = project / "terraform/dev/financial-behavior/features/featuresets/client/FeatureSetSpec.yaml"
    spec.write_text(spec.read_text().replace("name: age", "name: age_years"))
    changed = runner.invoke(main, ["featuresets", "-n", "dev"])
    assert changed.exit_code == 1
    assert "holds a different specification, which the feature set version created from it reads; not " \
           "replaced" in changed.output
    assert blob.download_blob().readall() == SPEC.read_bytes()  # what the version reads is untouched


def test_a_specification_missing_from_the_tree_is_a_user_error(tmp_path: Path, monkeypatch) -> None:
    project = _project(tmp_path)
    monkeypatch.chdir(project)
    (project / "terraform/dev/financial-behavior/features/featuresets/client/FeatureSetSpec.yaml").unlink()
    result = CliRunner().invoke(main, ["featuresets", "-n", "dev", "--dry-run"])
    assert result.exit_code == 2
    assert "featuresets/client/FeatureSetSpec.yaml: no such file; run `mlops synth` first" in result.output
    listed = CliRunner().invoke(main, ["featuresets", "-n", "local", "--dry-run"])  # local has AWS platforms only
    assert listed.exit_code == 0 and "no Azure feature store in namespace 'local'" in listed.output
