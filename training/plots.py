"""Evaluation plots as PNG files, for the MLflow run a person reviews."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in containers

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


PERMUTATION_ROWS = 5000


def feature_importance(model: Any, features: pd.DataFrame, target: pd.Series) -> pd.Series:
    """Importance per transformed feature: impurity-based for trees, |coefficient| for linear models;
    for models with neither (histogram boosting), the ROC AUC lost when one input column is
    shuffled, on up to PERMUTATION_ROWS held-out rows."""
    clf = model.named_steps["classifier"]
    if not hasattr(clf, "feature_importances_") and not hasattr(clf, "coef_"):
        from sklearn.inspection import permutation_importance

        found = permutation_importance(model, features, target, scoring="roc_auc", n_repeats=3, random_state=0,
                                       max_samples=min(len(features), PERMUTATION_ROWS))
        return pd.Series(found.importances_mean, index=list(features.columns)).sort_values(ascending=False)
    names = model.named_steps["preprocess"].get_feature_names_out()
    values = clf.feature_importances_ if hasattr(clf, "feature_importances_") else np.abs(clf.coef_[0])
    return pd.Series(values, index=[n.split("__", 1)[-1] for n in names]).sort_values(ascending=False)


def write_all(model: Any, features: pd.DataFrame, target: pd.Series, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    proba = model.predict_proba(features)[:, 1]
    paths = []
    fig, ax = plt.subplots(figsize=(5, 4))
    ConfusionMatrixDisplay.from_predictions(target, (proba >= 0.5).astype(int), ax=ax, colorbar=False)
    ax.set_title("Confusion matrix (held-out)")
    paths.append(_save(fig, directory / "confusion_matrix.png"))
    fig, ax = plt.subplots(figsize=(5, 4))
    RocCurveDisplay.from_predictions(target, proba, ax=ax)
    ax.set_title("ROC curve (held-out)")
    paths.append(_save(fig, directory / "roc_curve.png"))
    fig, ax = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_predictions(target, proba, ax=ax)
    ax.set_title("Precision-recall curve (held-out)")
    paths.append(_save(fig, directory / "precision_recall_curve.png"))
    top = feature_importance(model, features, target).head(15)[::-1]
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.barh(top.index, top.to_numpy())
    ax.set_title("Feature importance")
    paths.append(_save(fig, directory / "feature_importance.png"))
    return paths
