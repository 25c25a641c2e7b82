"""Training data: a deterministic sample generator, loading CSV or Parquet, and strict validation.

Validation runs before any training and reports every problem with the column and row (the
row is the 1-based data row; in a CSV with a header it sits on line row + 1), so a bad file
never produces a model.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from .config import TrainingConfig

CONTRACTS = ["Month-to-month", "One year", "Two year"]
PAYMENTS = ["Electronic check", "Mailed check", "Bank transfer", "Credit card"]
INTERNET = ["DSL", "Fiber optic", "No"]
MAX_LISTED = 5


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


def _check_shape(path: Path) -> None:
    """Every CSV line holds as many fields as the header; pandas would pad or shift them silently."""
    with path.open(newline="", encoding="utf-8") as handle:
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


def read(path: Path) -> pd.DataFrame:
    """The raw table, every cell as text (CSV) or as stored (Parquet); DataError when unreadable."""
    if not path.is_file():
        raise DataError([f"{path}: no such file"])
    if path.stat().st_size == 0:
        raise DataError([f"{path}: the file is empty"])
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        _check_shape(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], index_col=False)
    except DataError:
        raise
    except (pd.errors.ParserError, csv.Error) as exc:
        raise DataError([f"{path}: not a well-formed CSV file: {exc}"]) from None
    except pd.errors.EmptyDataError:
        raise DataError([f"{path}: the file has no header and no rows"]) from None
    except UnicodeDecodeError as exc:
        raise DataError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except (OSError, ValueError) as exc:
        raise DataError([f"{path}: cannot be read: {exc}"]) from None


def _listed(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_LISTED])
    return shown + (f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else "")


def validate(frame: pd.DataFrame, config: TrainingConfig, source: str) -> pd.DataFrame:
    """The frame with typed columns, or DataError listing every problem with column and row."""
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

    typed = frame[expected].copy()
    for column in config.numeric:
        values = pd.to_numeric(typed[column], errors="coerce")
        bad = typed[column].notna() & values.isna()
        if bad.any():
            rows = [int(i) + 1 for i in np.flatnonzero(bad.to_numpy())]
            example = typed[column][bad].iloc[0]
            problems.append(f"{source}: column {column!r}, row {_listed(rows)}: expected a number; got {example!r}")
        typed[column] = values.astype("float64")
    for column in config.categorical:
        # One marker for a missing category everywhere (CSV, Parquet, JSON requests): NaN.
        typed[column] = typed[column].astype("object").where(typed[column].notna(), np.nan)

    target = pd.to_numeric(typed[config.target], errors="coerce")
    missing = typed[config.target].isna()
    if missing.any():
        rows = [int(i) + 1 for i in np.flatnonzero(missing.to_numpy())]
        problems.append(f"{source}: column {config.target!r} (the target), row {_listed(rows)}: missing value")
    labels = set(target.dropna().unique().tolist())
    bad_target = typed[config.target].notna() & ~target.isin([0, 1])
    if bad_target.any():
        rows = [int(i) + 1 for i in np.flatnonzero(bad_target.to_numpy())]
        example = typed[config.target][bad_target].iloc[0]
        problems.append(f"{source}: column {config.target!r} (the target), row {_listed(rows)}: expected 0 or 1; "
                        f"got {example!r} (the target must be binary)")
    elif len(labels) < 2 and not missing.all():
        problems.append(f"{source}: column {config.target!r} (the target) holds only the class "
                        f"{sorted(labels)[0]:g}; training needs both 0 and 1")
    if problems:
        raise DataError(problems)
    typed[config.target] = target.astype(int)
    return typed


def load(path: Path, config: TrainingConfig) -> pd.DataFrame:
    return validate(read(path), config, str(path))
