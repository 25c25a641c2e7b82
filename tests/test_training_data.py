"""Training data as a user hands it over: files and directories of shards, strict numbers,
categories with one text per value, the id-hash split and the split command."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

pytest.importorskip("sklearn", reason="the ml extra (pip install -e '.[ml]') is not installed")

from training.cli import main
from training.config import load
from training.data import DataError, category_text, generate_churn
from training.data import load as load_data
from training.model import candidates
from training.split import held_out

CONFIG = load()


@pytest.fixture
def frame() -> pd.DataFrame:
    return generate_churn(300, seed=5)


def _errors(path: Path) -> list[str]:
    with pytest.raises(DataError) as caught:
        load_data(path, CONFIG)
    return caught.value.problems


@pytest.mark.parametrize(("cell", "shown"), [
    ("inf", "'inf'"), ("-inf", "'-inf'"), ("Infinity", "'Infinity'"),
    ("1e400", "'1e400' (out of range for a 64-bit float)"),
    ("-2e308", "'-2e308' (out of range for a 64-bit float)"),
])
def test_non_finite_numbers_are_errors_naming_column_and_row(tmp_path: Path, frame: pd.DataFrame, cell: str,
                                                              shown: str) -> None:
    text = frame.astype(str).where(frame.notna(), "")
    text.loc[11, "total_charges"] = cell
    text.to_csv(tmp_path / "data.csv", index=False)
    assert _errors(tmp_path / "data.csv") == [
        f"{tmp_path / 'data.csv'}: column 'total_charges', row 12: expected a finite number; got {shown}"]


def test_non_finite_numbers_in_parquet_are_errors(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.loc[3, "monthly_charges"] = np.inf
    frame.to_parquet(tmp_path / "data.parquet")
    assert _errors(tmp_path / "data.parquet") == [
        f"{tmp_path / 'data.parquet'}: column 'monthly_charges', row 4: expected a finite number; got 'inf'"]


def test_empty_cells_and_nan_are_missing_values(tmp_path: Path, frame: pd.DataFrame) -> None:
    text = frame.astype(str).where(frame.notna(), "")
    text.loc[0, "tenure_months"], text.loc[1, "tenure_months"], text.loc[2, "tenure_months"] = "", "NaN", "nan"
    text.to_csv(tmp_path / "data.csv", index=False)
    loaded = load_data(tmp_path / "data.csv", CONFIG)
    assert loaded["tenure_months"].dtype == "float64"
    assert loaded["tenure_months"].isna().tolist()[:4] == [True, True, True, False]
    text.loc[3, "tenure_months"] = "NA"  # not a spelling of missing: a typo is not silently imputed
    text.to_csv(tmp_path / "data.csv", index=False)
    assert _errors(tmp_path / "data.csv") == [
        f"{tmp_path / 'data.csv'}: column 'tenure_months', row 4: expected a number; got 'NA'"]


def test_a_directory_is_every_shard_in_it(tmp_path: Path, frame: pd.DataFrame) -> None:
    """What Spark, Glue, Athena and processing jobs write: shards without extension, gzip, Parquet,
    partitioned Parquet directories, and marker files."""
    data = tmp_path / "channel"
    (data / "contract=x").mkdir(parents=True)
    parts = np.array_split(np.arange(len(frame)), 4)
    frame.iloc[parts[0]].to_csv(data / "part-00000", index=False)
    with gzip.open(data / "part-00001.csv.gz", "wt") as handle:
        frame.iloc[parts[1]].to_csv(handle, index=False)
    frame.iloc[parts[2]].to_parquet(data / "part-00002.parquet", index=False)
    # A partitioned directory: the partition key is a configured column, so it comes back from the path.
    partition = frame.iloc[parts[3]].assign(contract="One year")
    partition.drop(columns=["contract"]).to_parquet(data / "contract=x" / "part-0.parquet", index=False)
    (data / "_SUCCESS").write_text("")
    (data / ".part-00000.crc").write_bytes(b"\x00\x01")
    loaded = load_data(data, CONFIG)
    assert len(loaded) == len(frame)
    assert sorted(loaded["customer_id"]) == sorted(frame["customer_id"])
    partitioned = loaded["customer_id"].isin(frame["customer_id"].iloc[parts[3]])
    assert (loaded["contract"][partitioned] == "x").all() and (loaded["contract"][~partitioned] != "x").all()
    assert loaded["tenure_months"].dtype == "float64"


def test_shards_with_different_columns_are_refused(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.iloc[:100].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[100:].drop(columns=["contract"]).assign(region="north").to_csv(tmp_path / "b.csv", index=False)
    assert _errors(tmp_path) == [f"{tmp_path / 'b.csv'}: its columns differ from those of {tmp_path / 'a.csv'}: "
                                 "extra 'region'; missing 'contract'"]


def test_a_bad_cell_is_named_by_its_shard_and_row_in_it(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.iloc[:100].to_csv(tmp_path / "part-0.csv", index=False)
    second = frame.iloc[100:].astype(str)
    second.iloc[4, second.columns.get_loc("support_calls")] = "many"
    second.to_csv(tmp_path / "part-1.csv", index=False)
    assert _errors(tmp_path) == [f"{tmp_path / 'part-1.csv'}: column 'support_calls', row 5: expected a number; "
                                 "got 'many'"]


def test_categories_have_one_text_whatever_parquet_stored(tmp_path: Path, frame: pd.DataFrame) -> None:
    stored = frame.assign(paperless_billing=frame["paperless_billing"].eq("Yes").astype(object),
                          internet_service=np.where(frame.index % 2 == 0, 2.0, 1.5),
                          contract=np.where(frame.index % 2 == 0, 3, 12))
    stored.loc[0, "paperless_billing"] = None
    stored.to_parquet(tmp_path / "data.parquet")
    loaded = load_data(tmp_path / "data.parquet", CONFIG)
    assert set(loaded["paperless_billing"].dropna()) == {"True", "False"}
    assert pd.isna(loaded.loc[0, "paperless_billing"])
    assert set(loaded["internet_service"]) == {"2.0", "1.5"} and set(loaded["contract"]) == {"3", "12"}
    texts = [category_text(v) for v in (True, np.bool_(False), 7, np.int64(7), 2.0, np.float32(1.5), "Yes")]
    assert texts == ["True", "False", "7", "7", "2.0", "1.5", "Yes"]
    assert all(pd.isna(category_text(v)) for v in (None, np.nan, pd.NA))


def test_integer_ranges_on_a_log_scale_draw_integers() -> None:
    from dataclasses import replace

    config = replace(CONFIG, n_iter=20, spaces={"hist_gradient_boosting": {
        "max_leaf_nodes": {"low": 4, "high": 200, "log": True}, "learning_rate": {"low": 0.01, "high": 0.3,
                                                                                  "log": True}}})
    drawn = candidates(config)
    leaves = [c["max_leaf_nodes"] for c in drawn]
    assert all(type(v) is int and 4 <= v <= 200 for v in leaves)
    assert sum(v < 30 for v in leaves) > 5  # log scale: small values are as likely as large decades
    assert all(type(c["learning_rate"]) is float for c in drawn)
    assert candidates(config) == drawn  # the same candidates in the same order for a seed


def test_the_held_out_split_is_a_stable_hash_of_the_id(frame: pd.DataFrame) -> None:
    big = generate_churn(20000, seed=1)
    share = held_out(big, CONFIG).mean()
    assert abs(share - CONFIG.test_size) < 0.01
    shuffled = big.sample(frac=1, random_state=0)
    assert (pd.Series(held_out(shuffled, CONFIG), index=shuffled.index).sort_index()
            == pd.Series(held_out(big, CONFIG), index=big.index)).all()  # row order does not matter
    grown = pd.concat([big.iloc[:5000], generate_churn(3000, seed=2).assign(
        customer_id=lambda f: "N" + f["customer_id"])])
    assert (held_out(grown, CONFIG)[:5000] == held_out(big, CONFIG)[:5000]).all()  # new rows move nobody
    snapshots = pd.concat([big.iloc[:2000]] * 3)  # monthly snapshots of the same customers
    sides = pd.Series(held_out(snapshots, CONFIG)).groupby(snapshots["customer_id"].to_numpy()).nunique()
    assert (sides == 1).all()  # every row of one customer on one side
    from dataclasses import replace

    assert (held_out(big, replace(CONFIG, seed=7)) == held_out(big, CONFIG)).all()  # seed-independent


def test_split_command_writes_the_channels_and_the_baseline(tmp_path: Path) -> None:
    frame = generate_churn(1000, seed=4)
    (tmp_path / "in").mkdir()
    frame.iloc[:600].to_csv(tmp_path / "in/part-00000", index=False)
    frame.iloc[600:].to_parquet(tmp_path / "in/part-00001.parquet", index=False)
    (tmp_path / "config").mkdir()
    (tmp_path / "config/platform.json").write_text(json.dumps({
        "platform": "p", "data": {"target": "churned", "id_column": "customer_id",
                                  "numeric": list(CONFIG.numeric), "categorical": list(CONFIG.categorical)},
        "model": {"family": "hist_gradient_boosting"}}))
    result = CliRunner().invoke(main, ["split", "--data", str(tmp_path / "in"), "--config", str(tmp_path / "config"),
                                       "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    train = pd.read_parquet(tmp_path / "out/train/part-00000.parquet")
    test = pd.read_parquet(tmp_path / "out/test/part-00000.parquet")
    assert len(train) + len(test) == 1000 and not set(train["customer_id"]) & set(test["customer_id"])
    assert set(test["customer_id"]) == set(frame["customer_id"][held_out(frame, CONFIG)])
    counts = train["churned"].value_counts()
    assert f"train: {len(train)} rows (class 0: {counts[0]}, class 1: {counts[1]})" in result.output
    baseline = json.loads((tmp_path / "out/baseline/baseline.json").read_text())
    assert set(baseline["features"]) == set(CONFIG.features) and baseline["rows"] == len(train)
    # The parts are valid training input again (typed, one text per category).
    assert load_data(tmp_path / "out/train", CONFIG)["contract"].dtype == object


def test_split_command_refuses_bad_data(tmp_path: Path) -> None:
    frame = generate_churn(200, seed=4)
    frame.loc[5, "churned"] = 3
    frame.to_csv(tmp_path / "data.csv", index=False)
    result = CliRunner().invoke(main, ["split", "--data", str(tmp_path / "data.csv"), "--output",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "Error: " + str(tmp_path / "data.csv") + ": column 'churned' (the target), row 6: expected 0 or 1" in \
        result.output
    assert not (tmp_path / "out").exists()


def test_too_few_rows_of_a_class_is_a_clear_error(tmp_path: Path) -> None:
    frame = generate_churn(400, seed=4)
    keep = frame[frame["churned"] == 0].index.tolist() + frame[frame["churned"] == 1].index[:6].tolist()
    frame.loc[keep].to_csv(tmp_path / "data.csv", index=False)
    result = CliRunner().invoke(main, ["split", "--data", str(tmp_path / "data.csv"), "--output",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "Error: column 'churned' (the target): the training split holds" in result.output
    assert "it needs at least 10 rows of each class (max(model.search.cv_folds, 10))" in result.output
