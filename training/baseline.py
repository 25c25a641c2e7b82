"""The training baseline that drift detection compares live traffic with (baseline.json).

Drift is decided by two-sample tests (`serving/drift/`), so the baseline keeps the training data
itself, not a summary of it, in plain JSON that the serving image reads without pandas or this
package:

- a numeric feature with more than DISCRETE_MAX distinct values ("continuous") keeps its present
  values, sorted: all of them up to SAMPLE_MAX, else a seeded uniform sample of SAMPLE_MAX. The
  drift job counts live values on this grid, which gives the two-sample Kolmogorov-Smirnov
  statistic against the sample exactly (see serving/drift/sketch.py);
- a numeric feature with at most DISCRETE_MAX distinct values ("discrete", e.g. a 0/1 flag) and a
  categorical feature keep the count of each value, for a contingency test;
- every feature keeps its row count and its count of missing values, because a change of the
  missing share is drift.

Mean, std, quantiles, a decile histogram and category frequencies are kept for people reading the
file and the report; no decision uses them. The training image holds only `training/`, so this
module needs nothing from `serving/`: the counting and the tests live on the serving side only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

VERSION = 2
SAMPLE_MAX = 10_000
"""Values kept per continuous feature. Beyond it the sample's ECDF is within
sqrt(ln(2/δ) / (2·SAMPLE_MAX)) of the training ECDF with probability 1-δ (DKW): 0.0195 at δ=0.001."""
DISCRETE_MAX = 20
"""Numeric features with at most this many distinct values are compared as discrete distributions."""
SEED = 0
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
BINS = 10


def _describe(present: np.ndarray) -> dict[str, Any]:
    """Human-readable summary of a numeric feature (not used by any decision)."""
    if present.size == 0:
        return {"mean": None, "std": None, "quantiles": {}, "histogram": {"edges": [], "frequencies": []}}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)))
    counts = np.histogram(present, bins=edges)[0] if edges.size > 1 else np.array([present.size])
    return {
        "mean": float(present.mean()),
        "std": float(present.std()),
        "quantiles": {f"{q:g}": float(v) for q, v in zip(QUANTILES, np.quantile(present, QUANTILES), strict=True)},
        "histogram": {"edges": [float(e) for e in edges], "frequencies": [float(c) / present.size for c in counts]},
    }


def numeric(values: pd.Series) -> dict[str, Any]:
    """Continuous: the (sampled) sorted values; discrete: the count of each distinct value."""
    present = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    spec: dict[str, Any] = {"type": "numeric", "count": len(values), "missing": int(len(values) - present.size)}
    distinct, counts = np.unique(present, return_counts=True)
    if distinct.size <= DISCRETE_MAX:
        spec |= {"kind": "discrete", "values": distinct.tolist(), "counts": counts.tolist()}
    else:
        sample = present
        if present.size > SAMPLE_MAX:
            sample = np.random.default_rng(SEED).choice(present, SAMPLE_MAX, replace=False)
        spec |= {"kind": "continuous", "present": int(present.size), "sampled": bool(present.size > SAMPLE_MAX),
                 "sample": np.sort(sample).tolist()}
    return spec | _describe(present)


def categorical(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().astype(str)
    counts = present.value_counts().sort_index()
    return {
        "type": "categorical",
        "count": len(values),
        "missing": int(len(values) - len(present)),
        "counts": {str(k): int(v) for k, v in counts.items()},
        "frequencies": {str(k): float(v) / max(len(present), 1) for k, v in counts.items()},
    }


def baseline(features: pd.DataFrame, numeric_columns: list[str], categorical_columns: list[str]) -> dict[str, Any]:
    return {
        "version": VERSION,
        "rows": len(features),
        "sample_max": SAMPLE_MAX,
        "discrete_max": DISCRETE_MAX,
        "features": {
            **{c: numeric(features[c]) for c in numeric_columns},
            **{c: categorical(features[c]) for c in categorical_columns},
        },
    }
