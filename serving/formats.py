"""Request bodies to a typed DataFrame, checked against the model signature; answers back out.

Accepted: `text/csv` (with or without a header row) and `application/json` in MLflow's scoring
formats (`dataframe_split`, `dataframe_records`, `instances`, `inputs`), so MLflow and SageMaker
clients work unchanged. Every problem is a ClientError naming the column and row; it becomes a
4xx answer, never a 500. Empty cells and nulls are missing values, which the model imputes.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = {"double", "float", "long", "integer"}
JSON_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class ClientError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Column:
    name: str
    type: str


def _number(value: Any, column: str, row: int) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        raise ClientError(422, f"column {column!r}, row {row}: expected a number; got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ClientError(422, f"column {column!r}, row {row}: expected a number; got {value!r}")


def _text(value: Any, column: str, row: int) -> Any:
    if value is None or value == "":
        return np.nan  # the one marker for a missing category the model was trained with
    if isinstance(value, str):
        return value
    raise ClientError(422, f"column {column!r}, row {row}: expected a string; got {value!r}")


class Rows(list):
    """Checked, typed rows in signature order: a request's input before it joins a batch."""


def to_rows(rows: list[list[Any]], columns: list[Column]) -> Rows:
    """Each value converted to its column's type; 422 naming column and row when one cannot be."""
    if not rows:
        raise ClientError(400, "the request holds no rows")
    converters = [_number if c.type in NUMERIC else _text for c in columns]
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
    """Positions of the signature's columns in `given`; 400 for a missing or unexpected column."""
    expected = [c.name for c in columns]
    for name in given:
        if name not in expected:
            raise ClientError(400, f"unexpected column {name!r}; the model takes {_names(columns)}")
    for name in expected:
        if name not in given:
            raise ClientError(400, f"missing column {name!r}; the model takes {_names(columns)}")
    return [given.index(name) for name in expected]


def _records(records: list[Any], columns: list[Column]) -> list[list[Any]]:
    rows = []
    for r, record in enumerate(records, 1):
        if isinstance(record, dict):
            order = _check_names(list(record), columns)
            values = list(record.values())
            rows.append([values[i] for i in order])
        elif isinstance(record, list):
            if len(record) != len(columns):
                raise ClientError(400, f"row {r} has {len(record)} values; the model takes {len(columns)}: "
                                       f"{_names(columns)}")
            rows.append(record)
        else:
            raise ClientError(400, f"row {r}: expected an object or a list; got {record!r}")
    return rows


def parse_json(body: bytes, columns: list[Column]) -> Rows:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientError(400, f"malformed JSON: {exc}") from None
    keys = [k for k in JSON_FORMATS if isinstance(doc, dict) and k in doc]
    if len(keys) != 1:
        raise ClientError(400, f"expected a JSON object with exactly one of {', '.join(JSON_FORMATS)}")
    payload = doc[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise ClientError(400, "dataframe_split needs 'columns' and 'data'")
        given = payload.get("columns", [c.name for c in columns])
        order = _check_names(list(given), columns)
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
    return to_rows(_records(payload, columns), columns)


def parse_csv(body: bytes, columns: list[Column]) -> Rows:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClientError(400, f"the CSV body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise ClientError(400, f"malformed CSV: {exc}") from None
    if rows and rows[0] == [c.name for c in columns]:
        rows = rows[1:]
    for r, row in enumerate(rows, 1):
        if len(row) != len(columns):
            raise ClientError(400, f"CSV row {r} has {len(row)} fields; the model takes {len(columns)}: "
                                   f"{_names(columns)}")
    return to_rows(rows, columns)


def parse(body: bytes, content_type: str, columns: list[Column]) -> Rows:
    if not body.strip():
        raise ClientError(400, "the request body is empty")
    kind = content_type.split(";")[0].strip().lower()
    if kind == "text/csv":
        return parse_csv(body, columns)
    if kind in ("application/json", ""):
        return parse_json(body, columns)
    raise ClientError(415, f"unsupported content type {content_type!r}; send text/csv or application/json")


def answer(labels: np.ndarray, probabilities: np.ndarray | None, accept: str) -> tuple[bytes, str]:
    """JSON `{"predictions": [...], "probabilities": [[...], ...]}`, or CSV when Accept asks for it
    (one line per row: the label, then the class probabilities)."""
    if "text/csv" in accept and "application/json" not in accept:
        lines = []
        for i, label in enumerate(labels.tolist()):
            cells = [str(label)] + ([repr(float(p)) for p in probabilities[i]] if probabilities is not None else [])
            lines.append(",".join(cells))
        return ("\n".join(lines) + "\n").encode(), "text/csv"
    payload: dict[str, Any] = {"predictions": labels.tolist()}
    if probabilities is not None:
        payload["probabilities"] = probabilities.tolist()
    return json.dumps(payload).encode(), "application/json"
