"""Vectorised decoding of the common, well-formed capture bodies, equal to `serving.formats.parse`.

Why: `formats.parse` converts every cell in Python (about 70% of the drift job's time on 10M rows).
Here many records' bodies are decoded at once, columns converted by numpy/pyarrow, and the result
is *exactly* what `parse` would give for those records: the same floats (both parsers round
correctly), the same missing values, and only records `parse` accepts. A record is taken only when
it is proved well-formed by cheap, conservative checks; anything else (a header row, quotes, CR,
control bytes, a BOM, a charset parameter, a wrong field count, a cell that is not a plain decimal
number, nan, inf or an overflow, a boolean or number in a categorical column, a repeated JSON
key...) is returned as None, and the caller decodes that record with `formats.parse` itself, so
every rejection and its message stay the server's.

Accepted shapes: `text/csv` without a header; `application/json` with `dataframe_split` (with or
without `columns`, in any column order, other keys such as pandas' `index` ignored as parse ignores
them) or `instances`/`inputs` as a list of lists.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..formats import Column

loads = orjson.loads  # the capture envelope's parser too (capture._fast_envelope)
# Errors the checks do not foresee: the caller then sends the whole group through formats.parse.
FAILURES = (pa.ArrowException, ValueError, TypeError, OverflowError)
CSV_TYPE = "text/csv"
JSON_TYPE = "application/json"
BOM = b"\xef\xbb\xbf"
# When pyarrow's typed read refuses a batch, a numeric cell is taken only in this form (what
# str(float) and DataFrame.to_csv write, all read by Python's float()); the rest goes to formats.parse.
NUMBER = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"

# Per byte: 0 fine, 1 not taken (control bytes but LF, '"' which starts quoting, DEL), 2 non-ASCII
# (taken when the whole body is UTF-8). '\r' is a line end for csv.reader: not taken either.
_BYTES = np.zeros(256, dtype=np.uint8)
_BYTES[:0x20] = 1
_BYTES[ord("\n")] = 0
_BYTES[ord('"')] = 1
_BYTES[0x7F] = 1
_BYTES[0x80:] = 2

Span = tuple[int, int] | None
Block = dict[str, np.ndarray]


def _missing_text(values: np.ndarray) -> np.ndarray:
    """Empty and null categorical cells become np.nan, the marker `formats._text` uses."""
    mask = np.equal(values, None) | (values == "")
    if mask.any():
        values[mask] = np.nan
    return values


def _spans(rows: np.ndarray, good: np.ndarray) -> list[Span]:
    """Row ranges of each record in a block holding all records' rows in order; None when not good."""
    ends = np.cumsum(rows)
    starts = ends - rows
    return [(int(s), int(e)) if g else None for s, e, g in zip(starts, ends, good, strict=True)]


