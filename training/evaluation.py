"""Held-out evaluation, single-row latency, and the quality gates a model must pass."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from .config import Gates

LATENCY_SAMPLES = 200


def metrics(model: Any, features: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    proba = model.predict_proba(features)[:, 1]
    predicted = (proba >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(target, predicted)),
        "precision": float(precision_score(target, predicted, zero_division=0)),
        "recall": float(recall_score(target, predicted, zero_division=0)),
        "f1": float(f1_score(target, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(target, proba)),
        "log_loss": float(log_loss(target, proba, labels=[0, 1])),
    }


def latency_ms(model: Any, features: pd.DataFrame, samples: int = LATENCY_SAMPLES) -> dict[str, float]:
    """p50 and p99 of `predict_proba` on one row at a time, as a real-time endpoint calls it.

    On one thread: a single row gains nothing from OpenMP (histogram boosting), and on a busy
    machine waking a thread team per call measures the neighbours, not the model.
    """
    from threadpoolctl import threadpool_limits

    rows = [features.iloc[[i % len(features)]] for i in range(samples)]
    timings = []
    with threadpool_limits(limits=1):
        model.predict_proba(rows[0])  # warm-up
        for row in rows:
            start = time.perf_counter()
            model.predict_proba(row)
            timings.append((time.perf_counter() - start) * 1000)
    return {"latency_p50_ms": float(np.percentile(timings, 50)), "latency_p99_ms": float(np.percentile(timings, 99))}


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    message: str


def check_gates(gates: Gates, results: dict[str, float]) -> list[GateResult]:
    checks = []
    for gate, metric, higher_is_better in (("min_roc_auc", "roc_auc", True), ("min_accuracy", "accuracy", True),
                                           ("max_latency_ms", "latency_p99_ms", False)):
        limit = getattr(gates, gate)
        if limit is None:
            continue
        value = results[metric]
        passed = value >= limit if higher_is_better else value <= limit
        gap = abs(value - limit)
        if passed:
            message = f"gate {gate} passed: {metric} {value:.4f} vs {limit:g}"
        elif higher_is_better:
            message = f"gate {gate} failed: {metric} {value:.4f} is {gap:.4f} below {limit:g}"
        else:
            message = f"gate {gate} failed: {metric} {value:.2f} ms is {gap:.2f} ms above {limit:g} ms"
        checks.append(GateResult(gate, passed, message))
    return checks
