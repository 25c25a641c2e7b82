"""The model: preprocessing and a classifier in one scikit-learn Pipeline, tuned by random search.

The search is our own loop over scikit-learn's ParameterSampler rather than RandomizedSearchCV,
for three reasons: each finished candidate is checkpointed (a spot instance that is reclaimed
resumes where it stopped), a failed candidate is reported with its error instead of vanishing
as a NaN score, and the folds run in threads over the one frame instead of pickling a copy of it
to every worker process.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import parallel_config
from scipy.stats import loguniform, randint, uniform
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterSampler, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .checkpoint import Checkpoint
from .config import TrainingConfig

# Families whose estimator uses every core itself (OpenMP): their folds run one after the other.
# The others are single-threaded (a forest too: n_jobs=1 keeps its single-row predictions free of
# a thread pool per call when it serves), so their folds run in parallel threads.
MULTITHREADED = ("hist_gradient_boosting",)


class SearchError(RuntimeError):
    """Every candidate of the search failed; the message quotes the first failure."""


def classifier(family: str, seed: int) -> Any:
    if family == "hist_gradient_boosting":
        # Early stopping on a tenth of the training rows, so max_iter is a ceiling, not a cost.
        return HistGradientBoostingClassifier(random_state=seed, early_stopping=True, validation_fraction=0.1,
                                              n_iter_no_change=10)
    if family == "gradient_boosting":
        return GradientBoostingClassifier(random_state=seed)
    if family == "random_forest":
        return RandomForestClassifier(random_state=seed, n_jobs=1)
    return LogisticRegression(max_iter=2000)


def parameter_names(family: str) -> list[str]:
    """The parameters a hyperparameter may set for this family (the estimator's own)."""
    return sorted(classifier(family, 0).get_params(deep=False))


def build_pipeline(config: TrainingConfig, params: dict[str, Any] | None = None) -> Pipeline:
    """Impute and scale numeric columns, impute and one-hot categorical ones, then classify.

    The same preprocessing for every family keeps one serving path (serving/compiled.py reads
    these steps); histogram boosting gets a dense matrix, which it requires.
    """
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore")),
    ])
    pipeline = Pipeline([
        ("preprocess", ColumnTransformer([
            ("numeric", numeric, list(config.numeric)),
            ("categorical", categorical, list(config.categorical)),
        ], sparse_threshold=0.0 if config.family == "hist_gradient_boosting" else 0.3)),
        ("classifier", classifier(config.family, config.seed)),
    ])
    if params:
        pipeline.set_params(**{f"classifier__{k}": v for k, v in params.items()})
    return pipeline


class IntLogUniform:
    """Integers in [low, high] drawn on a log scale (scipy's loguniform draws floats, which integer
    parameters such as max_leaf_nodes refuse): floor of a log-uniform draw on [low, high + 1)."""

    def __init__(self, low: int, high: int):
        self.low, self.high = low, high

    def rvs(self, size: Any = None, random_state: Any = None) -> Any:
        draws = np.floor(loguniform(self.low, self.high + 1).rvs(size=size, random_state=random_state))
        return np.clip(draws, self.low, self.high).astype(int)


def distributions(space: dict[str, Any]) -> dict[str, Any]:
    """The configured space as scikit-learn search distributions, keyed by classifier parameter."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        integers = isinstance(spec, dict) and all(
            isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("low", "high"))
        if isinstance(spec, list):
            out[name] = spec
        elif integers and spec.get("log"):
            out[name] = IntLogUniform(spec["low"], spec["high"])
        elif integers:
            out[name] = randint(spec["low"], spec["high"] + 1)
        elif spec.get("log"):
            out[name] = loguniform(spec["low"], spec["high"])
        else:
            out[name] = uniform(spec["low"], spec["high"] - spec["low"])
    return out


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so that candidates are JSON (checkpoint keys, MLflow params)."""
    return value.item() if isinstance(value, np.generic) else value


