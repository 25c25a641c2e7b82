"""MLflow: where runs and models are recorded, and the registry aliases promotion moves.

Default store: `sqlite:///.mlops/mlflow.db` with artifacts under `.mlops/mlartifacts`;
MLFLOW_TRACKING_URI overrides both. One experiment per platform; the registered model carries the
platform's name, and the aliases `candidate` and `production` say which version is which.

In SageMaker, a namespace that opts into a managed tracking server (README: Tracking in the cloud)
sets MLFLOW_TRACKING_URI to the server's ARN: the `sagemaker-mlflow` plugin (training/requirements.txt)
resolves `arn:` URIs, signing each request with the job's role. Such a URI is checked here: a
malformed ARN or a missing plugin is a configuration error, never a silent fall back to a local
SQLite file that vanishes with the container.
"""

from __future__ import annotations

import os
import re
from importlib.metadata import entry_points
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from .config import ConfigError

CANDIDATE = "candidate"
PRODUCTION = "production"
STATE_DIR = Path(".mlops")


_exported: str | None = None  # set_tracking_uri exports MLFLOW_TRACKING_URI; remember ours


def _user_uri() -> str | None:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return None if uri == _exported else uri


# CreateMlflowTrackingServer's TrackingServerArn pattern (botocore's SageMaker service model).
SERVER_ARN = re.compile(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:[0-9]{12}:mlflow-tracking-server/"
                        r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}")
PLUGIN = "sagemaker-mlflow"


def check_server_uri(uri: str) -> None:
    """An `arn:` tracking URI must name a tracking server, and the plugin that resolves it must be
    installed (it registers the `arn` tracking store); otherwise MLflow's own error names neither."""
    if not SERVER_ARN.fullmatch(uri):
        raise ConfigError(f"MLFLOW_TRACKING_URI={uri!r}: an arn: URI must be a SageMaker MLflow tracking server's "
                          "ARN, arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>")
    if not entry_points(group="mlflow.tracking_store", name="arn"):
        raise ConfigError(f"MLFLOW_TRACKING_URI={uri!r}: the {PLUGIN} plugin, which resolves a tracking server's "
                          f"ARN, is not installed (pip install {PLUGIN}; the training image has it)")


def configure() -> str:
    """Point MLflow at the configured store and return its URI."""
    global _exported
    uri = _user_uri()
    if uri and uri.startswith("arn:"):
        check_server_uri(uri)
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
