"""An MLflow model as SageMaker's model.tar.gz, byte for byte the same for the same model.

SageMaker unpacks the archive into /opt/ml/model, so the MLflow model's files sit at its root.
The archive is deterministic (sorted entries, no timestamps or owners, gzip without a time
stamp): its SHA-256, which the pin records, identifies the model, not the moment it was packed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MlopsError


@dataclass(frozen=True)
class Source:
    """A model to register: its directory, and the evaluation and drift baseline it was trained with."""

    directory: Path
    evaluation: dict[str, Any] | None
    baseline: dict[str, Any] | None


def _json_file(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def resolve(uri: str, scratch: Path) -> Source:
    """A model directory as is, or a `models:/name@alias` / `models:/name/version` of the MLflow registry
    (downloaded into `scratch`, with the run's metrics as the evaluation and its baseline.json)."""
    if not uri.startswith("models:/"):
        directory = Path(uri)
        if not (directory / "MLmodel").is_file():
            raise MlopsError(f"--model {uri}: not an MLflow model directory (no MLmodel file) nor a models:/ URI")
        return Source(directory, _json_file(directory / "evaluation.json"), _json_file(directory / "baseline.json"))
    try:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from training import tracking
    except ImportError:
        raise MlopsError("--model models:/...: reading the MLflow registry needs the ml extra "
                         "(pip install -e '.[ml]'), or pass the model's directory") from None
    tracking.configure()
    try:
        directory = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(scratch / "model")))
        name, _, ref = uri.removeprefix("models:/").partition("@")
        client = MlflowClient()
        if ref:
            version = client.get_model_version_by_alias(name, ref)
        else:
            name, _, number = uri.removeprefix("models:/").rpartition("/")
            version = client.get_model_version(name, number)
        run = client.get_run(version.run_id)
        baseline_path = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="baseline.json",
                                                            dst_path=str(scratch / "run"))
    except MlflowException as exc:
        raise MlopsError(f"--model {uri}: {exc.message}") from None
    evaluation = {"metrics": dict(run.data.metrics), "run_id": version.run_id, "model_version": version.version}
    return Source(directory, evaluation, _json_file(Path(baseline_path)))


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
    return info


def archive(directory: Path, out: Path) -> str:
    """Write `directory`'s files as a deterministic model.tar.gz at `out`; returns its SHA-256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                path = Path(root) / name
                tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False, filter=_reset)
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as zipped:
        zipped.write(buffer.getvalue())
    digest = hashlib.sha256()
    with out.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
