"""One training run: split, search, evaluate, gate, and record everything in MLflow."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from . import baseline, evaluation, model, plots, tracking
from .config import TrainingConfig
from .evaluation import GateResult

HELDOUT = "evaluation/heldout.parquet"


@dataclass
class Split:
    train_x: pd.DataFrame
    train_y: pd.Series
    test_x: pd.DataFrame
    test_y: pd.Series


@dataclass
class Fitted:
    model: Any
    params: dict[str, Any]
    cv_roc_auc: float
    results: dict[str, float]
    gates: list[GateResult]
    split: Split

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass
class TrainResult:
    run_id: str
    version: str | None
    fitted: Fitted
    notes: list[str] = field(default_factory=list)


def split(frame: pd.DataFrame, config: TrainingConfig) -> Split:
    x, y = frame[config.features], frame[config.target]
    train_x, test_x, train_y, test_y = train_test_split(
        x, y, test_size=config.test_size, stratify=y, random_state=config.seed)
    return Split(train_x, train_y, test_x, test_y)


def fit(frame: pd.DataFrame, config: TrainingConfig, fixed: dict[str, Any] | None = None) -> Fitted:
    """Search and fit on the training split, then evaluate and gate on the held-out split."""
    parts = split(frame, config)
    best, params, cv_auc = model.search(config, parts.train_x, parts.train_y, fixed)
    results = {**evaluation.metrics(best, parts.test_x, parts.test_y), **evaluation.latency_ms(best, parts.test_x)}
    return Fitted(best, params, cv_auc, results, evaluation.check_gates(config.gates, results), parts)


def trusted_types(fitted_model: Any) -> list[str]:
    """The types skops must be told to trust to load this model: the ones it holds, because we
    trained it here ourselves (skops refuses unknown types in files it did not write)."""
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(fitted_model)))


def _signature_example(fitted: Fitted) -> tuple[Any, pd.DataFrame]:
    from mlflow.models import infer_signature

    example = fitted.split.train_x.head(5)
    return infer_signature(example, fitted.model.predict(example)), example


def record(config: TrainingConfig, fitted: Fitted, data_source: str) -> TrainResult:
    """Log the run; register the model and alias it `candidate` only when every gate passed."""
    import mlflow

    tracking.configure()
    experiment_id = tracking.experiment(config.platform)
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({"family": config.family, "data": data_source, "train_rows": len(fitted.split.train_x),
                           "test_rows": len(fitted.split.test_x), "cv_folds": config.cv_folds,
                           "n_iter": config.n_iter, **{f"best_{k}": v for k, v in fitted.params.items()}})
        mlflow.log_metrics({**fitted.results, "cv_roc_auc": fitted.cv_roc_auc})
        for path in plots.write_all(fitted.model, fitted.split.test_x, fitted.split.test_y, Path(tmp) / "plots"):
            mlflow.log_artifact(str(path), "plots")
        base = baseline.baseline(fitted.split.train_x, list(config.numeric), list(config.categorical))
        mlflow.log_dict(base, "baseline.json")
        heldout = Path(tmp) / "heldout.parquet"
        fitted.split.test_x.assign(**{config.target: fitted.split.test_y}).to_parquet(heldout)
        mlflow.log_artifact(str(heldout), "evaluation")
        mlflow.log_dict({"gates": [g.__dict__ for g in fitted.gates]}, "evaluation/gates.json")
        version = None
        if fitted.passed:
            signature, example = _signature_example(fitted)
            info = mlflow.sklearn.log_model(fitted.model, name="model", signature=signature, input_example=example,
                                            registered_model_name=config.platform,
                                            skops_trusted_types=trusted_types(fitted.model))
            version = str(info.registered_model_version)
            tracking.set_alias(config.platform, tracking.CANDIDATE, version)
            mlflow.set_tag("gate_status", "passed")
        else:
            mlflow.set_tag("gate_status", "failed")
            mlflow.set_tag("failed_gates", ", ".join(g.gate for g in fitted.gates if not g.passed))
            mlflow.end_run(status="FAILED")
        return TrainResult(run.info.run_id, version, fitted)


def summary(result: TrainResult) -> str:
    f = result.fitted
    lines = [f"run {result.run_id}: " + ", ".join(f"{k} {v:.4f}" for k, v in f.results.items())]
    lines += [g.message for g in f.gates]
    if result.version:
        lines.append(f"registered as version {result.version} with alias '{tracking.CANDIDATE}'")
    else:
        lines.append("not registered: a gate failed (the run is recorded as FAILED)")
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
