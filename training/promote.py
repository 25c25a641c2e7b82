"""Champion/challenger promotion: move `production` only for a model that is better for sure.

Both models score the candidate run's held-out data. The candidate wins when its ROC AUC beats
production's by at least the configured margin, and a paired bootstrap (resampling the same rows
for both models) rejects "the gain is at most the margin" at the configured significance.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from . import tracking
from .config import TrainingConfig
from .train import HELDOUT


class PromotionError(RuntimeError):
    """Nothing to promote (no candidate yet)."""


@dataclass
class Decision:
    promoted: bool
    production: str
    reason: str
    report: dict[str, Any]


def paired_bootstrap(y: np.ndarray, candidate: np.ndarray, production: np.ndarray, samples: int,
                     seed: int = 0) -> np.ndarray:
    """AUC(candidate) - AUC(production) on `samples` resamples of the same rows for both."""
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(samples):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue  # a resample with one class has no AUC
        deltas.append(roc_auc_score(y[idx], candidate[idx]) - roc_auc_score(y[idx], production[idx]))
    return np.asarray(deltas)


def compare(config: TrainingConfig, y: np.ndarray, candidate: np.ndarray, production: np.ndarray) -> dict[str, Any]:
    p = config.promotion
    auc_c, auc_p = float(roc_auc_score(y, candidate)), float(roc_auc_score(y, production))
    deltas = paired_bootstrap(y, candidate, production, p.bootstrap_samples, config.seed)
    p_value = float(np.mean(deltas <= p.margin))
    lower = float(np.quantile(deltas, p.alpha))
    better = auc_c - auc_p >= p.margin and p_value < p.alpha
    return {
        "candidate_roc_auc": auc_c,
        "production_roc_auc": auc_p,
        "delta": auc_c - auc_p,
        "margin": p.margin,
        "alpha": p.alpha,
        "bootstrap_samples": len(deltas),
        "p_value": p_value,
        "delta_lower_bound": lower,
        "candidate_is_better": better,
    }


def _load(config: TrainingConfig, version: str) -> Any:
    import mlflow

    return mlflow.sklearn.load_model(f"models:/{config.platform}/{version}")


def _heldout(run_id: str) -> pd.DataFrame:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=HELDOUT, dst_path=tmp)
        return pd.read_parquet(path)


def promote(config: TrainingConfig) -> Decision:
    from mlflow import MlflowClient

    tracking.configure()
    name = config.platform
    candidate = tracking.alias_version(name, tracking.CANDIDATE)
    if candidate is None:
        raise PromotionError(f"no version of '{name}' has the alias '{tracking.CANDIDATE}': run `make train` first")
    production = tracking.alias_version(name, tracking.PRODUCTION)
    client = MlflowClient()
    run_id = client.get_model_version(name, candidate).run_id
    if production is None:
        tracking.set_alias(name, tracking.PRODUCTION, candidate)
        report = {"decision": "promoted", "reason": "there was no production model yet", "candidate": candidate}
        client.log_dict(run_id, report, "promotion/comparison.json")
        return Decision(True, candidate, f"version {candidate} is production: there was no production model yet",
                        report)
    if production == candidate:
        report = {"decision": "unchanged", "reason": "the candidate already is production", "candidate": candidate}
        return Decision(False, production, f"version {candidate} already is production", report)

    heldout = _heldout(run_id)
    y = heldout[config.target].to_numpy()
    features = heldout[config.features]
    scores = {v: _load(config, v).predict_proba(features)[:, 1] for v in (candidate, production)}
    report = compare(config, y, scores[candidate], scores[production])
    report.update({"candidate": candidate, "production": production, "heldout_rows": len(y)})
    if report["candidate_is_better"]:
        tracking.set_alias(name, tracking.PRODUCTION, candidate)
        reason = (f"version {candidate} is production: ROC AUC {report['candidate_roc_auc']:.4f} vs "
                  f"{report['production_roc_auc']:.4f} (+{report['delta']:.4f} >= margin {report['margin']:g}, "
                  f"bootstrap p = {report['p_value']:.3f} < {report['alpha']:g})")
        report["decision"] = "promoted"
    else:
        reason = (f"kept version {production} as production: candidate {candidate} has ROC AUC "
                  f"{report['candidate_roc_auc']:.4f} vs {report['production_roc_auc']:.4f} "
                  f"(delta {report['delta']:+.4f}, margin {report['margin']:g}, bootstrap p = {report['p_value']:.3f},"
                  f" alpha {report['alpha']:g})")
        report["decision"] = "kept"
    report["reason"] = reason
    client.log_dict(run_id, report, "promotion/comparison.json")
    return Decision(report["decision"] == "promoted", tracking.alias_version(name, tracking.PRODUCTION) or "",
                    reason, report)


__all__ = ["Decision", "PromotionError", "compare", "paired_bootstrap", "promote"]
