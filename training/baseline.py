"""The training baseline that drift detection compares live traffic with (baseline.json).

Per numeric feature: quantiles, a histogram on fixed edges, mean, std and the missing share; per
categorical feature: the frequency of each category and the missing share. Plain JSON, so the
serving side needs neither pandas nor this package to read it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
BINS = 10
VERSION = 1


def numeric(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().to_numpy(dtype=float)
    # Edges at the deciles: every bin holds about a tenth of the training data, which makes PSI stable.
    edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)))
    counts, _ = np.histogram(present, bins=edges)
    return {
        "type": "numeric",
        "count": len(values),
        "missing": float(values.isna().mean()),
        "mean": float(present.mean()),
        "std": float(present.std()),
        "quantiles": {f"{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(present, QUANTILES), strict=True)},
        "histogram": {"edges": [float(e) for e in edges], "frequencies": [float(c) / len(present) for c in counts]},
    }


def categorical(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().astype(str)
    frequencies = present.value_counts(normalize=True).sort_index()
    return {
        "type": "categorical",
        "count": len(values),
        "missing": float(values.isna().mean()),
        "frequencies": {str(k): float(v) for k, v in frequencies.items()},
    }


def baseline(features: pd.DataFrame, numeric_columns: list[str], categorical_columns: list[str]) -> dict[str, Any]:
    return {
        "version": VERSION,
        "rows": len(features),
        "features": {
            **{c: numeric(features[c]) for c in numeric_columns},
            **{c: categorical(features[c]) for c in categorical_columns},
        },
    }
