"""One training run: split, search, evaluate, gate, and record everything in MLflow."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import baseline, evaluation, model, plots, tracking
from .checkpoint import Checkpoint, fingerprint
from .config import TrainingConfig
from .evaluation import GateResult
from .split import Split, check_classes, min_class_rows
from .split import split as split_frame

HELDOUT = "evaluation/heldout.parquet"


@dataclass
class Fitted:
    model: Any
    params: dict[str, Any]
    cv_roc_auc: float
    results: dict[str, float]
    gates: list[GateResult]
    split: Split
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass
class TrainResult:
    run_id: str
    version: str | None
    fitted: Fitted
    notes: list[str] = field(default_factory=list)


def fit(frame: pd.DataFrame, config: TrainingConfig, fixed: dict[str, Any] | None = None,
        test: pd.DataFrame | None = None, checkpoints: Path | None = None) -> Fitted:
    """Search and fit on the training rows, then evaluate and gate on the held-out ones: `test`
    when given (the pipeline's split step made it), else the id-hash split of `frame`.

    With `checkpoints`, finished search candidates are kept there, and a restarted run resumes.
    """
    if test is None:
        parts = split_frame(frame, config)
    else:
        parts = Split(frame[config.features], frame[config.target], test[config.features], test[config.target])
        check_classes(parts.train_y, config, "training data", min_class_rows(config))
        check_classes(parts.test_y, config, "test data", 1)
    checkpoint = None
    if checkpoints is not None:
        checkpoint = Checkpoint(checkpoints, fingerprint(config, parts.train_x, parts.train_y, fixed))
    found = model.search(config, parts.train_x, parts.train_y, fixed, checkpoint)
    results = {**evaluation.metrics(found.model, parts.test_x, parts.test_y),
               **evaluation.latency_ms(found.model, parts.test_x)}
    return Fitted(found.model, found.params, found.cv_roc_auc, results, evaluation.check_gates(config.gates, results),
                  parts, found.failures)


def trusted_types(fitted_model: Any) -> list[str]:
    """The types skops must be told to trust to load this model: the ones it holds, because we
    trained it here ourselves (skops refuses unknown types in files it did not write)."""
    import skops.io

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(fitted_model)))


# What loading the model needs (mlflow adds itself); pinned as in the image, so that a model server does
# not install whatever else happened to be importable at training time (pytest, via skops).
MODEL_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "skops")


def pip_requirements() -> list[str]:
    pins = (Path(__file__).resolve().parent / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in pins if line.split("==")[0].strip().lower() in MODEL_PACKAGES]


def model_arguments(config: TrainingConfig, fitted: Fitted) -> dict[str, Any]:
    """What `mlflow.sklearn.log_model` and `save_model` are given, the same locally and in SageMaker."""
    signature, example = signature_example(config, fitted)
    return {"signature": signature, "input_example": example, "pip_requirements": pip_requirements(),
            "skops_trusted_types": trusted_types(fitted.model)}


def signature_example(config: TrainingConfig, fitted: Fitted) -> tuple[Any, pd.DataFrame]:
    """The input schema of the whole training schema, not of the example's rows (a categorical
    that is missing in five rows would be inferred as a double): numeric features are doubles,
    categorical ones strings, and any of them may be missing."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec("double", c, required=False) for c in config.numeric]
                    + [ColSpec("string", c, required=False) for c in config.categorical])
    example = fitted.split.train_x.head(5)
    outputs = infer_signature(example, fitted.model.predict(example)).outputs
    return ModelSignature(inputs=inputs, outputs=outputs), example


def record(config: TrainingConfig, fitted: Fitted, data_source: str) -> TrainResult:
    """Log the run; register the model and alias it `candidate` only when every gate passed."""
    import mlflow

    tracking.configure()
    experiment_id = tracking.experiment(config.platform)
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({"family": config.family, "data": data_source, "train_rows": len(fitted.split.train_x),
                           "test_rows": len(fitted.split.test_x), "cv_folds": config.cv_folds,
                           "n_iter": config.n_iter, "failed_candidates": len(fitted.failures),
                           **{f"best_{k}": v for k, v in fitted.params.items()}})
        if fitted.failures:
            mlflow.log_text("\n".join(fitted.failures) + "\n", "search/failed_candidates.txt")
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
            info = mlflow.sklearn.log_model(fitted.model, name="model", registered_model_name=config.platform,
                                            **model_arguments(config, fitted))
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
    if f.failures:
        lines.append(f"{len(f.failures)} search candidates failed (search/failed_candidates.txt):")
        lines += [f"  {failure}" for failure in f.failures]
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
