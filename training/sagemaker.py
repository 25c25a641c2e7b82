"""The SageMaker training-container contract, as SageMaker applies it.

SageMaker runs the image as `<image> train` with each channel's files under
`/opt/ml/input/data/<channel>` and the hyperparameters in
`/opt/ml/input/config/hyperparameters.json`, every value a string. The pipeline renders them with
`json.dumps` (True arrives as "true"), so each value is decoded as JSON first, and kept as the
plain string when it is not JSON. SageMaker adds keys of its own (`_tuning_objective_metric` in
every tuning child, `sagemaker_*`), which are not ours to apply.

The model goes to `/opt/ml/model` (its own mount, so it is copied, not renamed), a failure's
reason to `/opt/ml/output/failure`, and finished search candidates to `/opt/ml/checkpoints`,
which managed spot training syncs to S3 and restores after an interruption. SM_ROOT moves the
`/opt/ml` root, for tests.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import FAMILIES, ConfigError, TrainingConfig
from .model import parameter_names

CONFIG_KEYS = {"model": "family", "cv_folds": "cv_folds", "n_iter": "n_iter"}
FAILURE_BYTES = 1024


def root() -> Path:
    return Path(os.environ.get("SM_ROOT", "/opt/ml"))


def hyperparameters_path() -> Path:
    return root() / "input" / "config" / "hyperparameters.json"


def active() -> bool:
    return hyperparameters_path().is_file()


def decode(text: str) -> Any:
    """A hyperparameter value: JSON when it is JSON ("false", "0.1", "null", "[1, 2]"), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def reserved(key: str) -> bool:
    """Keys SageMaker sets itself: `_tuning_objective_metric`, `sagemaker_program` and the like."""
    return key.startswith("_") or key.startswith("sagemaker_")


def hyperparameters() -> dict[str, Any]:
    """Our hyperparameters, decoded, without the keys SageMaker adds."""
    path = hyperparameters_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object; got {raw!r}")
    return {str(k): decode(v) if isinstance(v, str) else v for k, v in raw.items() if not reserved(str(k))}


def apply(config: TrainingConfig, params: dict[str, Any]) -> tuple[TrainingConfig, dict[str, Any]]:
    """The config with `model` (the family, and with it the family's search space), `cv_folds` and
    `n_iter` applied, and the classifier parameters the other keys fix. A key that is neither is a
    ConfigError naming it and the valid ones: a typo must not train a default model."""
    source = str(hyperparameters_path())
    changes = {CONFIG_KEYS[k]: v for k, v in params.items() if k in CONFIG_KEYS}
    family = changes.get("family", config.family)
    if family not in FAMILIES:
        raise ConfigError(f"{source}: model: expected one of {', '.join(FAMILIES)}; got {family!r}")
    for key in ("cv_folds", "n_iter"):
        value = changes.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < (2 if key ==
                                                                                                    "cv_folds" else 1)):
            raise ConfigError(f"{source}: {key}: expected an integer >= {2 if key == 'cv_folds' else 1}; "
                              f"got {value!r}")
    fixed = {k: v for k, v in params.items() if k not in CONFIG_KEYS}
    valid = parameter_names(family)
    unknown = sorted(set(fixed) - set(valid))
    if unknown:
        raise ConfigError(f"{source}: {', '.join(map(repr, unknown))}: not a parameter of the {family} classifier; "
                          f"valid: {', '.join(valid)} (and model, cv_folds, n_iter)")
    return replace(config, **changes), fixed


def secondary_host() -> str | None:
    """This host's name when the job runs on several instances and this is not the first one.

    The training is not distributed: every host would fit the same model and write the same
    file names into /opt/ml/model, which SageMaker merges into one archive. Only the first host
    (by name, as in resourceconfig.json) trains; the others finish at once.
    """
    path = root() / "input" / "config" / "resourceconfig.json"
    try:
        resources = json.loads(path.read_text(encoding="utf-8"))
        current, hosts = resources["current_host"], sorted(resources["hosts"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return current if hosts and current != hosts[0] else None


def channel(name: str) -> Path:
    return root() / "input" / "data" / name


def has_channel(name: str) -> bool:
    directory = channel(name)
    return directory.is_dir() and any(directory.iterdir())


def config_path() -> Path:
    """The platform's training configuration: the pipeline passes it as the `config` channel.
    Never the example baked into the image, whose features and gates are not the platform's."""
    if not has_channel("config"):
        raise ConfigError(f"no training configuration: the pipeline passes it as the 'config' channel "
                          f"({channel('config')} is missing or empty)")
    return channel("config")


def model_dir() -> Path:
    return root() / "model"


def checkpoint_dir() -> Path:
    return root() / "checkpoints"


def publish(staged: Path) -> Path:
    """Copy a staged model directory into /opt/ml/model: a rename cannot cross into that mount."""
    out = model_dir()
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(staged, out, dirs_exist_ok=True)
    return out


def write_failure(message: str) -> None:
    """The reason SageMaker shows as the job's FailureReason (it reads the first 1 KiB)."""
    path = root() / "output" / "failure"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(message.encode("utf-8")[:FAILURE_BYTES])
