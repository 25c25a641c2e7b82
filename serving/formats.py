"""Request bodies to typed rows, checked against the model signature; answers back out.

Accepted: `text/csv` (with or without a header row), `application/json` in MLflow's scoring
formats (`dataframe_split`, `dataframe_records`, `instances`, `inputs`) and JSON Lines (one
record per line, as SageMaker Batch Transform sends), so MLflow and SageMaker clients work
unchanged. Every problem is a ClientError naming the column and row; it becomes a 4xx answer,
never a 5xx. Values are checked here, before either engine runs, so scikit-learn and the compiled
path see the same rows and give the same answer:

* NaN, null and empty cells are missing values, which the model imputes (as in training);
* +inf, -inf and numbers that overflow a 64-bit float are refused;
* a JSON boolean or number for a categorical (string) column becomes the string training made of
  it: True -> "True", 3 -> "3", 1.5 -> "1.5".
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = {"double", "float", "long", "integer"}
JSON_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPES = ("application/json", "")
JSONLINES_TYPES = ("application/jsonlines", "application/jsonl", "application/x-jsonlines", "application/json-lines")
CSV_TYPES = ("text/csv",)


class ClientError(Exception):
    """A request the server cannot score because of its content; answered with `status` (4xx)."""

    def __init__(self, status: int, message: str, error_code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code  # MLflow's vocabulary (mlflow.protos.databricks_pb2)


@dataclass(frozen=True)
class Column:
    name: str
    type: str


def _refuse(column: str, row: int, expected: str, value: Any) -> ClientError:
    return ClientError(400, f"column {column!r}, row {row}: expected {expected}; got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _finite(number: float, value: Any, column: str, row: int) -> float:
    """`number` (read from `value`), unless it is +-inf: JSON's 1e400 and Infinity both arrive as inf."""
    if math.isinf(number):
        what = "an infinite value" if isinstance(value, str) and "inf" in value.lower() else "overflows a 64-bit float"
        if isinstance(value, float):
            what = "infinite or beyond a 64-bit float's range"
        raise ClientError(400, f"column {column!r}, row {row}: expected a finite number; got {_short(value)} ({what})")
    return number


def _number(value: Any, column: str, row: int) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        raise _refuse(column, row, "a number", value)
    if isinstance(value, float):
        return _finite(value, value, column, row)  # NaN stays NaN: a missing value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ClientError(400, f"column {column!r}, row {row}: {_short(value)} overflows a 64-bit float") from None
    if isinstance(value, str) and "_" not in value:  # float() reads "1_000"; training's pandas does not
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return _finite(number, value, column, row)
    raise _refuse(column, row, "a number", value)


def _text(value: Any, column: str, row: int) -> Any:
    """A categorical value as training stored it: a string, or NaN for missing."""
    if value is None or value == "":
        return np.nan  # the one marker for a missing category the model was trained with
    if isinstance(value, str):
        return value
    if isinstance(value, int):  # bool too: True -> "True"
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return np.nan
        return str(_finite(value, value, column, row))
    raise _refuse(column, row, "a string", value)


_TRUE, _FALSE = {"true", "1"}, {"false", "0"}


def _boolean(value: Any, column: str, row: int) -> Any:
    """For models whose signature declares a boolean column (trained before categoricals became strings)."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return np.nan
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _refuse(column, row, "true or false", value)


Converter = Callable[[Any, str, int], Any]


def converter(column: Column) -> Converter:
    if column.type in NUMERIC:
        return _number
    if column.type == "boolean":
        return _boolean
    return _text


class Rows(list):
    """Checked, typed rows in signature order: a request's input before it joins a batch."""


def to_rows(rows: list[list[Any]], columns: list[Column]) -> Rows:
    """Each value converted to its column's type; 400 naming column and row when one cannot be."""
    if not rows:
        raise ClientError(400, "the request holds no rows")
    converters = [converter(c) for c in columns]
    return Rows([[convert(value, col.name, r) for convert, value, col in zip(converters, row, columns, strict=True)]
                 for r, row in enumerate(rows, 1)])


def frame(rows: list[list[Any]], columns: list[Column]) -> pd.DataFrame:
    """One DataFrame for many requests' rows: built once per model call, not once per request."""
    data = {}
    for i, col in enumerate(columns):
        values = [row[i] for row in rows]
        data[col.name] = np.asarray(values, dtype="float64" if col.type in NUMERIC else object)
    return pd.DataFrame(data)


def _names(columns: list[Column]) -> str:
    return ", ".join(c.name for c in columns)


