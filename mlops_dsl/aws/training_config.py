"""The training configuration every job of the pipeline reads, rendered from the blueprint.

The training image carries an example configuration (`training/config.yaml`) for local use; a
pipeline job must train on this platform's columns and gates instead. The document below uses the
same schema, travels to S3 as a Terraform-managed object, and reaches each job as an input: the
training job's `config` channel, the processing steps' `/opt/ml/processing/config`. Its key holds
a hash of its content, so an execution always reads the configuration its pipeline version was
rendered with, and a reviewer sees every change as a diff of the training stack.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..templates.training import (
    CategoricalRange,
    ContinuousRange,
    Dataset,
    IntegerRange,
    Search,
    TrainingInfrastructure,
)

DEFAULT_FAMILY = "hist_gradient_boosting"
SEED = 42
# The gates the training image's configuration can express (higher is better); the pipeline's
# QualityGate step is the gate that decides in SageMaker, these only make the document complete.
CONFIG_GATES = {"roc_auc": "min_roc_auc", "accuracy": "min_accuracy"}


def _decoded(text: str) -> Any:
    """A categorical choice as the image reads it: JSON first (`"3"` is 3), then the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def space(search: Search | None) -> dict[str, Any]:
    """The search ranges in the configuration's form: a list of choices, or {low, high[, log]}."""
    out: dict[str, Any] = {}
    for r in search.ranges if search else ():
        if isinstance(r, CategoricalRange):
            out[r.name] = [_decoded(v) for v in r.values]
        elif isinstance(r, (IntegerRange, ContinuousRange)):
            low, high = (int(r.low), int(r.high)) if isinstance(r, IntegerRange) else (float(r.low), float(r.high))
            spec: dict[str, Any] = {"low": low, "high": high}
            if r.scaling == "Logarithmic":
                spec["log"] = True
            out[r.name] = spec
    return out


def document(t: TrainingInfrastructure, platform: str) -> dict[str, Any]:
    """The configuration document of this platform's training (training/config.yaml's schema)."""
    dataset: Dataset | None = t.dataset
    assert dataset is not None, "the AWS renderer checks that dataset is set"
    family = str(t.hyperparameters.get("model", DEFAULT_FAMILY))
    gate = CONFIG_GATES.get(t.gate.metric)
    return {
        "platform": platform,
        "data": {
            "target": dataset.target,
            "id_column": dataset.id_column,
            "numeric": list(dataset.numeric),
            "categorical": list(dataset.categorical),
        },
        "split": {"test_size": dataset.test_size, "seed": SEED},
        "model": {
            "family": family,
            "search": {
                "n_iter": t.search.iterations if t.search else 1,
                "cv_folds": dataset.cv_folds,
                "space": {family: space(t.search)},
            },
        },
        "gates": {gate: t.gate.threshold} if gate else {},
    }


def object_key(doc: dict[str, Any]) -> str:
    """`pipeline/training-config-<hash>.json`: a new key for every new content."""
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
    return f"pipeline/training-config-{digest}.json"