def candidates(config: TrainingConfig, fixed: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The parameter sets to cross-validate, in a fixed order for a given config and seed.

    With `fixed` parameters (a SageMaker tuning job chose them) there is one candidate: exactly
    those, the classifier's defaults for the rest. A search inside each tuning trial would make its
    objective depend on draws the tuner does not see.
    """
    if fixed:
        return [dict(fixed)]
    space = distributions(config.space)
    if not space:
        return [{}]
    n_iter = config.n_iter
    if all(isinstance(v, list) for v in space.values()):
        n_iter = min(n_iter, math.prod(len(v) for v in space.values()))  # no more than the grid holds
    sampled = ParameterSampler(space, n_iter, random_state=config.seed)
    return [{k: _plain(v) for k, v in sorted(c.items())} for c in sampled]


@dataclass
class SearchResult:
    model: Pipeline
    params: dict[str, Any]
    cv_roc_auc: float
    failures: list[str] = field(default_factory=list)
    resumed: int = 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cross_validate(config: TrainingConfig, params: dict[str, Any], features: pd.DataFrame, target: pd.Series,
                    folds: StratifiedKFold) -> list[float]:
    threaded = config.family not in MULTITHREADED
    with parallel_config(backend="threading"):
        scores = cross_val_score(build_pipeline(config, params), features, target, cv=folds, scoring="roc_auc",
                                 error_score="raise", n_jobs=-1 if threaded else 1)
    return [float(s) for s in scores]


def search_sample(config: TrainingConfig, features: pd.DataFrame, target: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """At most `model.search.max_rows` rows, stratified by class and seeded: ranking candidates
    needs far fewer rows than the final fit, and the search fits n_iter x cv_folds models."""
    limit = config.search_rows
    if limit is None or len(features) <= limit:
        return features, target
    rng = np.random.default_rng(config.seed)
    labels = target.to_numpy()
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == c), round(limit * np.mean(labels == c)), replace=False)
                           for c in (0, 1)])
    keep.sort()
    return features.iloc[keep], target.iloc[keep]


def search(config: TrainingConfig, features: pd.DataFrame, target: pd.Series, fixed: dict[str, Any] | None = None,
           checkpoint: Checkpoint | None = None) -> SearchResult:
    """The best candidate by mean cross-validated ROC AUC (the first on ties), refitted on all of
    `features`; candidates already in `checkpoint` are not fitted again."""
    folds = StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed)
    todo = candidates(config, fixed)
    done = checkpoint.load() if checkpoint else {}
    resumed = sum(1 for c in todo if Checkpoint.key(c) in done)
    all_features, all_target = features, target
    features, target = search_sample(config, features, target)
    sampled = f" (a sample of {len(all_features)}: model.search.max_rows)" if len(features) < len(all_features) else ""
    _log(f"searching {len(todo)} candidates x {config.cv_folds} folds of {config.family} on {len(features)} rows"
         + sampled + (f"; {resumed} finished before, from the checkpoint" if resumed else ""))
    means: list[float] = []
    failures: list[str] = []
    for number, params in enumerate(todo, 1):
        record = done.get(Checkpoint.key(params))
        origin = ", from the checkpoint" if record is not None else ""
        if record is None:
            start = time.perf_counter()
            try:
                record = {"scores": _cross_validate(config, params, features, target, folds)}
            except Exception as exc:  # a failed candidate is reported; the search goes on
                record = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
            record["seconds"] = round(time.perf_counter() - start, 2)
            if checkpoint:
                checkpoint.add(params, record)
        if "error" in record:
            failures.append(f"candidate {number} {params}: {record['error']}")
            _log(f"[{number}/{len(todo)}] {params}: FAILED ({record['seconds']} s{origin}): {record['error']}")
            means.append(-math.inf)
        else:
            means.append(float(np.mean(record["scores"])))
            _log(f"[{number}/{len(todo)}] {params}: cv roc_auc {means[-1]:.4f} +- {np.std(record['scores']):.4f}"
                 f" ({record['seconds']} s{origin})")
    if all(m == -math.inf for m in means):
        raise SearchError(f"all {len(todo)} candidates failed; the first: {failures[0]}")
    if failures:
        _log(f"{len(failures)} of {len(todo)} candidates failed:\n" + "\n".join(failures))
    best = int(np.argmax(means))
    _log(f"best: candidate {best + 1} {todo[best]} (cv roc_auc {means[best]:.4f}); "
         f"refitting on {len(all_features)} rows")
    with parallel_config(backend="threading"):
        model = build_pipeline(config, todo[best]).fit(all_features, all_target)
    return SearchResult(model, todo[best], means[best], failures, resumed)
