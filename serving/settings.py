"""The server's knobs, from the environment variables SageMaker (and the user) set.

* `SAGEMAKER_MODEL_SERVER_WORKERS`: server processes (default: the cores this process may use).
* `SAGEMAKER_MODEL_SERVER_TIMEOUT`: seconds a request may take (default 60, as SageMaker's
  inference toolkit); past it the answer is 504, and a model call running longer turns /ping unhealthy.
* `MAX_BODY_BYTES`, else Batch Transform's `SAGEMAKER_MAX_PAYLOAD_IN_MB` (0 there means chunked
  bodies of any size: capped at 100 MB, Batch Transform's largest MaxPayloadInMB), else 6 MB,
  SageMaker real-time's limit.
* `ONLINE_FEATURES`: the feature groups a variant reads per request (serving/online_features.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MB = 1024 * 1024
DEFAULT_BODY = 6 * MB
LARGEST_PAYLOAD_MB = 100


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
    return Settings(
        workers=int(_number("SAGEMAKER_MODEL_SERVER_WORKERS", cores(), minimum=1)),
        timeout=float(_number("SAGEMAKER_MODEL_SERVER_TIMEOUT", 60.0, float, minimum=0.001)),
        max_body=max_body,
        batch_strategy=os.environ.get("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD").strip().upper() or "MULTI_RECORD",
    )
