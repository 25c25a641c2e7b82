"""Training sets from the store (training/training_set.py): labels joined with the features as of
their event time, never later ones; from offline-store files, and end to end against the emulator
(a raw CSV ingested, the offline store read back, the set built and split by entity)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from training.config import load as load_config
from training.data import DataError, load
from training.split import held_out
from training.training_set import GroupRef, LabelColumns, build, group_frame

ROOT = Path(__file__).resolve().parent.parent
REF = GroupRef("churn-dev-customer", "customer_id", "event_time")
COLUMNS = LabelColumns("customer_id", "labelled_at", "churned")


@pytest.fixture(scope="module")
def config():
    base = load_config(ROOT / "training" / "config.yaml")
    return replace(base, numeric=["tenure_months"], categorical=["contract"])


def _config_document() -> dict[str, Any]:
    import yaml

    return yaml.safe_load((ROOT / "training" / "config.yaml").read_text())


def _offline(root: Path, rows: list[dict[str, Any]], created: int = 1700000000, group: str = REF.name) -> Path:
    """An offline store as SageMaker lays it out: one Parquet file per row, under the group's folder."""
    folder = root / "111111111111" / "sagemaker" / "eu-west-1" / "offline-store" / f"{group}-{created}" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        frame = pd.DataFrame([{"write_time": pd.Timestamp(1800000000 + i, unit="s", tz="UTC"),
                               "is_deleted": False, **row}])
        frame.to_parquet(folder / f"part-{created}-{i}.parquet", index=False)
    return root


def test_each_label_gets_the_features_as_of_its_event_time_never_later(tmp_path: Path, config) -> None:
    store = _offline(tmp_path / "store", [
        {"customer_id": "C1", "event_time": 100.0, "tenure_months": 1, "contract": "Month-to-month"},
        {"customer_id": "C1", "event_time": 200.0, "tenure_months": 2, "contract": "One year"},
        {"customer_id": "C1", "event_time": 300.0, "tenure_months": 3, "contract": "Two year"},
        {"customer_id": "C2", "event_time": 500.0, "tenure_months": 9, "contract": "One year"},
    ])
    labels = pd.DataFrame({"customer_id": ["C1", "C1", "C2", "C1"], "labelled_at": ["250", "200", "400", "1000"],
                           "churned": ["0", "1", "1", "0"]})
    frame, left_out = build(labels, {REF: group_frame(store, REF)}, COLUMNS, config)
    got = sorted(zip(frame["tenure_months"], frame["churned"], strict=True))
    # 200 takes the record of 200 (at or before), 250 that of 200, 1000 that of 300; C2's label at
    # 400 precedes its only record (500): left out, never filled with a later value.
    assert got == [(2, "0"), (2, "1"), (3, "0")]
    assert left_out == {REF.name: 1}
    assert list(frame.columns) == list(config.columns)


def test_the_last_written_record_wins_a_tie_and_a_deletion_hides_the_record(tmp_path: Path, config) -> None:
    store = _offline(tmp_path / "store", [
        {"customer_id": "C1", "event_time": 100.0, "tenure_months": 1, "contract": "a"},
        {"customer_id": "C1", "event_time": 100.0, "tenure_months": 7, "contract": "b"},  # written later
        {"customer_id": "C2", "event_time": 100.0, "tenure_months": 5, "contract": "c"},
        {"customer_id": "C2", "event_time": 150.0, "is_deleted": True},
    ])
    labels = pd.DataFrame({"customer_id": ["C1", "C2"], "labelled_at": ["2000-01-01T00:00:00Z"] * 2,
                           "churned": [1, 0]})
    frame, left_out = build(labels, {REF: group_frame(store, REF)}, COLUMNS, config)
    assert frame["tenure_months"].tolist() == [7] and left_out == {REF.name: 1}


