"""Labels joined with the feature values as of each label's event time: the training set.

Labels are their own data set (record id, event time, label: CSV or Parquet, a file or a
directory). Features come from the offline store: the Parquet files SageMaker Feature Store
writes under `<offline S3 URI>/<account>/sagemaker/<region>/offline-store/<group>-<created>/data/`
(the emulator: the same without `sagemaker/`), every record ever put, with `write_time` and
`is_deleted`. The pipeline's TrainingSet step mounts that prefix and the labels as Processing
inputs; locally the same function reads the same layout from a directory, so `make train` on the
output and the pipeline train on the same rows.

Point in time: for each label and each group, the record of the same id with the latest event
time at or before the label's (never a later one: that would leak the future into training);
among records of one id and event time, the last written. A label whose latest such record is a
deletion, or that has none, has no features as of its time: it is left out and counted, never
filled in. Reading the files directly, not Athena, keeps the step inside the pipeline's network
isolation with the role it already has (read the zones), and needs no Glue or Athena permissions.

The output holds exactly the training configuration's columns (id, target, numeric, categorical),
so the Split step validates it as any training data and splits it by the id's hash: every label
of one record id lands on the same side, train or test.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import TrainingConfig
from .data import DataError, data_files, read

OFFLINE_FOLDER = re.compile(r"^(?P<group>.+)-(?P<created>\d+)$")
META = ("write_time", "api_invocation_time", "is_deleted")
READ_THREADS = 8


@dataclass(frozen=True)
class GroupRef:
    """A feature group as the offline store names it: the store's name, its record id and event time."""

    name: str
    record_id: str
    event_time: str

    @classmethod
    def parse(cls, text: str) -> GroupRef:
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise DataError([f"--group {text!r}: expected NAME:RECORD_ID:EVENT_TIME"])
        return cls(*parts)


@dataclass(frozen=True)
class LabelColumns:
    record_id: str
    event_time: str
    label: str


def times(values: pd.Series, what: str) -> pd.Series:
    """UTC instants from seconds since the epoch or ISO-8601 texts; DataError naming the first bad one."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all():
        return pd.to_datetime(numbers, unit="s", utc=True)
    parsed = pd.to_datetime(values.astype(str), utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna()
    if bad.any():
        raise DataError([f"{what}: {int(bad.sum())} values are not a time (seconds since the epoch or ISO-8601), "
                         f"e.g. {values[bad].iloc[0]!r} at row {int(bad.to_numpy().nonzero()[0][0]) + 1}"])
    return parsed


def group_files(offline_store: Path, group: str) -> list[Path]:
    """The Parquet files of the group's newest offline-store folder (a replaced group starts a new one)."""
    folders: dict[int, list[Path]] = {}
    for file in data_files(offline_store) if offline_store.exists() else []:
        parts = file.relative_to(offline_store).parts
        for i, part in enumerate(parts[:-1]):
            match = OFFLINE_FOLDER.match(part)
            if match and match["group"] == group and (i == 0 or parts[i - 1] == "offline-store"):
                folders.setdefault(int(match["created"]), []).append(file)
                break
    if not folders:
        raise DataError([f"{offline_store}: no offline-store data of feature group {group!r} "
                         f"(expected .../offline-store/{group}-<created>/data/...parquet); has the ingestion run?"])
    return folders[max(folders)]


def read_files(files: list[Path]) -> pd.DataFrame:
    """The files' rows as one frame. Read on threads (Parquet decoding releases the GIL): an offline
    store is thousands of small files, 15 s for 4,000 read one by one with pandas, 3 s so. Their
    schemas are unified as pandas would concatenate them: a feature added to the group later is
    missing (null) in the older files, an integer column read beside a fractional one becomes double."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def one(file: Path) -> pa.Table:
        try:
            return pq.read_table(file)
        except (OSError, pa.ArrowException) as exc:
            raise DataError([f"{file}: not a readable Parquet file ({exc})"]) from None

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        tables = list(pool.map(one, files))
    try:
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except pa.ArrowException as exc:  # e.g. a column written as text in one file and as a number in another
        raise DataError([f"{files[0].parent}: the files of one feature group disagree on a column's type "
                         f"({exc})"]) from None


def group_frame(offline_store: Path, ref: GroupRef) -> pd.DataFrame:
    frame = read_files(group_files(offline_store, ref.name))
    for column in (ref.record_id, ref.event_time):
        if column not in frame.columns:
            raise DataError([f"{offline_store}: the offline store of {ref.name!r} has no column {column!r}"])
    frame["_id"] = frame[ref.record_id].astype(str)
    frame["_t"] = times(frame[ref.event_time], f"{ref.name}: column {ref.event_time!r}")
    order = ["_t", "write_time"] if "write_time" in frame.columns else ["_t"]
    frame = frame.sort_values(order, kind="stable").drop_duplicates(["_id", "_t"], keep="last")
    if "is_deleted" not in frame.columns:
        frame["is_deleted"] = False
    return frame.drop(columns=[c for c in META if c != "is_deleted" and c in frame.columns])


def build(labels: pd.DataFrame, groups: dict[GroupRef, pd.DataFrame], columns: LabelColumns,
          config: TrainingConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """The training set and, per group, how many labels it left out for want of features."""
    for column in (columns.record_id, columns.event_time, columns.label):
        if column not in labels.columns:
            raise DataError([f"labels: missing column {column!r} (found {', '.join(map(repr, labels.columns))})"])
    wanted = list(config.features)
    provided = {c for ref, f in groups.items() for c in f.columns if c not in (ref.record_id, ref.event_time)}
    absent = [c for c in wanted if c not in provided]
    if absent:
        raise DataError([f"the training configuration's features {', '.join(map(repr, absent))} are in none of the "
                         f"feature groups ({', '.join(r.name for r in groups)})"])
    out = pd.DataFrame({"_id": labels[columns.record_id].astype(str),
                        "_t": times(labels[columns.event_time], f"labels: column {columns.event_time!r}"),
                        config.target: labels[columns.label]})
    out = out.sort_values("_t", kind="stable")
    left_out: dict[str, int] = {}
    taken: set[str] = set()
    for ref, frame in groups.items():
        mine = [c for c in wanted if c in frame.columns and c not in taken]
        taken.update(mine)
        right = frame[["_id", "_t", "is_deleted", *mine]].sort_values("_t", kind="stable")
        merged = pd.merge_asof(out, right, on="_t", by="_id", direction="backward", allow_exact_matches=True)
        found = merged["is_deleted"].notna() & ~merged["is_deleted"].fillna(True).astype(bool)
        left_out[ref.name] = int((~found).sum())
        out = merged[found.to_numpy()].drop(columns="is_deleted")
    if config.id_column:
        out[config.id_column] = out["_id"]
    return out[[c for c in config.columns if c in out.columns]].reset_index(drop=True), left_out


def run(labels_path: Path, offline_store: Path, refs: list[GroupRef], columns: LabelColumns,
        config: TrainingConfig, output: Path) -> tuple[int, dict[str, int]]:
    """Writes `output/part-00000.parquet`; the number of rows and the labels left out per group."""
    labels = read(labels_path)
    frames = {ref: group_frame(offline_store, ref) for ref in refs}
    frame, left_out = build(labels, frames, columns, config)
    if frame.empty:
        raise DataError([f"{labels_path}: none of the {len(labels)} labels has features as of its event time "
                         f"(left out per group: {left_out})"])
    output.mkdir(parents=True, exist_ok=True)
    frame.attrs = {}
    frame.to_parquet(output / "part-00000.parquet", index=False)
    return len(frame), left_out
