"""Loading an MLflow scikit-learn model for serving, and its input signature.

A model directory (SageMaker's /opt/ml/model, or a local path) is read straight from its MLmodel
file and model.skops, without importing MLflow: start-up time is part of the serving budget.
Only a `models:/` or `runs:/` URI asks MLflow where the files are.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import formats
from .compiled import InputRejected
from .formats import Column, parse_json

log = logging.getLogger("serving")
INLINE_ROWS = 32  # the compiled path scores this many rows in well under 100 microseconds
CHUNK_ROWS = 2048


@dataclass
class LoadedModel:
    model: Any
    columns: list[Column]
    example: list[list[Any]] | None
    fast: Any = None  # a verified CompiledPipeline, once built
    engine: str = "scikit-learn"
    known: dict[int, frozenset[str]] = field(default_factory=dict)  # column -> categories seen in training

    def unseen(self, rows: list[list[Any]]) -> dict[str, int]:
        """Per categorical column, how many values training never saw (scored as "none of them",
        silently, by the one-hot encoder): visible in the access log and on /ping."""
        counts: dict[str, int] = {}
        for i, categories in self.known.items():
            n = 0
            for row in rows:  # a plain loop: for a request's one row, a generator costs more than the test
                value = row[i]
                if isinstance(value, str) and value not in categories:
                    n += 1
            if n:
                counts[self.columns[i].name] = n
        return counts

    def cheap(self, rows: int) -> bool:
        """Whether a call on this many rows is fast enough to run on the event loop (see Batcher)."""
        return self.fast is not None and rows <= INLINE_ROWS

    def predict(self, rows: list[list[Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels, and class probabilities where the model has them. A large batch goes in chunks:
        each numpy/ONNX call then holds the GIL briefly, so the event loop keeps answering /ping."""
        if len(rows) <= CHUNK_ROWS:
            return self._predict(rows)
        parts = [self._predict(rows[i:i + CHUNK_ROWS]) for i in range(0, len(rows), CHUNK_ROWS)]
        labels = np.concatenate([p[0] for p in parts])
        return labels, None if parts[0][1] is None else np.concatenate([p[1] for p in parts])

    def _predict(self, rows: list[list[Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.fast is not None:
            try:
                return self.fast.predict(rows)
            except InputRejected:
                raise
            except Exception:
                log.exception("compiled path failed; answering with scikit-learn")
        return self.predict_sklearn(rows)

    def predict_sklearn(self, rows: list[list[Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        frame = formats.frame(rows, self.columns)
        if hasattr(self.model, "predict_proba"):
            probabilities = self.model.predict_proba(frame)
            labels = self.model.classes_[np.argmax(probabilities, axis=1)]
            return labels, probabilities
        return np.asarray(self.model.predict(frame)), None


class RegistryUnavailable(RuntimeError):
    """A registry URI where MLflow is not installed: the serving image, which SageMaker gives a directory."""


def resolve(uri: str) -> Path:
    """A local directory for a model URI; registry URIs are downloaded through MLflow (dev venv only)."""
    if uri.startswith(("models:/", "runs:/")):
        try:
            import mlflow

            from training import tracking  # the same default store as `make train`
        except ImportError as exc:
            raise RegistryUnavailable(
                f"{uri}: a registry URI needs MLflow and the training package ({exc.name} is not installed); "
                "the serving image has neither: give it the model directory (SageMaker mounts it at "
                "/opt/ml/model) or download the model first") from None
        tracking.configure()
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    return Path(uri.removeprefix("file://"))


def default_uri() -> str:
    """MODEL_URI if set; else where Azure ML mounts the deployment's model (AZUREML_MODEL_DIR,
    /var/azureml-app/azureml-models/<model>/<version>: how-to-deploy-custom-container); else SageMaker's
    /opt/ml/model."""
    return os.environ.get("MODEL_URI") or os.environ.get("AZUREML_MODEL_DIR") or "/opt/ml/model"


def model_directory(path: Path) -> Path:
    """`path` if it holds an MLmodel file, else the one directory below it (two levels at most) that does:
    Azure ML mounts a registered directory under its own name inside AZUREML_MODEL_DIR."""
    if (path / "MLmodel").is_file():
        return path
    found = sorted({p.parent for p in (*path.glob("*/MLmodel"), *path.glob("*/*/MLmodel"))})
    if len(found) == 1:
        return found[0]
    if found:
        raise FileNotFoundError(f"{path}: several MLflow model directories ({', '.join(str(f) for f in found)}); "
                                "set MODEL_URI to one")
    return path


def load(uri: str) -> LoadedModel:
    path = model_directory(resolve(uri))
    meta_path = path / "MLmodel"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path}: no MLmodel file; not an MLflow model directory")
    meta = yaml.safe_load(meta_path.read_text())
    flavor = meta.get("flavors", {}).get("sklearn")
    if flavor is None:
        raise ValueError(f"{path}: not a scikit-learn MLflow model (flavors: {', '.join(meta.get('flavors', {}))})")
    file = path / flavor["pickled_model"]
    if flavor.get("serialization_format") == "skops":
        import skops.io

        model = skops.io.load(file, trusted=flavor.get("skops_trusted_types") or [])
    else:  # cloudpickle/pickle: a model this platform's own training wrote
        with file.open("rb") as handle:
            model = pickle.load(handle)
    inputs = json.loads(meta["signature"]["inputs"]) if meta.get("signature") else []
    columns = [Column(c["name"], c["type"]) for c in inputs]
    if not columns and hasattr(model, "feature_names_in_"):
        columns = [Column(str(n), "double") for n in model.feature_names_in_]
    info = meta.get("saved_input_example_info") or {}
    return LoadedModel(model, columns, _example(path / info.get("artifact_path", "input_example.json"), columns),
                       known=_known_categories(model, columns))


def _known_categories(model: Any, columns: list[Column]) -> dict[int, frozenset[str]]:
    """The one-hot encoders' categories by column position, for a preprocess + classifier pipeline
    (as training builds it); empty for any other shape."""
    position = {c.name: i for i, c in enumerate(columns)}
    known: dict[int, frozenset[str]] = {}
    try:
        for _, steps, names in model.named_steps["preprocess"].transformers_:
            encoder = steps.steps[-1][1] if hasattr(steps, "steps") else steps
            if hasattr(encoder, "categories_") and getattr(encoder, "handle_unknown", None) != "error":
                for name, categories in zip(names, encoder.categories_, strict=True):
                    if name in position and columns[position[name]].type not in formats.NUMERIC:
                        known[position[name]] = frozenset(str(v) for v in categories)
    except (AttributeError, KeyError, TypeError, ValueError):
        return {}
    return known


def _example(file: Path, columns: list[Column]) -> list[list[Any]] | None:
    """The saved input example as checked rows, or None: a model whose example does not fit its own
    signature (older models saved non-string categoricals) still serves; warm-up uses a synthetic row."""
    if not file.is_file():
        return None
    try:
        return parse_json(json.dumps({"dataframe_split": json.loads(file.read_text())}).encode(), columns)
    except (formats.ClientError, ValueError) as exc:
        log.warning("%s: input example skipped (%s)", file, getattr(exc, "message", exc))
        return None


def compile_fast_path(loaded: LoadedModel) -> str:
    """Switch to the compiled path when it reproduces scikit-learn; say which engine serves."""
    try:
        from .compiled import compile_verified

        loaded.fast = compile_verified(loaded.model, loaded.columns, loaded.predict_sklearn, loaded.example)
        loaded.engine = "onnxruntime"
        return "compiled path verified against scikit-learn: serving with ONNX Runtime"
    except Exception as exc:
        return f"serving with scikit-learn ({type(exc).__name__}: {exc})"


def synthetic_row(columns: list[Column]) -> list[Any]:
    """Zero for numbers, missing for the rest: a row every pipeline that imputes can score."""
    return [0.0 if c.type in formats.NUMERIC else np.nan for c in columns]


def warm_up(loaded: LoadedModel) -> None:
    """One real prediction before the server reports healthy: the example's first row, else a synthetic one."""
    if loaded.example:
        try:
            loaded.predict(loaded.example[:1])
            return
        except Exception as exc:
            log.warning("the input example does not score (%s: %s); warming up on a synthetic row",
                        type(exc).__name__, exc)
            loaded.example = None
    loaded.predict([synthetic_row(loaded.columns)])
