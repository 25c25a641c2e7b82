"""Raw rows to feature-store records: the checks and the computation, without any I/O.

A group's ingestion spec (rendered by the FeatureStore stack as JSON, `IngestionSpec.from_json`)
names the group, its record id and event time, and each feature with its type and the raw column
it is read from. `prepare` turns one raw table into the records PutRecord takes (a list of
`{"FeatureName", "ValueAsString"}` per row) and the rows it refuses, each with its reason, so
that nothing is dropped without a trace: the job writes the refused rows to the quarantine.

A row is refused when its record id is missing, its event time is missing or not a time, or a
value does not parse as its feature's type (integral: a whole number within 64 bits; fractional:
a finite number). A missing value of another feature is left out of the record, as the Feature
Store allows. Event times are read as seconds since the epoch or ISO-8601 (a time without an
offset is UTC) and written as the group's event-time type wants them: fractional seconds, or
`yyyy-MM-ddTHH:mm:ssZ` (the format the Feature Store accepts for a string event time).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

INT64 = (-(2**63), 2**63 - 1)
ERROR_COLUMN = "_ingestion_error"  # the reason, added to each quarantined row
MISSING = ("", "NaN", "nan", "NAN")  # as training reads CSV (data.py): empty cells and NaN, not "NA" or "None"


class SpecError(ValueError):
    """An ingestion spec that cannot be used (the job's configuration, not the data)."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    type: str  # integral | fractional | string
    column: str


@dataclass(frozen=True)
class IngestionSpec:
    """What the job needs of one group; buckets and prefixes are where it reads and writes."""

    feature_group: str
    record_id: str
    event_time: str
    features: tuple[FeatureSpec, ...]
    raw_bucket: str
    prefix: str
    format: str
    quarantine_prefix: str
    ledger_bucket: str
    ledger_prefix: str
    concurrency: int = 4
    # Azure only (training/ingest_azure.py): the container and path prefix the checked rows go to as
    # Parquet, the source the feature set's specification reads. Absent on AWS, where PutRecord writes.
    output_bucket: str | None = None
    output_prefix: str | None = None

    @classmethod
    def from_json(cls, text: str, where: str) -> IngestionSpec:
        try:
            data = json.loads(text)
            features = tuple(FeatureSpec(f["name"], f["type"], f.get("column") or f["name"]) for f in data["features"])
            spec = cls(feature_group=data["feature_group"], record_id=data["record_id"],
                       event_time=data["event_time"], features=features, raw_bucket=data["raw_bucket"],
                       prefix=data["prefix"], format=data.get("format", "csv"),
                       quarantine_prefix=data["quarantine_prefix"], ledger_bucket=data["ledger_bucket"],
                       ledger_prefix=data["ledger_prefix"], concurrency=int(data.get("concurrency", 4)),
                       output_bucket=data.get("output_bucket"), output_prefix=data.get("output_prefix"))
        except (ValueError, KeyError, TypeError) as exc:
            raise SpecError(f"{where}: not an ingestion spec: {type(exc).__name__} {exc}") from None
        names = [f.name for f in spec.features]
        for role in (spec.record_id, spec.event_time):
            if role not in names:
                raise SpecError(f"{where}: {role!r} is not one of the features ({', '.join(names)})")
        bad = [f"{f.name}: {f.type!r}" for f in spec.features if f.type not in ("integral", "fractional", "string")]
        if bad or spec.format not in ("csv", "parquet") or not 1 <= spec.concurrency <= 32:
            raise SpecError(f"{where}: bad feature types ({', '.join(bad)}), format {spec.format!r} "
                            f"or concurrency {spec.concurrency}")
        return spec

    def feature(self, name: str) -> FeatureSpec:
        return next(f for f in self.features if f.name == name)


@dataclass
class Prepared:
    """The records of the good rows (with their 1-based row numbers) and the refused rows."""

    records: list[list[dict[str, str]]]
    rows: list[int]
    refused: pd.DataFrame


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in MISSING


def parse_time(value: Any) -> datetime:
    """A UTC instant from seconds since the epoch or an ISO-8601 text; ValueError otherwise."""
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number of seconds")
    return datetime.fromtimestamp(number, tz=UTC)


def format_time(when: datetime, feature_type: str) -> str:
    if feature_type == "fractional":
        return repr(when.timestamp())
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _value(feature: FeatureSpec, value: Any) -> str:
    """The ValueAsString of one cell; ValueError naming what is wrong."""
    if feature.type == "integral":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{feature.column!r} ({feature.name}, integral): {value!r} is not a whole "
                             f"number") from None
        if not INT64[0] <= number <= INT64[1]:
            raise ValueError(f"{feature.column!r} ({feature.name}, integral): {value!r} is out of the 64-bit range")
        return str(number)
    if feature.type == "fractional":
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"{feature.column!r} ({feature.name}, fractional): {value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{feature.column!r} ({feature.name}, fractional): {value!r} is not a finite number")
        return repr(number)
    return value if isinstance(value, str) else str(value)


def missing_columns(frame: pd.DataFrame, spec: IngestionSpec) -> list[str]:
    """The record id's and event time's columns must be there; the others may be absent (missing values)."""
    return [spec.feature(n).column for n in (spec.record_id, spec.event_time)
            if spec.feature(n).column not in frame.columns]


def record(row: dict[str, Any], spec: IngestionSpec) -> list[dict[str, str]]:
    """One raw row as a Record; ValueError with every problem of the row, joined by '; '."""
    problems, values = [], []
    for feature in spec.features:
        raw = row.get(feature.column)
        if _missing(raw):
            if feature.name in (spec.record_id, spec.event_time):
                role = "record id" if feature.name == spec.record_id else "event time"
                problems.append(f"{feature.column!r} ({feature.name}, the {role}): missing value")
            continue
        try:
            if feature.name == spec.event_time:
                try:
                    text = format_time(parse_time(raw), feature.type)
                except (ValueError, OverflowError, OSError):
                    raise ValueError(f"{feature.column!r} ({feature.name}, the event time): {raw!r} is not seconds "
                                     f"since the epoch or an ISO-8601 time") from None
            else:
                text = _value(feature, raw)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        values.append({"FeatureName": feature.name, "ValueAsString": text})
    if problems:
        raise ValueError("; ".join(problems))
    return values


def prepare(frame: pd.DataFrame, spec: IngestionSpec) -> Prepared:
    """Every row of a raw table, as a record or as a refused row with its reason."""
    missing = missing_columns(frame, spec)
    if missing:
        refused = frame.copy()
        refused[ERROR_COLUMN] = f"the file has no column {', '.join(map(repr, missing))} (the record id and event " \
                                f"time are required)"
        return Prepared([], [], refused)
    records, rows, refused, reasons = [], [], [], []
    for i, row in enumerate(frame.to_dict("records")):
        try:
            records.append(record(row, spec))
            rows.append(i + 1)
        except ValueError as exc:
            refused.append(i)
            reasons.append(str(exc))
    bad = frame.iloc[refused].copy()
    bad[ERROR_COLUMN] = reasons
    return Prepared(records, rows, bad)