def test_only_the_newest_incarnation_of_a_replaced_group_is_read(tmp_path: Path, config) -> None:
    store = _offline(tmp_path / "store", [{"customer_id": "C1", "event_time": 1.0, "tenure_months": 1,
                                            "contract": "old"}], created=1000)
    _offline(store, [{"customer_id": "C1", "event_time": 1.0, "tenure_months": 2, "contract": "new"}], created=2000)
    _offline(store, [{"customer_id": "C1", "event_time": 1.0, "tenure_months": 3, "contract": "x"}],
             group=REF.name + "-other")  # a group whose name extends this one's
    assert group_frame(store, REF)["contract"].tolist() == ["new"]


def test_mistakes_are_data_errors_naming_what_is_missing(tmp_path: Path, config) -> None:
    store = _offline(tmp_path / "store", [{"customer_id": "C1", "event_time": 1.0, "tenure_months": 1}])
    with pytest.raises(DataError, match="features 'contract' are in none of the feature groups"):
        build(pd.DataFrame({"customer_id": ["C1"], "labelled_at": ["5"], "churned": [1]}),
              {REF: group_frame(store, REF)}, COLUMNS, config)
    with pytest.raises(DataError, match="no offline-store data of feature group 'nope'"):
        group_frame(store, GroupRef("nope", "customer_id", "event_time"))
    with pytest.raises(DataError, match="labels: column 'labelled_at': 1 values are not a time"):
        _offline(store, [{"customer_id": "C1", "event_time": 2.0, "tenure_months": 1, "contract": "a"}])
        build(pd.DataFrame({"customer_id": ["C1"], "labelled_at": ["soon"], "churned": [1]}),
              {REF: group_frame(store, REF)}, COLUMNS, config)


# End to end: the emulator's offline store, written by the ingestion, read back as files.

