"""The model: preprocessing and a classifier in one scikit-learn Pipeline, tuned by random search."""

from __future__ import annotations

import math
import sys
from typing import Any

import pandas as pd
from scipy.stats import loguniform, randint, uniform
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .config import TrainingConfig


def classifier(family: str, seed: int) -> Any:
    if family == "gradient_boosting":
        return GradientBoostingClassifier(random_state=seed)
    if family == "random_forest":
        return RandomForestClassifier(random_state=seed, n_jobs=1)
    return LogisticRegression(max_iter=2000)


def build_pipeline(config: TrainingConfig, params: dict[str, Any] | None = None) -> Pipeline:
    """Impute and scale numeric columns, impute and one-hot categorical ones, then classify."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore")),
    ])
    pipeline = Pipeline([
        ("preprocess", ColumnTransformer([
            ("numeric", numeric, list(config.numeric)),
            ("categorical", categorical, list(config.categorical)),
        ])),
        ("classifier", classifier(config.family, config.seed)),
    ])
    if params:
        pipeline.set_params(**{f"classifier__{k}": v for k, v in params.items()})
    return pipeline


def distributions(space: dict[str, Any]) -> dict[str, Any]:
    """The configured space as scikit-learn search distributions on the classifier step."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        key = f"classifier__{name}"
        if isinstance(spec, list):
            out[key] = spec
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int) and not spec.get("log"):
            out[key] = randint(spec["low"], spec["high"] + 1)
        elif spec.get("log"):
            out[key] = loguniform(spec["low"], spec["high"])
        else:
            out[key] = uniform(spec["low"], spec["high"] - spec["low"])
    return out


def search(config: TrainingConfig, features: pd.DataFrame, target: pd.Series, fixed: dict[str, Any] | None = None,
           verbose: int = 2) -> tuple[Pipeline, dict[str, Any], float]:
    """The best pipeline refitted on all of `features`, its parameters and its cross-validated ROC AUC.

    With `fixed` parameters (a SageMaker tuning job chooses them) no search runs: the pipeline is
    cross-validated and fitted once with exactly those.
    """
    folds = StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed)
    space = {} if fixed else distributions(config.space)
    n_iter = 1 if fixed or not space else config.n_iter
    if space and all(isinstance(v, list) for v in space.values()):
        n_iter = min(n_iter, math.prod(len(v) for v in space.values()))  # no more than the grid holds
    search = RandomizedSearchCV(
        build_pipeline(config, fixed), space or {"classifier__random_state": [config.seed]}, n_iter=n_iter,
        scoring="roc_auc", cv=folds, random_state=config.seed, n_jobs=-1, refit=True, verbose=verbose,
    )
    print(f"searching {n_iter} candidates x {config.cv_folds} folds of {config.family} on {len(features)} rows",
          file=sys.stderr, flush=True)
    search.fit(features, target)
    best = {k.removeprefix("classifier__"): v for k, v in search.best_params_.items()}
    return search.best_estimator_, {**(fixed or {}), **best}, float(search.best_score_)
