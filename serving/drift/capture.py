"""Captured rows into a Profile: SageMaker data-capture JSON Lines, or CSV tables with a header.

Each capture record's `captureData.endpointInput` (`observedContentType`, `data`, `encoding`
CSV/JSON/BASE64) is decoded by `serving.formats.parse`, the server's own decoder, so the job reads
exactly the bodies the server accepted, in every format it accepts. A record that cannot be read
(not JSON, no endpointInput, a body the server would reject) is counted, its reason kept for the
report (file:line: why), and skipped; the run goes on. Rows are counted in batches, so memory is
bounded by the batch size, not by the input.

Speed: `parse` converts every cell in Python. Records are therefore queued (at most QUEUE_RECORDS
or QUEUE_BYTES) and the well-formed CSV and JSON bodies among them decoded together by
`fastdecode`, which takes a record only when it reads it exactly as `parse` would; every other
record goes through `parse`, in its place, so rows, batches and error messages are the same
(tests/test_drift_fastdecode.py). MLOPS_DRIFT_FAST_DECODE=0 turns the fast path off.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..formats import ClientError, Column, parse
from .sketch import Profile

try:
    from . import fastdecode
except ImportError:  # pyarrow or orjson missing (serving/requirements.txt pins neither): parse only
    fastdecode = None  # type: ignore[assignment]

BATCH_ROWS = 25_000
# Records decoded together by the fast path: bounded, so memory does not grow with the input. Measured
# on benchmarks/drift.py's data, 250 records / 4 MB and 25,000-row batches against 1,000 / 16 MB and
# 50,000: 237 MB PSS against 336 MB for one process, 338 MB against 528 MB with --workers 2, and no
# slower (2M rows: 16.9 s against 19.0 s; 10M rows: 81.4 s against 80.4 s, within the run-to-run spread).
QUEUE_RECORDS, QUEUE_BYTES = 250, 4 << 20
# MLOPS_DRIFT_FAST_DECODE=0 decodes every record with formats.parse (the reference, for comparison).
FAST_DECODE = fastdecode is not None and os.environ.get("MLOPS_DRIFT_FAST_DECODE", "1") != "0"
# Rows waiting for the next batch: a list of rows from formats.parse, or (block, start, end) of a
# block decoded by fastdecode.
Segment = list[list[Any]] | tuple[dict[str, np.ndarray], int, int]


def columns(baseline: dict[str, Any]) -> list[Column]:
    """The baseline's features as the server's signature columns (numeric: double, else string)."""
    return [Column(name, "double" if spec["type"] == "numeric" else "string")
            for name, spec in baseline["features"].items()]


class Reader:
    """Feeds a Profile in batches of `batch_rows` rows (whole records), cut at the same records and
    in the same row order whether a record was decoded by the fast path or by `formats.parse`, so
    the counts, and even the float sum behind the live mean, are identical with `fast` on or off."""

    def __init__(self, profile: Profile, batch_rows: int = BATCH_ROWS, fast: bool | None = None):
        self.profile = profile
        self.columns = columns(profile.baseline)
        self.numeric = [c.type == "double" for c in self.columns]
        self.batch_rows = batch_rows
        self.fast = (FAST_DECODE if fast is None else fast) and fastdecode is not None
        self.pending: list[Segment] = []
        self.pending_rows = 0
        self.queue: list[tuple[str, int, bytes]] = []
        self.queued_bytes = 0

    def capture(self, name: str, lines: Iterable[bytes]) -> None:
        """One JSON Lines file of SageMaker data-capture records."""
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            self.profile.records += 1
            if not self.fast:
                self._one(name, number, line)
                continue
            self.queue.append((name, number, line))
            self.queued_bytes += len(line)
            if len(self.queue) >= QUEUE_RECORDS or self.queued_bytes >= QUEUE_BYTES:
                self._drain()
        self._drain()

    def _one(self, name: str, number: int, line: bytes) -> None:
        """A record decoded by the server's own parser: the reference path, and every fallback."""
        try:
            body, content_type = _endpoint_input(line)
            rows = parse(body, content_type, self.columns)
        except ClientError as exc:
            self.profile.skip(f"{name}:{number}: a body the server rejects ({exc.message})")
            return
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.profile.skip(f"{name}:{number}: not a SageMaker data-capture record ({exc})")
            return
        if self.pending and isinstance(self.pending[-1], list):
            self.pending[-1] += rows
        else:
            self.pending.append(list(rows))
        self._added(len(rows))

    def _added(self, rows: int) -> None:
        self.pending_rows += rows
        if self.pending_rows >= self.batch_rows:
            self.flush()

    def _drain(self) -> None:
        """The queued records in order: CSV and JSON bodies decoded together by fastdecode, each
        record it cannot prove well-formed (and every malformed envelope) through `_one`."""
        if not self.queue:
            return
        queue, self.queue, self.queued_bytes = self.queue, [], 0
        bodies: list[tuple[bytes, str] | None] = [_fast_envelope(line) for _, _, line in queue]
        csv_at = [i for i, b in enumerate(bodies) if b is not None and b[1] == fastdecode.CSV_TYPE]
        json_at = [i for i, b in enumerate(bodies) if b is not None and b[1] == fastdecode.JSON_TYPE]
        where: dict[int, tuple[fastdecode.Block, int, int]] = {}
        for at, decode in ((csv_at, fastdecode.decode_csv), (json_at, fastdecode.decode_json)):
            if not at:
                continue
            try:
                block, spans = decode([bodies[i][0] for i in at], self.columns)  # type: ignore[index]
            except fastdecode.FAILURES:
                continue  # not expected; the fast path is only a shortcut: these records go through parse
            where |= {i: (block, *span) for i, span in zip(at, spans, strict=True) if span is not None}
        for i, (name, number, line) in enumerate(queue):
            found = where.get(i)
            if found is None:
                self._one(name, number, line)
                continue
            block, start, end = found
            last = self.pending[-1] if self.pending else None
            if isinstance(last, tuple) and last[0] is block and last[2] == start:
                self.pending[-1] = (block, last[1], end)  # contiguous rows of one block: one slice
            else:
                self.pending.append((block, start, end))
            self._added(end - start)

    def table(self, name: str, lines: Iterable[bytes]) -> None:
        """A CSV file with a header row; extra columns are ignored, a numeric cell that is not a
        number makes its row unreadable (counted and skipped, as the server would refuse it)."""
        iterator = iter(lines)
        header = next(iterator, b"")
        wanted = [c.name for c in self.columns]
        try:
            given = pd.read_csv(io.BytesIO(header), nrows=0).columns.map(str).tolist()
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            given = []
        missing = [c for c in wanted if c not in given]
        if missing:
            self.profile.records += 1
            self.profile.skip(f"{name}:1: a CSV header without the baseline's column {missing[0]!r}")
            return
        chunk: list[bytes] = []
        first = 2
        for line in iterator:
            chunk.append(line if line.endswith(b"\n") else line + b"\n")
            if len(chunk) >= self.batch_rows:
                self._table_chunk(name, first, header, chunk)
                first += len(chunk)
                chunk = []
        if chunk:
            self._table_chunk(name, first, header, chunk)

    def _table_chunk(self, name: str, first: int, header: bytes, chunk: list[bytes]) -> None:
        header = header if header.endswith(b"\n") else header + b"\n"
        try:
            frame = pd.read_csv(io.BytesIO(header + b"".join(chunk)), dtype=str, keep_default_na=False,
                                na_values=[""])
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            self.profile.records += len(chunk)
            for _ in chunk:
                self.profile.skip(f"{name}:{first}-{first + len(chunk) - 1}: not readable CSV ({exc})")
            return
        bad = np.zeros(len(frame), dtype=bool)
        data: dict[str, np.ndarray] = {}
        for column, numeric in zip(self.columns, self.numeric, strict=True):
            raw = frame[column.name]
            if numeric:
                values = pd.to_numeric(raw, errors="coerce")
                bad |= (values.isna() & raw.notna()).to_numpy()
                data[column.name] = values.to_numpy(dtype=float)
            else:
                data[column.name] = raw.to_numpy(dtype=object)
        self.profile.records += len(frame)
        for row in np.flatnonzero(bad):
            self.profile.skip(f"{name}:{first + int(row)}: a numeric column holds text")
        self.profile.add({k: v[~bad] for k, v in data.items()}, int((~bad).sum()))

    def flush(self) -> None:
        """The pending rows to the Profile as one array per feature (float, or object for a
        categorical), whichever path decoded them."""
        self._drain()
        if not self.pending:
            return
        parts: list[dict[str, np.ndarray]] = []
        for segment in self.pending:
            if isinstance(segment, list):
                table = np.array(segment, dtype=object)  # one 2-D array: twice as fast as zip(*rows)
                parts.append({c.name: table[:, i].astype(float) if numeric else table[:, i]
                              for i, (c, numeric) in enumerate(zip(self.columns, self.numeric, strict=True))})
            else:
                block, start, end = segment
                parts.append({c.name: block[c.name][start:end] for c in self.columns})
        data = parts[0] if len(parts) == 1 else {c.name: np.concatenate([p[c.name] for p in parts])
                                                 for c in self.columns}
        self.profile.add(data, self.pending_rows)
        self.pending, self.pending_rows = [], 0


def _fast_envelope(line: bytes) -> tuple[bytes, str] | None:
    """`_endpoint_input` with orjson (4x faster on these lines); None for anything it does not
    read the same way as json.loads (NaN, big ints, a BOM, lone surrogates: orjson refuses them
    all), or that is not a record: `_one` then gives the exact reason."""
    try:
        return _endpoint_input(line, fastdecode.loads)
    except (ValueError, KeyError, TypeError, AttributeError):  # orjson.JSONDecodeError is a ValueError
        return None


def _endpoint_input(line: bytes, loads: Callable[[bytes], Any] = json.loads) -> tuple[bytes, str]:
    record = loads(line)
    payload = record["captureData"]["endpointInput"]
    data = payload["data"]
    if not isinstance(data, str):
        raise TypeError("endpointInput.data is not a string")
    if str(payload.get("encoding", "")).upper() == "BASE64":
        try:
            return base64.b64decode(data, validate=True), str(payload.get("observedContentType", ""))
        except binascii.Error as exc:
            raise ValueError(f"endpointInput.data is not base64: {exc}") from None
    return data.encode("utf-8"), str(payload.get("observedContentType", ""))