def test_a_raw_csv_ingested_in_the_emulator_becomes_a_training_set_split_by_entity(
        aws_emulator: dict[str, str], tmp_path: Path, config) -> None:
    import boto3

    from training import ingest_job
    from training.ingest import IngestionSpec

    region, url = aws_emulator["region"], aws_emulator["endpoint"]
    s3 = boto3.client("s3", region_name=region, endpoint_url=url)
    for bucket in ("set-test-raw", "set-test-processed"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    group = "set-test-customer"
    boto3.client("sagemaker", region_name=region, endpoint_url=url).create_feature_group(
        FeatureGroupName=group, RecordIdentifierFeatureName="customer_id", EventTimeFeatureName="event_time",
        FeatureDefinitions=[{"FeatureName": "customer_id", "FeatureType": "String"},
                            {"FeatureName": "event_time", "FeatureType": "Fractional"},
                            {"FeatureName": "tenure_months", "FeatureType": "Integral"},
                            {"FeatureName": "contract", "FeatureType": "String"}],
        OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://set-test-processed/feature-store"}},
        RoleArn="arn:aws:iam::123456789012:role/feature-store")
    ids = [f"C{i:03d}" for i in range(60)]
    raw = pd.DataFrame({"customer_id": ids * 2, "event_time": [100] * 60 + [300] * 60,
                        "tenure_months": list(range(60)) + [t + 1000 for t in range(60)],
                        "contract": ["One year"] * 120})
    s3.put_object(Bucket="set-test-raw", Key="customers/part-1.csv", Body=raw.to_csv(index=False).encode())
    spec = IngestionSpec.from_json(json.dumps({
        "feature_group": group, "record_id": "customer_id", "event_time": "event_time",
        "features": [{"name": n, "type": t} for n, t in (("customer_id", "string"), ("event_time", "fractional"),
                                                          ("tenure_months", "integral"), ("contract", "string"))],
        "raw_bucket": "set-test-raw", "prefix": "customers/", "quarantine_prefix": "quarantine/customer/",
        "ledger_bucket": "set-test-processed", "ledger_prefix": "ingestion-ledger/customer/"}), "spec")
    summary = ingest_job.run(spec, ingest_job.clients(url, region), echo=lambda _: None)
    assert [(r.written, r.quarantined, r.error) for r in summary.results] == [(120, 0, None)]

    labels = pd.DataFrame({"customer_id": ids * 2, "labelled_at": [200] * 60 + [400] * 60,
                           "churned": [i % 2 for i in range(120)]})
    s3.put_object(Bucket="set-test-raw", Key="labels/churn/part-1.csv", Body=labels.to_csv(index=False).encode())
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({**_config_document(), "data": {
        "target": "churned", "id_column": "customer_id", "numeric": ["tenure_months"], "categorical": ["contract"]}}))
    from click.testing import CliRunner

    from training.cli import main

    # As a runner on this machine builds it: straight from the emulator's S3, as the pipeline's
    # Processing inputs mount it (labels prefix; the offline zone's feature-store/ prefix).
    result = CliRunner().invoke(main, [
        "training-set", "--labels", "s3://set-test-raw/labels/churn/", "--offline-store",
        "s3://set-test-processed/feature-store/", "--group", f"{group}:customer_id:event_time",
        "--label-id", "customer_id", "--label-time", "labelled_at", "--label", "churned",
        "--output", str(tmp_path / "set"), "--endpoint-url", url, "--region", region, "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("training set: 120 rows")
    missing = CliRunner().invoke(main, [
        "training-set", "--labels", "s3://set-test-raw/labels/none/", "--offline-store", "s3://set-test-processed/",
        "--group", f"{group}:customer_id:event_time", "--label-id", "a", "--label-time", "b", "--label", "c",
        "--output", str(tmp_path / "none"), "--endpoint-url", url, "--region", region, "--config", str(config_file)])
    assert missing.exit_code == 2 and "s3://set-test-raw/labels/none/: no object under this prefix" in missing.output
    frame = load(tmp_path / "set", config)  # as the Split step and `make train` read it
    # Each id: one label at 200 (the values of time 100: those of 300 came later) and one at 400.
    early = frame[frame["tenure_months"] < 1000]
    assert sorted(early[config.id_column]) == ids and sorted(frame[~frame.index.isin(early.index)][
        config.id_column]) == ids
    test = held_out(frame, config)
    assert 0 < test.sum() < len(frame) and not set(frame[test][config.id_column]) & set(
        frame[~test][config.id_column])  # both labels of an id on one side


# The blueprint's labels and the pipeline step they add.

def _training(**labels: Any):
    from mlops_dsl import (
        DataInfrastructure,
        Dataset,
        Feature,
        FeatureGroup,
        FeatureStore,
        Labels,
        TrainingInfrastructure,
    )

    data = DataInfrastructure()
    store = FeatureStore(data, groups=[FeatureGroup("customer", record_id="id", event_time="ts", features=[
        Feature("id", "string"), Feature("ts", "fractional"), Feature("tenure", "integral"),
        Feature("plan", "string")])])
    dataset = labels.pop("dataset", Dataset(target="churned", id_column="id", numeric=["tenure"],
                                            categorical=["plan"]))
    features = labels.pop("features", store)
    return data, store, TrainingInfrastructure(data, features, dataset=dataset, labels=Labels(
        **{"prefix": "labels/", "record_id": "id", "event_time": "at", "label": "churned", **labels}))


def test_labels_need_the_store_and_a_dataset_it_holds() -> None:
    from mlops_dsl import Dataset, ParameterError

    with pytest.raises(ParameterError, match="labels are joined with the feature store's groups; set features="):
        _training(features=None)
    with pytest.raises(ParameterError, match="dataset features 'age' are in none of the feature groups"):
        _training(dataset=Dataset(target="churned", id_column="id", numeric=["tenure", "age"]))
    with pytest.raises(ParameterError, match=r"labels.zone 'landing' is not one of the zones"):
        _training(zone="landing")
    with pytest.raises(ParameterError, match="'id' is more than one of them"):
        _training(event_time="id")
    with pytest.raises(ParameterError, match=r"'labels.prefix' parameter of TrainingInfrastructure 'training'"):
        _training(prefix="labels")


def test_the_pipeline_builds_the_training_set_first_and_splits_it() -> None:
    from mlops_dsl import Platform

    from .test_aws_templates import _definition, _stacks, _text

    data, store, training = _training()
    definition = _definition(_stacks(Platform("churn", cloud="aws").add(data, store, training), ns="dev")[
        "training"].stack)
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert [s["Name"] for s in definition["Steps"]][:2] == ["TrainingSet", "Split"]
    arguments = steps["TrainingSet"]["Arguments"]
    command = " ".join(_text(a) for a in arguments["AppSpecification"]["ContainerEntrypoint"])
    assert 'python -m training training-set --labels /opt/ml/processing/labels' in command.replace('"', "")
    assert 'outputs.feature_group_names["customer"]}:id:ts' in command
    assert "--label-id id --label-time at --label churned" in command.replace('"', "")
    inputs = {i["InputName"]: _text(i["S3Input"]["S3Uri"]) for i in arguments["ProcessingInputs"]}
    assert inputs["offline"] == '"s3://${data.terraform_remote_state.data.outputs.bucket_names["processed"]}' \
                                '/feature-store/"'
    assert arguments["NetworkConfig"]["EnableNetworkIsolation"] is True
    split_data = next(i for i in steps["Split"]["Arguments"]["ProcessingInputs"] if i["InputName"] == "data")
    assert split_data["S3Input"]["S3Uri"] == {
        "Get": "Steps.TrainingSet.ProcessingOutputConfig.Outputs['dataset'].S3Output.S3Uri"}
    default = next(p for p in definition["Parameters"] if p["Name"] == "InputDataUri")["DefaultValue"]
    assert _text(default) == '"s3://${data.terraform_remote_state.data.outputs.bucket_names["raw"]}/labels/"'


def test_a_feature_added_to_the_group_later_is_missing_in_the_older_files(tmp_path: Path) -> None:
    """The files are read together on threads; their schemas are unified as pandas concatenates them."""
    store = _offline(tmp_path / "store", [
        {"customer_id": "C1", "event_time": 100.0, "tenure_months": 1},
        {"customer_id": "C2", "event_time": 100.0, "tenure_months": 2.5, "contract": "One year"},
    ])
    frame = group_frame(store, REF).sort_values("customer_id")
    assert frame["tenure_months"].tolist() == [1.0, 2.5]
    assert frame["contract"].isna().tolist() == [True, False]


def test_unreadable_or_disagreeing_files_are_a_data_error_naming_them(tmp_path: Path) -> None:
    store = _offline(tmp_path / "store", [{"customer_id": "C1", "event_time": 100.0, "contract": "One year"},
                                          {"customer_id": "C2", "event_time": 100.0, "contract": 2}])
    with pytest.raises(DataError, match="disagree on a column's type"):
        group_frame(store, REF)
    (bad,) = sorted(store.rglob("*-1.parquet"))
    bad.write_text("not parquet")
    with pytest.raises(DataError, match=f"{bad}: not a readable Parquet file"):
        group_frame(store, REF)


def test_a_prefix_is_copied_with_its_keys_as_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On threads, each object as listed; the folder marker left out."""
    moto = pytest.importorskip("moto", reason="moto (pip install '.[local]') is not installed")
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    from training.s3_files import download_prefix

    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="offline", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for i in range(40):
            s3.put_object(Bucket="offline", Key=f"store/g-1/data/part-{i}.parquet", Body=f"{i}".encode())
        s3.put_object(Bucket="offline", Key="store/folder/", Body=b"")
        out = download_prefix("s3://offline/store/", tmp_path / "copy", None, "eu-west-1")
        assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(f"part-{i}.parquet" for i in range(40))
        assert (out / "g-1" / "data" / "part-7.parquet").read_text() == "7"
        with pytest.raises(DataError, match="s3://offline/nothing/: no object under this prefix"):
            download_prefix("s3://offline/nothing/", tmp_path / "none", None, "eu-west-1")
        with pytest.raises(DataError, match="s3://missing/x/: cannot be read"):
            download_prefix("s3://missing/x/", tmp_path / "none", None, "eu-west-1")
