"""Training data: a deterministic sample generator, loading CSV or Parquet, and strict validation.

Validation runs before any training and reports every problem with the file, column and row
(the row is the 1-based data row of that file; in a CSV with a header it sits on line row + 1),
so a bad file never produces a model. A data source is one file or a directory of shards, read
whole, as a SageMaker channel delivers it.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import TrainingConfig

CONTRACTS = ["Month-to-month", "One year", "Two year"]
PAYMENTS = ["Electronic check", "Mailed check", "Bank transfer", "Credit card"]
INTERNET = ["DSL", "Fiber optic", "No"]
MAX_LISTED = 5
NAN_TEXTS = ("NaN", "nan", "NAN")  # besides empty cells: missing, as pandas and Spark write it for floats
PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"


class DataError(ValueError):
    """Input data that cannot be trained on; one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def generate_churn(rows: int = 5000, seed: int = 7) -> pd.DataFrame:
    """A telco-style churn data set: numeric and categorical columns, a few missing values, and
    churn (about a quarter of customers) driven by contract, tenure, charges and support calls."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(CONTRACTS, rows, p=[0.55, 0.25, 0.20])
    tenure = np.where(contract == "Month-to-month", rng.integers(0, 40, rows), rng.integers(6, 73, rows))
    internet = rng.choice(INTERNET, rows, p=[0.35, 0.45, 0.20])
    base = np.select([internet == "Fiber optic", internet == "DSL"], [75.0, 50.0], 20.0)
    monthly = np.round(base + rng.normal(0, 12, rows).clip(-15, 45), 2)
    total = np.round(monthly * tenure + rng.normal(0, 20, rows), 2).clip(0)
    payment = rng.choice(PAYMENTS, rows, p=[0.35, 0.2, 0.22, 0.23])
    support = rng.poisson(1.2 + 1.5 * (internet == "Fiber optic"), rows)
    senior = (rng.random(rows) < 0.16).astype(int)
    paperless = rng.choice(["Yes", "No"], rows, p=[0.6, 0.4])
    logit = (-2.0 + 1.5 * (contract == "Month-to-month") - 0.9 * (contract == "Two year")
             - 0.045 * tenure + 0.018 * (monthly - 60) + 0.35 * support + 0.6 * (payment == "Electronic check")
             + 0.3 * senior + rng.normal(0, 0.5, rows))
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(1, rows + 1)],
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "support_calls": support,
        "senior_citizen": senior,
        "contract": contract,
        "payment_method": payment,
        "internet_service": internet,
        "paperless_billing": paperless,
        "churned": churned,
    })
    # Real exports have gaps: a few percent missing in some columns.
    for column, share in (("total_charges", 0.02), ("monthly_charges", 0.01), ("payment_method", 0.02)):
        frame.loc[rng.random(rows) < share, column] = np.nan
    return frame


def _open_text(path: Path) -> Any:
    """A CSV shard as text, gunzipped when it is gzip (by name or by its magic bytes)."""
    if path.suffix.lower() == ".gz" or _magic(path, 2) == GZIP_MAGIC:
        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return path.open(newline="", encoding="utf-8")


def _magic(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES or _magic(path, 4) == PARQUET_MAGIC


def _check_shape(path: Path) -> list[str]:
    """The header; every CSV line holds as many fields as it, since pandas would pad or shift them silently."""
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataError([f"{path}: the file has no header and no rows"])
        bad = [(reader.line_num, len(row)) for row in reader if row and len(row) != len(header)]
    if bad:
        lines = ", ".join(f"line {n} has {k}" for n, k in bad[:MAX_LISTED])
        more = f" (and {len(bad) - MAX_LISTED} more lines)" if len(bad) > MAX_LISTED else ""
        raise DataError([f"{path}: not a well-formed CSV file: the header has {len(header)} fields, but "
                         f"{lines}{more}"])
    return header


def _read_csv(path: Path, numeric: Sequence[str]) -> pd.DataFrame:
    """Numeric columns parsed as numbers straight away (a text copy of a million rows costs
    gigabytes); a file with a cell that is not a finite number is read again as text, so that
    validation can name the cell and quote it as written."""
    header = _check_shape(path)
    options: dict[str, Any] = {"keep_default_na": False, "index_col": False,
                               "compression": "gzip" if _magic(path, 2) == GZIP_MAGIC else None}
    as_numbers = [c for c in numeric if c in header]
    try:
        frame = pd.read_csv(path, dtype={c: ("float64" if c in as_numbers else str) for c in header},
                            na_values={c: (["", *NAN_TEXTS] if c in as_numbers else [""]) for c in header},
                            **options)
        if not as_numbers or not np.isinf(frame[as_numbers].to_numpy()).any():
            return frame
    except ValueError:
        pass  # a cell that is not a number: validation finds and names it
    return pd.read_csv(path, dtype=str, na_values=[""], **options)


def _read_file(path: Path, numeric: Sequence[str]) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataError([f"{path}: the file is empty"])
    try:
        if is_parquet(path):
            return pd.read_parquet(path)
        return _read_csv(path, numeric)
    except DataError:
        raise
    except (pd.errors.ParserError, csv.Error) as exc:
        raise DataError([f"{path}: not a well-formed CSV file: {exc}"]) from None
    except pd.errors.EmptyDataError:
        raise DataError([f"{path}: the file has no header and no rows"]) from None
    except UnicodeDecodeError as exc:
        raise DataError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except (OSError, EOFError, ValueError) as exc:
        raise DataError([f"{path}: cannot be read: {exc}"]) from None


def data_files(path: Path) -> list[Path]:
    """Every data file of a file or directory (recursively, as a SageMaker channel holds it),
    without hidden files and markers such as Spark's `_SUCCESS` or `.crc` files."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError([f"{path}: no such file or directory"])
    found = sorted(p for p in path.rglob("*") if p.is_file() and not any(
        part.startswith((".", "_")) for part in p.relative_to(path).parts))
    if not found:
        raise DataError([f"{path}: the directory holds no data file"])
    return found


