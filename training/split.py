"""The held-out split: a stable hash of the id column, so membership depends on the customer only.

Not on row order (Athena and Spark exports reorder rows), not on the seed, and not on which other
rows the export holds: a customer in the held-out set stays there as data grows, so promotion
compares models on rows neither was trained on, and every row of one customer (monthly snapshots)
lands on the same side. The SageMaker pipeline's split step and local training use this same rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import TrainingConfig
from .data import DataError

MIN_CLASS_ROWS = 10


@dataclass
class Split:
    train_x: pd.DataFrame
    train_y: pd.Series
    test_x: pd.DataFrame
    test_y: pd.Series


def _unit(text: str) -> float:
    """A uniform number in [0, 1) from a text: the first 8 bytes of its BLAKE2b digest."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") / 2.0 ** 64


def held_out(frame: pd.DataFrame, config: TrainingConfig) -> np.ndarray:
    """True for the rows of the held-out share: hash(id) < split.test_size, computed once per id.

    Without an id column each row's content is hashed instead (pandas' row hash), which is stable
    under reordering but cannot keep one entity's rows together.
    """
    if config.id_column:
        codes, uniques = pd.factorize(frame[config.id_column].astype(str))
        units = np.fromiter((_unit(u) for u in uniques), dtype=float, count=len(uniques))
        return units[codes] < config.test_size
    hashes = pd.util.hash_pandas_object(frame[[*config.features, config.target]], index=False).to_numpy()
    return hashes / 2.0 ** 64 < config.test_size


def check_classes(target: pd.Series, config: TrainingConfig, what: str, minimum: int) -> None:
    counts = target.value_counts()
    short = {int(c): int(counts.get(c, 0)) for c in (0, 1) if counts.get(c, 0) < minimum}
    if short:
        found = ", ".join(f"{n} of class {c}" for c, n in short.items())
        raise DataError([f"column {config.target!r} (the target): the {what} holds {found}; it needs at least "
                         f"{minimum} rows of each class (max(model.search.cv_folds, {MIN_CLASS_ROWS}))"])


def min_class_rows(config: TrainingConfig) -> int:
    return max(config.cv_folds, MIN_CLASS_ROWS)


def split(frame: pd.DataFrame, config: TrainingConfig) -> Split:
    """Features and target of both sides; DataError when either side is too small to train or score."""
    test = held_out(frame, config)
    x, y = frame[config.features], frame[config.target]
    parts = Split(x[~test], y[~test], x[test], y[test])
    check_classes(parts.train_y, config, "training split", min_class_rows(config))
    check_classes(parts.test_y, config, "held-out split", 1)
    return parts


def features_target(frame: pd.DataFrame, config: TrainingConfig) -> tuple[pd.DataFrame, pd.Series]:
    return frame[config.features], frame[config.target]