def decode_csv(bodies: Sequence[bytes], columns: list[Column]) -> tuple[Block, list[Span]]:
    """Many `text/csv` bodies at once: a block of columns and, per body, its rows in it (or None)."""
    n, width = len(bodies), len(columns)
    spans: list[Span] = [None] * n
    names = {c.name.encode("utf-8") for c in columns}
    candidates: list[int] = []
    for i, body in enumerate(bodies):
        if not body.strip() or body.startswith(BOM):
            continue
        newline = body.find(b"\n")
        first = body if newline < 0 else body[:newline]
        if not names.isdisjoint(first.split(b",")):  # a header row: mapped by name in formats.parse
            continue
        candidates.append(i)
    if not candidates:
        return {}, spans
    parts = [bodies[i] if bodies[i].endswith(b"\n") else bodies[i] + b"\n" for i in candidates]
    joined = b"".join(parts)
    ends = np.cumsum([len(p) for p in parts])
    buf = np.frombuffer(joined, dtype=np.uint8)
    kind = _BYTES[buf]
    bad = np.zeros(len(parts), dtype=bool)
    bad[np.searchsorted(ends, np.flatnonzero(kind == 1), side="right")] = True
    for r in np.unique(np.searchsorted(ends, np.flatnonzero(kind == 2), side="right")).tolist():
        try:
            parts[r].decode("utf-8")
        except UnicodeDecodeError:
            bad[r] = True
    newlines = np.flatnonzero(buf == ord("\n"))
    commas = np.flatnonzero(buf == ord(","))
    per_line = np.diff(np.searchsorted(commas, newlines), prepend=0)
    length = np.diff(newlines, prepend=-1) - 1
    line_record = np.searchsorted(ends, newlines, side="right")
    # Every line exactly `width` fields; an empty line (csv.reader skips it) is left to formats.parse,
    # and so is a line longer than csv's field size limit (csv.Error there).
    bad[line_record[(per_line != width - 1) | (length == 0) | (length > csv.field_size_limit())]] = True
    rows = np.bincount(line_record, minlength=len(parts))
    good = ~bad
    if not good.any():
        return {}, spans
    if bad.any():
        joined = b"".join(p for p, g in zip(parts, good, strict=True) if g)
    rows = rows[good]
    try:
        block, row_bad = _typed(joined, columns)
    except pa.ArrowInvalid:  # a cell pyarrow cannot read as a number: check every cell of the batch
        try:
            block, row_bad = _checked(joined, columns)
        except (pa.ArrowInvalid, UnicodeDecodeError):  # not expected after the checks: decode each record
            return {}, spans
    if row_bad.size != int(rows.sum()):
        return {}, spans
    record_of_row = np.repeat(np.arange(rows.size), rows)
    taken = np.ones(rows.size, dtype=bool)
    taken[record_of_row[row_bad]] = False
    for i, span in zip((c for c, g in zip(candidates, good, strict=True) if g), _spans(rows, taken), strict=True):
        spans[i] = span
    return block, spans


def _typed(data: bytes, columns: list[Column]) -> tuple[Block, np.ndarray]:
    """The common case, in one call: pyarrow reads the numeric columns as float64 (empty -> null,
    the rest by the same correctly rounded parser as its string cast). It accepts a few spellings
    formats.parse reads differently or refuses ("nan(1)", "inf"): each gives NaN or +-inf, so a
    NaN that was not an empty cell, or an infinity, sends its record to formats.parse. A cell it
    cannot read at all fails the whole batch (ArrowInvalid), which `_checked` then reads."""
    table = _read_csv(data, [pa.float64() if c.type == "double" else pa.string() for c in columns])
    row_bad = np.zeros(table.num_rows, dtype=bool)
    block: Block = {}
    for j, column in enumerate(columns):
        cells = table.column(j)
        if column.type == "double":
            values = cells.to_numpy(zero_copy_only=False)  # null -> NaN
            odd = ~np.isfinite(values)
            if odd.any():
                row_bad |= np.isinf(values) | (np.isnan(values) & ~cells.is_null().to_numpy(zero_copy_only=False))
            block[column.name] = values
        else:
            block[column.name] = _missing_text(cells.to_numpy(zero_copy_only=False))
    return block, row_bad


def _checked(data: bytes, columns: list[Column]) -> tuple[Block, np.ndarray]:
    """Every cell as a string; a numeric cell is taken only when it is a plain decimal (NUMBER)
    that is finite, else its record goes to formats.parse."""
    table = _read_csv(data, [pa.string()] * len(columns))
    row_bad = np.zeros(table.num_rows, dtype=bool)
    block: Block = {}
    for j, column in enumerate(columns):
        cells = table.column(j)
        if column.type == "double":
            number = pc.match_substring_regex(cells, NUMBER)
            empty = pc.equal(pc.binary_length(cells), 0).to_numpy(zero_copy_only=False)
            row_bad |= ~(number.to_numpy(zero_copy_only=False) | empty)
            present = pc.if_else(number, cells, pa.scalar(None, pa.string()))
            values = pc.cast(present, pa.float64()).to_numpy(zero_copy_only=False)
            row_bad |= np.isinf(values)  # 1e400: formats.parse refuses it
            block[column.name] = values
        else:
            block[column.name] = _missing_text(cells.to_numpy(zero_copy_only=False))
    return block, row_bad