def _partitions(path: Path, root: Path) -> dict[str, str]:
    """`key=value` directories between the channel root and a Parquet file (a partitioned data set)."""
    parts = path.relative_to(root).parts[:-1] if path != root else ()
    return dict(part.split("=", 1) for part in parts if "=" in part)


def read(path: Path, numeric: Sequence[str] = (), wanted: Sequence[str] = ()) -> pd.DataFrame:
    """The raw table of a file or a directory of shards (CSV with or without extension, .csv.gz,
    Parquet, partitioned Parquet), with one header check across them; DataError when unreadable.

    `numeric` columns of CSV files are parsed as numbers; a partition key named in `wanted` becomes
    a column (other keys, such as a date, stay out). `attrs["sources"]` lists (file, rows), so
    validation can name the file and row of a bad cell.
    """
    frames, sources = [], []
    for file in data_files(path):
        frame = _read_file(file, numeric)
        for key, value in _partitions(file, path).items():
            if key in wanted and key not in frame.columns:
                frame[key] = value
        if frames and set(frame.columns) != set(frames[0].columns):
            first = sources[0][0]
            extra = sorted(set(frame.columns) - set(frames[0].columns))
            missing = sorted(set(frames[0].columns) - set(frame.columns))
            raise DataError([f"{file}: its columns differ from those of {first}: "
                             + "; ".join(s for s in (extra and f"extra {', '.join(map(repr, extra))}",
                                                     missing and f"missing {', '.join(map(repr, missing))}") if s)])
        frames.append(frame)
        sources.append((str(file), len(frame)))
    table = frames[0] if len(frames) == 1 else pd.concat(
        [f[list(frames[0].columns)] for f in frames], ignore_index=True)
    table.attrs["sources"] = sources
    return table


def _where(frame: pd.DataFrame, source: str, bad: np.ndarray) -> list[tuple[str, list[int]]]:
    """(file, 1-based rows in that file) for each file holding a flagged row."""
    rows = np.flatnonzero(bad)
    if not len(rows):
        return []
    sources = frame.attrs.get("sources") or [(source, len(frame))]
    if len(sources) == 1:  # the file itself, also when it is the only one in a directory
        return [(sources[0][0], [int(r) + 1 for r in rows])]
    out, start = [], 0
    for name, count in sources:
        inside = rows[(rows >= start) & (rows < start + count)]
        if len(inside):
            out.append((name, [int(r - start) + 1 for r in inside]))
        start += count
    return out


def _listed(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_LISTED])
    return shown + (f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else "")


