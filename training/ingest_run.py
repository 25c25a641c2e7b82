"""One ingestion run, whatever the cloud: list new objects against the ledger, check and compute
their rows (`ingest.prepare`), hand the good ones to the sink, quarantine the bad ones with their
reason, and only then write the ledger marker.

The cloud is behind two small interfaces, so the checks, the quarantine and the ledger have one
code path: `Objects` (list, read and write the objects of a bucket or container: S3 in
`ingest_job.py`, Azure Blob in `ingest_azure.py`) and `Sink` (where the computed records go:
PutRecord into the Feature Store on AWS, Parquet under the feature set's source path on Azure).
A sink may refuse single records (the Feature Store's ValidationError); those join the quarantine
with the sink's message, so nothing is dropped without a trace.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Protocol

import pandas as pd

from .ingest import ERROR_COLUMN, IngestionSpec, Prepared, prepare


@dataclass(frozen=True)
class Item:
    """One listed object: its key, its version tag (S3 ETag, Blob ETag) and when it was written."""

    key: str
    etag: str
    modified: Any


class Objects(Protocol):
    """The storage an ingestion reads and writes; `url` names an object in messages."""

    def list(self, bucket: str, prefix: str) -> list[Item]: ...

    def read(self, bucket: str, key: str, etag: str) -> bytes: ...

    def write(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...

    def url(self, bucket: str, key: str) -> str: ...


class Sink(Protocol):
    """Where the good rows go. `write` returns, per record, None (stored) or why it was refused;
    an error that is not about one record (the store unreachable, access denied) propagates."""

    target: str

    def write(self, key: str, etag: str, frame: pd.DataFrame, prepared: Prepared) -> list[str | None]: ...


@dataclass
class ObjectResult:
    key: str
    rows: int = 0
    written: int = 0
    quarantined: int = 0
    error: str | None = None


@dataclass
class Summary:
    results: list[ObjectResult] = field(default_factory=list)

    @property
    def failed(self) -> list[ObjectResult]:
        return [r for r in self.results if r.error]

    @property
    def done(self) -> list[ObjectResult]:
        return [r for r in self.results if not r.error]


def marker_key(spec: IngestionSpec, key: str, etag: str) -> str:
    return f"{spec.ledger_prefix}{key}/{etag.strip(chr(34))}.json"


def quarantine_key(spec: IngestionSpec, key: str) -> str:
    return f"{spec.quarantine_prefix}{key}.rejected.csv"


def new_objects(spec: IngestionSpec, store: Objects) -> list[Item]:
    """The objects under the prefix without a ledger marker, oldest first."""
    seen = {item.key for item in store.list(spec.ledger_bucket, spec.ledger_prefix)}
    found = []
    for item in store.list(spec.raw_bucket, spec.prefix):
        if item.key.endswith("/") or PurePosixPath(item.key).name.startswith((".", "_")):
            continue  # folder placeholders and markers such as _SUCCESS
        if marker_key(spec, item.key, item.etag) not in seen:
            found.append(item)
    return sorted(found, key=lambda i: (i.modified, i.key))


def read_object(body: bytes, spec: IngestionSpec, where: str) -> pd.DataFrame:
    """The raw table, every cell as read (CSV: text; Parquet: its types); ValueError when unreadable."""
    try:
        if spec.format == "parquet":
            return pd.read_parquet(io.BytesIO(body))
        compression = "gzip" if body[:2] == b"\x1f\x8b" else None
        return pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False, compression=compression)
    except Exception as exc:  # pandas and pyarrow raise many types for a malformed file
        raise ValueError(f"{where}: not a readable {spec.format} file ({exc})") from None


def process(spec: IngestionSpec, store: Objects, sink: Sink, item: Item) -> ObjectResult:
    """One object: read, check, write the good rows, quarantine the rest, then mark it done."""
    result = ObjectResult(item.key)
    body = store.read(spec.raw_bucket, item.key, item.etag)
    frame = read_object(body, spec, store.url(spec.raw_bucket, item.key))
    prepared = prepare(frame, spec)
    refused = prepared.refused
    outcomes = sink.write(item.key, item.etag, frame, prepared)
    rejected = [(row, why) for row, why in zip(prepared.rows, outcomes, strict=True) if why is not None]
    if rejected:
        extra = frame.iloc[[row - 1 for row, _ in rejected]].copy()
        extra[ERROR_COLUMN] = [why for _, why in rejected]
        refused = pd.concat([refused, extra])
    result.rows, result.quarantined = len(frame), len(refused)
    result.written = len(prepared.records) - len(rejected)
    if len(refused):
        out = refused.copy()
        out.insert(0, "_row", [int(i) + 1 for i in refused.index])  # 1-based data row of the raw file
        store.write(spec.raw_bucket, quarantine_key(spec, item.key), out.to_csv(index=False).encode("utf-8"),
                    "text/csv")
    store.write(spec.ledger_bucket, marker_key(spec, item.key, item.etag),
                json.dumps({"key": item.key, "etag": item.etag, "rows": result.rows, "written": result.written,
                            "quarantined": result.quarantined, "at": datetime.now(UTC).isoformat()}).encode("utf-8"),
                "application/json")
    return result


def run(spec: IngestionSpec, store: Objects, sink: Sink, echo: Callable[[str], Any] = print) -> Summary:
    summary = Summary()
    for item in new_objects(spec, store):
        where = store.url(spec.raw_bucket, item.key)
        try:
            result = process(spec, store, sink, item)
        except Exception as exc:  # one object's failure must not stop the others; it is retried next run
            result = ObjectResult(item.key, error=f"{type(exc).__name__}: {exc}")
        summary.results.append(result)
        if result.error:
            echo(f"Error: {where}: not ingested ({result.error}); the next run retries it")
        else:
            to = f", quarantined to {store.url(spec.raw_bucket, quarantine_key(spec, item.key))}" \
                if result.quarantined else ""
            echo(f"{where}: {result.rows} rows, {result.written} written to {sink.target}, "
                 f"{result.quarantined} quarantined{to}")
    done = summary.done
    echo(f"{len(done)} new objects ingested into {sink.target} ({sum(r.written for r in done)} records, "
         f"{sum(r.quarantined for r in done)} rows quarantined), {len(summary.failed)} failed")
    return summary


def counts(summary: Summary) -> list[tuple[str, float]]:
    """The run's counts, named as the alarms and alerts on both clouds read them."""
    done = summary.done
    return [("RecordsWritten", float(sum(r.written for r in done))),
            ("QuarantinedRows", float(sum(r.quarantined for r in done))),
            ("FailedObjects", float(len(summary.failed)))]
