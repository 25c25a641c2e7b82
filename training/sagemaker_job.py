"""`python -m training train` inside a SageMaker training job.

Channels: `train` (all of it is searched and fitted on), `test` (optional: the held-out rows the
pipeline's split step made; without it the id-hash split holds out rows as locally) and `config`
(the platform's training configuration). Prints `validation:<metric>=<value>` lines for the
metric definitions (the tuning objective is `validation:cv_roc_auc`: held-out rows must not pick
the winner they then judge), writes the MLflow model and baseline.json to /opt/ml/model, and on
any failure whatsoever writes the reason to /opt/ml/output/failure before exiting non-zero.
"""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path

from . import baseline, sagemaker
from . import train as t
from .config import ConfigError
from .config import load as load_config
from .data import DataError, load
from .model import SearchError


def _train() -> None:
    import mlflow

    config = load_config(sagemaker.config_path())
    config, fixed = sagemaker.apply(config, sagemaker.hyperparameters())
    frame = load(sagemaker.channel("train"), config)
    test = load(sagemaker.channel("test"), config) if sagemaker.has_channel("test") else None
    t.log(f"train channel: {len(frame)} rows" + (f"; test channel: {len(test)} rows" if test is not None else
                                                 f"; holding out {config.test_size:.0%} of ids"))
    fitted = t.fit(frame, config, fixed or None, test=test, checkpoints=sagemaker.checkpoint_dir())
    for name, value in {**fitted.results, "cv_roc_auc": fitted.cv_roc_auc}.items():
        print(f"validation:{name}={value:.6f}", flush=True)  # read by the pipeline's metric definitions
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "model"
        mlflow.sklearn.save_model(fitted.model, staged, **t.model_arguments(config, fitted))
        t.write_json(staged / "baseline.json",
                     baseline.baseline(fitted.split.train_x, list(config.numeric), list(config.categorical)))
        out = sagemaker.publish(staged)
    t.log(f"model written to {out}")


def run() -> int:
    """The exit code: 0 trained; 2 bad configuration or data; 1 anything else."""
    other = sagemaker.secondary_host()
    if other:
        t.log(f"{other}: this training runs on one instance; the first host trains and writes the model")
        return 0
    try:
        _train()
    except (DataError, ConfigError, SearchError) as exc:
        from .cli import report

        lines = report(exc)
        print("\n".join(lines), flush=True)
        sagemaker.write_failure("\n".join(lines))
        return 1 if isinstance(exc, SearchError) else 2
    except Exception as exc:
        traceback.print_exc()
        sagemaker.write_failure(f"{type(exc).__name__}: {exc}")
        return 1
    return 0