def _check_names(given: list[Any], columns: list[Column]) -> list[int]:
    """Positions of the signature's columns in `given`; 400 for a missing, unexpected or repeated column."""
    expected = [c.name for c in columns]
    seen: set[Any] = set()
    for name in given:
        if not isinstance(name, str):
            raise ClientError(400, f"column names must be strings; got {_short(name)}")
        if name in seen:
            raise ClientError(400, f"duplicate column {name!r}")
        seen.add(name)
        if name not in expected:
            raise ClientError(400, f"unexpected column {name!r}; the model takes {_names(columns)}")
    for name in expected:
        if name not in seen:
            raise ClientError(400, f"missing column {name!r}; the model takes {_names(columns)}")
    return [given.index(name) for name in expected]


def _record(record: Any, r: int, columns: list[Column]) -> list[Any]:
    if isinstance(record, dict):
        values = list(record.values())
        if len(values) == len(columns) and all(a == b.name for a, b in zip(record, columns, strict=True)):
            return values  # already in signature order: the common case, checked cheaply
        order = _check_names(list(record), columns)
        return [values[i] for i in order]
    if isinstance(record, list):
        if len(record) != len(columns):
            raise ClientError(400, f"row {r} has {len(record)} values; the model takes {len(columns)}: "
                                   f"{_names(columns)}")
        return record
    raise ClientError(400, f"row {r}: expected an object or a list; got {_short(record)}")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a repeated key are refused (json keeps the last one silently). Being Python,
    this hook also lets the event loop's thread take the GIL while a large body is decoded."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ClientError(400, f"duplicate key {name!r} in a JSON object")
            seen.add(name)
    return result


