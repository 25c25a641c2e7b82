"""MLflow: where runs and models are recorded, and the registry aliases promotion moves.

Default store: `sqlite:///.mlops/mlflow.db` with artifacts under `.mlops/mlartifacts`;
MLFLOW_TRACKING_URI overrides both. One experiment per platform; the registered model carries the
platform's name, and the aliases `candidate` and `production` say which version is which.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CANDIDATE = "candidate"
PRODUCTION = "production"
STATE_DIR = Path(".mlops")


_exported: str | None = None  # set_tracking_uri exports MLFLOW_TRACKING_URI; remember ours


def _user_uri() -> str | None:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return None if uri == _exported else uri


def configure() -> str:
    """Point MLflow at the configured store and return its URI."""
    global _exported
    uri = _user_uri()
    if not uri:
        STATE_DIR.mkdir(exist_ok=True)
        uri = _exported = f"sqlite:///{(STATE_DIR / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment(platform: str) -> str:
    """The platform's experiment id, created on first use (artifacts under .mlops/mlartifacts
    with the default local store; a server chooses its own)."""
    found = mlflow.get_experiment_by_name(platform)
    if found is not None:
        return found.experiment_id
    location = None if _user_uri() else (STATE_DIR / "mlartifacts").resolve().as_uri()
    return mlflow.create_experiment(platform, artifact_location=location)


# What the registry answers for a model or an alias that does not exist (yet).
NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def alias_version(model_name: str, alias: str) -> str | None:
    """The version holding the alias; None only when the registry says there is none. Any other
    registry error (timeout, 5xx, a locked database) propagates: read as "no production model
    yet", it would promote a candidate without comparing it."""
    try:
        return MlflowClient().get_model_version_by_alias(model_name, alias).version
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND and "not found" in str(exc).lower():
            return None
        raise


def set_alias(model_name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(model_name, alias, version)