def category_text(value: Any) -> Any:
    """One text per category however it was stored (the serving side applies the same rule):
    booleans "True"/"False", integers str(int), floats as Python prints them, text unchanged;
    missing stays NaN."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)) or value is pd.NA:
        return np.nan
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(float(value))
    return str(value)


def categorical_text(values: pd.Series) -> pd.Series:
    """`category_text` of every value, computed once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = np.array([category_text(u) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(texts[codes], index=values.index, dtype=object)


def _numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A column as float64 and the cells that are not numbers (empty cells and NaN are missing)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64"), pd.Series(False, index=values.index)
    text = values.astype("object")
    spelled_nan = text.map(lambda v: isinstance(v, str) and v.strip() in NAN_TEXTS, na_action="ignore")
    numbers = pd.to_numeric(text.where(~spelled_nan.fillna(False).astype(bool)), errors="coerce")
    bad = values.notna() & numbers.isna() & ~spelled_nan.fillna(False).astype(bool)
    return numbers.astype("float64"), bad


def validate(frame: pd.DataFrame, config: TrainingConfig, source: str) -> pd.DataFrame:
    """The frame with typed columns, or DataError listing every problem with file, column and row."""
    problems = []
    if frame.empty:
        raise DataError([f"{source}: the file has a header but no rows"])
    expected = config.columns
    for column in expected:
        if column not in frame.columns:
            problems.append(f"{source}: missing column {column!r} (training/config.yaml data section)")
    for column in frame.columns:
        if column not in expected:
            problems.append(f"{source}: unexpected column {column!r}; add it to training/config.yaml or drop it")
    if problems:
        raise DataError(problems)

    typed = frame[expected]  # copy-on-write: columns are replaced below, the input is not copied
    for column in config.numeric:
        raw = frame[column]
        values, bad = _numbers(raw)
        for name, rows in _where(frame, source, bad.to_numpy()):
            problems.append(f"{name}: column {column!r}, row {_listed(rows)}: expected a number; "
                            f"got {raw[bad].iloc[0]!r}")
        infinite = np.isinf(values.to_numpy())
        for name, rows in _where(frame, source, infinite):
            shown = raw[infinite].iloc[0]
            problems.append(f"{name}: column {column!r}, row {_listed(rows)}: expected a finite number; got "
                            f"{shown if isinstance(shown, str) else str(float(shown))!r}"
                            f"{' (out of range for a 64-bit float)' if _overflows(shown) else ''}")
        typed[column] = values
    for column in config.categorical:
        # One text per category and one marker for a missing one everywhere (CSV, Parquet, requests): NaN.
        typed[column] = categorical_text(frame[column])
    if config.id_column:
        ids = frame[config.id_column]
        for name, rows in _where(frame, source, ids.isna().to_numpy()):
            problems.append(f"{name}: column {config.id_column!r} (the id column), row {_listed(rows)}: "
                            "missing value")
        typed[config.id_column] = categorical_text(ids)

    raw_target = frame[config.target]
    target = pd.to_numeric(raw_target.astype("object"), errors="coerce")
    missing = raw_target.isna()
    for name, rows in _where(frame, source, missing.to_numpy()):
        problems.append(f"{name}: column {config.target!r} (the target), row {_listed(rows)}: missing value")
    labels = set(target.dropna().unique().tolist())
    bad_target = raw_target.notna() & ~target.isin([0, 1])
    for name, rows in _where(frame, source, bad_target.to_numpy()):
        example = raw_target[bad_target].iloc[0]
        problems.append(f"{name}: column {config.target!r} (the target), row {_listed(rows)}: expected 0 or 1; "
                        f"got {str(example)!r} (the target must be binary)")
    if not bad_target.any() and len(labels) < 2 and not missing.all():
        problems.append(f"{source}: column {config.target!r} (the target) holds only the class "
                        f"{sorted(labels)[0]:g}; training needs both 0 and 1")
    if problems:
        raise DataError(problems)
    typed[config.target] = target.astype(int)
    return typed


def _overflows(text: Any) -> bool:
    """A number written out that is too large for a float (1e400), as opposed to `inf` itself."""
    return isinstance(text, str) and text.strip().lower().lstrip("+-") not in ("inf", "infinity")


def load(path: Path, config: TrainingConfig) -> pd.DataFrame:
    """A validated frame from a file or a directory of shards (a SageMaker channel)."""
    return validate(read(path, config.numeric, config.columns), config, str(path))
