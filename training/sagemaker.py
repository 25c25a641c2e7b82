"""The SageMaker training-container contract.

SageMaker runs the image as `<image> train` with the data of each channel under
`/opt/ml/input/data/<channel>`, hyperparameters (all strings) in
`/opt/ml/input/config/hyperparameters.json`; the model goes to `/opt/ml/model` and a failure's
reason to `/opt/ml/output/failure`. SM_ROOT moves the `/opt/ml` root, for tests.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import FAMILIES, ConfigError, TrainingConfig

CONFIG_KEYS = {"model": "family", "cv_folds": "cv_folds", "n_iter": "n_iter"}


def root() -> Path:
    return Path(os.environ.get("SM_ROOT", "/opt/ml"))


def active() -> bool:
    return (root() / "input" / "config" / "hyperparameters.json").is_file()


def _value(text: str) -> Any:
    """SageMaker passes every hyperparameter as a string; recover numbers and null."""
    if text in ("None", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def hyperparameters() -> dict[str, Any]:
    path = root() / "input" / "config" / "hyperparameters.json"
    raw = json.loads(path.read_text()) if path.is_file() else {}
    return {str(k): _value(str(v)) for k, v in raw.items()}


def apply(config: TrainingConfig, params: dict[str, Any]) -> tuple[TrainingConfig, dict[str, Any]]:
    """The config with `model`, `cv_folds` and `n_iter` applied, and the classifier parameters to fix."""
    changes = {CONFIG_KEYS[k]: v for k, v in params.items() if k in CONFIG_KEYS}
    if "family" in changes and changes["family"] not in FAMILIES:
        raise ConfigError(f"hyperparameters.json: model: expected one of {', '.join(FAMILIES)}; "
                          f"got {changes['family']!r}")
    fixed = {k: v for k, v in params.items() if k not in CONFIG_KEYS}
    return replace(config, **changes), fixed


def channel_file(channel: str = "train") -> Path:
    """The one CSV or Parquet file of a channel."""
    directory = root() / "input" / "data" / channel
    files = sorted(p for p in directory.glob("*") if p.suffix.lower() in (".csv", ".parquet", ".pq"))
    if not files:
        raise FileNotFoundError(f"{directory}: no .csv or .parquet file in the '{channel}' channel")
    return files[0]


def model_dir() -> Path:
    return root() / "model"


def write_failure(message: str) -> None:
    path = root() / "output" / "failure"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(message[:1024])