def _decode(text: bytes | str, what: str = "JSON") -> Any:
    try:
        return json.loads(text, object_pairs_hook=_object)
    except RecursionError:
        raise ClientError(400, f"malformed {what}: nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ClientError(400, f"malformed {what}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # JSONDecodeError, and ints over Python's digit limit
        raise ClientError(400, f"malformed {what}: {exc}") from None


FAST_BYTES = 64 * 1024  # bodies up to this size try the fast path first (the server's on-loop size)
RECORDS_KEYS = frozenset(JSON_FORMATS) - {"dataframe_split"}  # the formats that take a list of records
_INF = math.inf
_scan = json.JSONDecoder().scan_once
_plans: dict[int, tuple[list[Column], tuple[str, ...], list[tuple[int, Converter]]]] = {}


def _plan(columns: list[Column]) -> tuple[tuple[str, ...], list[tuple[int, Converter]]]:
    """The column names and per-column (kind, converter) of a signature, computed once per
    signature instead of once per request: kind 0 is a number, 1 a string, 2 anything else."""
    cached = _plans.get(id(columns))
    if cached is None or cached[0] is not columns:
        kinds = [(0 if c.type in NUMERIC else 1 if converter(c) is _text else 2, converter(c)) for c in columns]
        cached = _plans[id(columns)] = (columns, tuple(c.name for c in columns), kinds)
    return cached[1], cached[2]


def _fast_records(body: bytes, columns: list[Column]) -> Rows | None:
    """The common small body, `{"dataframe_records": [{...}, ...]}` (or instances/inputs) with every
    record's keys in signature order and every value a scalar, decoded by the C parser without the
    per-object Python hook; None for anything else, which `parse_json` then reads the full way.

    Only a body the full path would accept with the same rows is taken: a repeated key (which plain
    json.loads drops silently) shows as fewer keys than the body's colons (each key has one colon,
    and a colon inside a string only adds to the count, so equal counts rule repeats out); a value
    that does not convert, or any other shape, goes to the full path, which names the problem
    exactly as before."""
    if body[:1] != b"{":  # then json.loads would read it as UTF-8 (no BOM, no UTF-16/32)
        return None
    try:  # json.loads(body) without its three Python layers: the same decode and the same C scanner
        text = body.decode("utf-8", "surrogatepass")
        doc, end = _scan(text, 0)
    except (ValueError, RecursionError, StopIteration):  # the full path says what is wrong
        return None
    if end != len(text) or type(doc) is not dict or len(doc) != 1:  # trailing text: the full path judges
        return None
    key, records = next(iter(doc.items()))
    if key not in RECORDS_KEYS or type(records) is not list or not records:
        return None
    names, kinds = _plan(columns)
    pairs = 1
    rows = Rows()
    try:
        for r, record in enumerate(records, 1):
            if type(record) is not dict or tuple(record) != names:
                return None
            pairs += len(record)
            row = list(record.values())
            for i, (kind, convert) in enumerate(kinds):
                value = row[i]
                if kind == 0:
                    if type(value) is float and -_INF < value < _INF:
                        continue
                elif kind == 1 and type(value) is str and value:
                    continue
                elif type(value) in (dict, list):
                    return None  # nested: the full path checks its keys and names the problem
                row[i] = convert(value, names[i], r)
            rows.append(row)
    except ClientError:
        return None
    if body.count(b":" if isinstance(body, bytes | bytearray) else ":") != pairs:  # type: ignore[arg-type]
        return None
    return rows


def parse_json(body: bytes, columns: list[Column]) -> Rows:
    if len(body) <= FAST_BYTES:
        rows = _fast_records(body, columns)
        if rows is not None:
            return rows
    doc = _decode(body)
    keys = [k for k in JSON_FORMATS if isinstance(doc, dict) and k in doc]
    if len(keys) != 1:
        raise ClientError(400, f"expected a JSON object with exactly one of {', '.join(JSON_FORMATS)}")
    payload = doc[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise ClientError(400, "dataframe_split needs 'data', a list of rows (and 'columns', a list of names)")
        given = payload.get("columns", [c.name for c in columns])
        if not isinstance(given, list):
            raise ClientError(400, f"dataframe_split 'columns' must be a list of names; got {_short(given)}")
        order = _check_names(given, columns)
        rows = []
        for r, row in enumerate(payload["data"], 1):
            if not isinstance(row, list) or len(row) != len(given):
                raise ClientError(400, f"row {r} has {len(row) if isinstance(row, list) else 'no'} values; "
                                       f"columns lists {len(given)}")
            rows.append([row[i] for i in order])
        return to_rows(rows, columns)
    if isinstance(payload, dict):  # columnar: {"inputs": {"col": [values...]}}
        order = _check_names(list(payload), columns)
        lists = list(payload.values())
        if not all(isinstance(v, list) for v in lists) or len({len(v) for v in lists}) != 1:
            raise ClientError(400, f"{keys[0]}: every column needs a list of the same length")
        return to_rows([[lists[i][r] for i in order] for r in range(len(lists[0]))], columns)
    if not isinstance(payload, list):
        raise ClientError(400, f"{keys[0]}: expected a list of rows")
    return to_rows([_record(record, r, columns) for r, record in enumerate(payload, 1)], columns)


def _text_of(body: bytes, charset: str | None, what: str) -> str:
    try:
        codec = codecs.lookup(charset or "utf-8-sig")
    except (LookupError, ValueError):
        raise ClientError(415, f"unsupported charset {_short(charset)}; send UTF-8") from None
    if not getattr(codec, "_is_text_encoding", True):  # rot13, base64, zlib...: codecs, not charsets
        raise ClientError(415, f"unsupported charset {_short(charset)}; send UTF-8")
    if codec.name == "utf-8":
        codec = codecs.lookup("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    try:
        text = codec.decode(body)[0]
    except Exception as exc:  # UnicodeError, and whatever else an exotic text codec raises
        raise ClientError(400, f"the {what} body is not {codec.name} ({_short(str(exc))})") from None
    if not isinstance(text, str):
        raise ClientError(415, f"unsupported charset {_short(charset)}; send UTF-8")
    return text


def parse_jsonlines(body: bytes, columns: list[Column], charset: str | None = None) -> Rows:
    """One record per line: an object by column name, or a list in signature order."""
    rows = []
    for n, line in enumerate(_text_of(body, charset, "JSON Lines").splitlines(), 1):
        if line.strip():
            rows.append(_record(_decode(line, f"JSON on line {n}"), len(rows) + 1, columns))
    return to_rows(rows, columns)


def names_a_column(cells: list[str], columns: list[Column]) -> bool:
    """A CSV's first row is a header when a cell of it names a column (MLflow's `to_csv` header)."""
    names = {c.name for c in columns}
    return any(cell in names for cell in cells)


def parse_csv(body: bytes, columns: list[Column], charset: str | None = None) -> Rows:
    """Without a header, fields in signature order (SageMaker's CSV); with one, mapped by name in
    any order, as MLflow's scoring server reads `DataFrame.to_csv(index=False)`."""
    text = _text_of(body, charset, "CSV")
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise ClientError(400, f"malformed CSV: {exc}") from None
    if rows and names_a_column(rows[0], columns):
        order = _check_names(rows[0], columns)
        width = len(rows[0])
        for r, row in enumerate(rows[1:], 1):
            if len(row) != width:
                raise ClientError(400, f"CSV row {r} has {len(row)} fields; the header has {width}")
        return to_rows([[row[i] for i in order] for row in rows[1:]], columns)
    for r, row in enumerate(rows, 1):
        if len(row) != len(columns):
            raise ClientError(400, f"CSV row {r} has {len(row)} fields; the model takes {len(columns)}: "
                                   f"{_names(columns)}")
    return to_rows(rows, columns)


def media_type(content_type: str) -> tuple[str, str | None]:
    """`text/csv; charset=utf-8` -> ("text/csv", "utf-8")."""
    kind, *params = content_type.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return kind.strip().lower(), charset


def parse(body: bytes, content_type: str, columns: list[Column]) -> Rows:
    """A request body to checked rows in signature order; ClientError (4xx) for anything else.

    Also the drift job's decoder for captured bodies: `parse(body, content_type, columns)`."""
    kind, charset = ("application/json", None) if content_type == "application/json" else media_type(content_type)
    if kind not in CSV_TYPES + JSON_TYPES + JSONLINES_TYPES:
        raise ClientError(415, f"unsupported content type {_short(content_type)}; send text/csv, application/json "
                               "or application/jsonlines")
    if not body or body.isspace():  # what `not body.strip()` says, without copying a 6 MB body
        raise ClientError(400, "the request body is empty")
    if kind in CSV_TYPES:
        return parse_csv(body, columns, charset)
    if kind in JSONLINES_TYPES:
        return parse_jsonlines(body, columns, charset)
    return parse_json(body, columns)


OUTPUTS = ("application/json", "text/csv", "application/jsonlines")


def choose(accept: str, default: str) -> str | None:
    """The answer's media type from an Accept header (q-values honoured); None when none is offered."""
    if not accept.strip():
        return default
    best, best_q = None, 0.0
    for item in accept.split(","):
        kind, *params = item.split(";")
        kind = kind.strip().lower()
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if kind in JSONLINES_TYPES:
            kind = "application/jsonlines"
        candidates = [default] if kind in ("*/*", "application/*") else [kind] if kind in OUTPUTS else []
        if kind == "text/*":
            candidates = ["text/csv"]
        for candidate in candidates:
            if q > best_q and math.isfinite(q):
                best, best_q = candidate, q
    return best


def answer(labels: np.ndarray, probabilities: np.ndarray | None, kind: str) -> tuple[bytes, str]:
    """JSON `{"predictions": [...], "probabilities": [[...], ...]}`; CSV (one line per row: the label,
    then the class probabilities); or JSON Lines (one object per row), both line-aligned with the input."""
    if kind == "text/csv":
        lines = []
        for i, label in enumerate(labels.tolist()):
            cells = [str(label)] + ([repr(float(p)) for p in probabilities[i]] if probabilities is not None else [])
            lines.append(",".join(cells))
        return ("\n".join(lines) + "\n").encode(), "text/csv"
    if kind == "application/jsonlines":
        probs = probabilities.tolist() if probabilities is not None else None
        out = [json.dumps({"prediction": label, **({"probabilities": probs[i]} if probs else {})})
               for i, label in enumerate(labels.tolist())]
        return ("\n".join(out) + "\n").encode(), "application/jsonlines"
    if len(labels) <= FAST_ANSWER_ROWS:
        fast = _small_json(labels.tolist(), None if probabilities is None else probabilities.tolist())
        if fast is not None:
            return fast, "application/json"
    if len(labels) <= ANSWER_CHUNK:
        payload: dict[str, Any] = {"predictions": labels.tolist()}
        if probabilities is not None:
            payload["probabilities"] = probabilities.tolist()
        return json.dumps(payload).encode(), "application/json"
    # The same JSON, encoded a chunk at a time: one json.dumps of 25,000 rows holds the GIL for tens
    # of milliseconds, which the event loop (answering /ping) would wait out.
    parts = ['{"predictions": [', ", ".join(_chunks(labels.tolist())), "]"]
    if probabilities is not None:
        parts += [', "probabilities": [', ", ".join(_chunks(probabilities.tolist())), "]"]
    return ("".join(parts) + "}").encode(), "application/json"


ANSWER_CHUNK = 1000
FAST_ANSWER_ROWS = 16


def _small_json(labels: list[Any], probabilities: list[list[Any]] | None) -> bytes | None:
    """The JSON answer of a few rows, byte for byte what json.dumps writes, formatted directly: for a
    1-row answer json.dumps' encoder set-up costs more than the text. None for anything but int or
    string labels and finite float probabilities (json.dumps then writes it)."""
    cells = []
    for label in labels:
        kind = type(label)
        if kind is int:
            cells.append(int.__repr__(label))
        elif kind is str:
            cells.append(encode_basestring_ascii(label))
        else:
            return None
    text = '{"predictions": [' + ", ".join(cells) + "]"
    if probabilities is not None:
        rows = []
        for row in probabilities:
            for p in row:
                if type(p) is not float or not -_INF < p < _INF:
                    return None
            rows.append("[" + ", ".join(map(float.__repr__, row)) + "]")
        text += ', "probabilities": [' + ", ".join(rows) + "]"
    return (text + "}").encode()


def _chunks(values: list[Any]) -> list[str]:
    return [json.dumps(values[i:i + ANSWER_CHUNK])[1:-1] for i in range(0, len(values), ANSWER_CHUNK)]