def _read_csv(data: bytes, types: list[pa.DataType]) -> pa.Table:
    """No quoting, no escapes; only an empty numeric cell is null (a categorical "" is kept and
    becomes np.nan in `_missing_text`, as formats._text makes it)."""
    names = [f"f{j}" for j in range(len(types))]
    return pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter=",", quote_char=False, double_quote=False, escape_char=False,
                                         newlines_in_values=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types=dict(zip(names, types, strict=True)), null_values=[""],
                                             strings_can_be_null=False, quoted_strings_can_be_null=False,
                                             check_utf8=True))


def _json_table(body: bytes, columns: list[Column]) -> np.ndarray | None:
    """The body's cells as a rows x columns object array in signature order, when parse_json would read them the
    same way; None otherwise. orjson is strict JSON (no NaN, no BOM, no lone surrogates, no 1e400)
    and keeps the last of repeated keys where formats.parse refuses the body. Every key of an
    object is followed by a colon, and a colon outside a string is nothing else: so when the body
    holds exactly as many colons as the decoded objects have keys, no key was repeated (a colon
    inside a string only makes the count larger, and that body goes to formats.parse)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or len(doc) != 1:
        return None
    (key, payload), = doc.items()
    if body.count(b":") != 1 + (len(payload) if isinstance(payload, dict) else 0):
        return None
    names = [c.name for c in columns]
    if key == "dataframe_split":
        if not isinstance(payload, dict):  # other keys ("index", as pandas writes it) are ignored there too
            return None
        rows = payload.get("data")
        given = payload.get("columns", names)
        if (not isinstance(given, list) or not all(isinstance(g, str) for g in given)
                or len(given) != len(names) or set(given) != set(names)):
            return None
        order = [given.index(name) for name in names]
    elif key in ("instances", "inputs"):
        rows, order = payload, list(range(len(names)))
    else:
        return None
    width = len(names)
    if not isinstance(rows, list) or not rows or not all(type(r) is list and len(r) == width for r in rows):
        return None
    try:
        table = np.array(rows, dtype=object)
    except ValueError:  # cells that are lists of different lengths
        return None
    if table.shape != (len(rows), width):  # cells that are lists of one length: a 3-D array
        return None
    return table if order == list(range(width)) else table[:, order]


# pandas' C type inference over an object column (None skipped): the kinds formats.parse converts
# as the fast path does. "boolean", "mixed" (a bool or a list among numbers), "string"... are not.
_NUMERIC_KINDS = {"floating", "integer", "mixed-integer-float", "empty"}
_TEXT_KINDS = {"string", "empty"}  # a number or a boolean in a categorical column: formats.parse's job


def decode_json(bodies: Sequence[bytes], columns: list[Column]) -> tuple[Block, list[Span]]:
    """Many `application/json` bodies at once: a block of columns and, per body, its rows (or None)."""
    from pandas.api.types import infer_dtype

    decoded = [_json_table(body, columns) for body in bodies]
    kept = [i for i, table in enumerate(decoded) if table is not None]
    spans: list[Span] = [None] * len(bodies)
    if not kept:
        return {}, spans
    tables = [decoded[i] for i in kept]
    rows = np.array([t.shape[0] for t in tables])  # type: ignore[union-attr]
    ends = np.cumsum(rows)
    cells = np.concatenate(tables) if len(tables) > 1 else tables[0]
    good = np.ones(len(kept), dtype=bool)
    block: Block = {}
    for j, column in enumerate(columns):
        values = cells[:, j]
        kinds = _NUMERIC_KINDS if column.type == "double" else _TEXT_KINDS
        if infer_dtype(values, skipna=True) not in kinds:  # find the records, blank their cells
            values = values.copy()
            for r, (start, end) in enumerate(zip(ends - rows, ends, strict=True)):
                if infer_dtype(values[start:end], skipna=True) not in kinds:
                    good[r] = False
                    values[start:end] = None
        if column.type == "double":
            numbers = values.astype(float)  # None -> NaN; int -> float as float() rounds it
            inf = np.isinf(numbers)
            if inf.any():
                good[np.unique(np.searchsorted(ends, np.flatnonzero(inf), side="right"))] = False
            block[column.name] = numbers
        else:
            block[column.name] = _missing_text(values.copy())
    for i, span in zip(kept, _spans(rows, good), strict=True):
        spans[i] = span
    return block, spans
