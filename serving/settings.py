"""The server's knobs, from the environment variables SageMaker (and the user) set.

* `SAGEMAKER_MODEL_SERVER_WORKERS`: server processes (default: the cores this process may use).
* `SAGEMAKER_MODEL_SERVER_TIMEOUT`: seconds a request may take (default 60, as SageMaker's
  inference toolkit); past it the answer is 504, and a model call running longer turns /ping unhealthy.
* `MAX_BODY_BYTES`, else Batch Transform's `SAGEMAKER_MAX_PAYLOAD_IN_MB` (0 there means chunked
  bodies of any size: capped at 100 MB, Batch Transform's largest MaxPayloadInMB), else 6 MB,
  SageMaker real-time's limit.
* `ONLINE_FEATURES`: the feature groups a variant reads per request (serving/online_features.py).
* `SAGEMAKER_MULTI_MODEL`: `true` (SageMaker injects it into a container of a `Mode=MultiModel`
  Model: "Build Your Own Container with Multi Model Server") serves SageMaker's multi-model API
  (serving/multi_model.py); when it is unset, `MLOPS_MULTI_MODEL_MAX_LOADED` being set does too.
* `MLOPS_MULTI_MODEL_MAX_LOADED`: models held in memory at once (default 8); a load past it is 507.
* `MLOPS_MULTI_MODEL_ROOT`: the only directory models are loaded from (default /opt/ml/models,
  where SageMaker extracts each `<name>.tar.gz`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MB = 1024 * 1024
DEFAULT_BODY = 6 * MB
LARGEST_PAYLOAD_MB = 100
DEFAULT_MAX_LOADED = 8  # a few 100-tree forests of tens of MB each on the smallest instance types
MODELS_ROOT = "/opt/ml/models"


class SettingsError(ValueError):
    """An environment variable the server cannot use; the message names it."""


def _number(name: str, default: float, kind: type = int, minimum: float = 0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a {kind.__name__}") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r}: must be at least {minimum}")
    return value


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    workers: int
    timeout: float
    max_body: int
    batch_strategy: str
    multi_model: bool = False
    max_loaded: int = DEFAULT_MAX_LOADED
    models_root: str = MODELS_ROOT

    @property
    def max_payload_mb(self) -> int:
        return max(1, self.max_body // MB)


def load() -> Settings:
    payload_mb = _number("SAGEMAKER_MAX_PAYLOAD_IN_MB", -1)
    if "MAX_BODY_BYTES" in os.environ:
        max_body = int(_number("MAX_BODY_BYTES", DEFAULT_BODY, minimum=1))
    elif payload_mb > 0:
        max_body = int(payload_mb) * MB
    elif payload_mb == 0:
        max_body = LARGEST_PAYLOAD_MB * MB
    else:
        max_body = DEFAULT_BODY
    from .online_features import load as online_features  # a bad ONLINE_FEATURES stops the server before it binds
    online_features()
    multi = multi_model()
    return Settings(
        # One process in multi-model mode: SageMaker's load and unload calls reach one process, and
        # every invocation must find the models that process loaded.
        workers=1 if multi else int(_number("SAGEMAKER_MODEL_SERVER_WORKERS", cores(), minimum=1)),
        timeout=float(_number("SAGEMAKER_MODEL_SERVER_TIMEOUT", 60.0, float, minimum=0.001)),
        max_body=max_body,
        batch_strategy=os.environ.get("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD").strip().upper() or "MULTI_RECORD",
        multi_model=multi,
        max_loaded=int(_number("MLOPS_MULTI_MODEL_MAX_LOADED", DEFAULT_MAX_LOADED, minimum=1)),
        models_root=os.environ.get("MLOPS_MULTI_MODEL_ROOT", "").strip() or MODELS_ROOT,
    )


def multi_model() -> bool:
    """Whether to serve SageMaker's multi-model API. SAGEMAKER_MULTI_MODEL decides when set (the
    platform's own containers read "true" or "True"); else the bound's presence, which the stacks set
    only on a multi-model variant."""
    raw = os.environ.get("SAGEMAKER_MULTI_MODEL", "").strip().lower()
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    if raw:
        raise SettingsError(f"SAGEMAKER_MULTI_MODEL={os.environ['SAGEMAKER_MULTI_MODEL']!r}: expected true or false")
    return bool(os.environ.get("MLOPS_MULTI_MODEL_MAX_LOADED", "").strip())
