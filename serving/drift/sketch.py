"""Live-side counts per feature, on the baseline's grid: bounded memory, merged exactly by addition.

A continuous feature is counted on the baseline's sorted sample g_0 < ... < g_{G-1}: how many live
values equal each g_i and how many fall in each open interval between them (G+1 of them, the outer
two unbounded). Both empirical CDFs are then known exactly at every point where the two-sample
Kolmogorov-Smirnov statistic can reach its supremum, so the statistic computed from the counts is
the one `scipy.stats.ks_2samp` gives on the raw baseline sample and raw live values (stats.py).
Memory is 2G+1 integers per feature whatever the number of live rows, and shards merge by adding
counts: exactly, in any order.

A discrete numeric feature counts each training value and pools the others; a categorical feature
counts each training category and up to UNSEEN_NAMES unseen ones by name (their total is exact,
names beyond the limit are pooled). Every feature counts its missing values.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

UNSEEN_NAMES = 100
PARTIAL_FORMAT = "mlops-drift-partial"
PARTIAL_VERSION = 1


class BaselineError(ValueError):
    """The baseline is not one this code can use; the message says what is wrong."""


def fingerprint(baseline: dict[str, Any]) -> str:
    """Identifies the baseline a partial was counted against, so shards of different baselines never merge."""
    return hashlib.sha256(json.dumps(baseline, sort_keys=True).encode()).hexdigest()[:16]


class Continuous:
    def __init__(self, spec: dict[str, Any]):
        self.grid, self.base_counts = np.unique(np.asarray(spec["sample"], dtype=float), return_counts=True)
        self.equal = np.zeros(self.grid.size, dtype=np.int64)
        self.between = np.zeros(self.grid.size + 1, dtype=np.int64)
        self.missing = 0
        self.total = 0.0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        nan = np.isnan(values)
        self.missing += int(nan.sum())
        present = values[~nan]
        if present.size == 0:
            return
        # Counts do not depend on the order, and sorted keys search the grid about 4x faster (the
        # binary searches stay in cache). The sum below keeps the arrival order: same float total.
        ordered = np.sort(present)
        index = np.searchsorted(self.grid, ordered, side="left")  # grid values strictly below
        hit = index < self.grid.size
        hit[hit] = self.grid[index[hit]] == ordered[hit]
        self.equal += np.bincount(index[hit], minlength=self.grid.size)
        self.between += np.bincount(index[~hit], minlength=self.grid.size + 1)
        finite = present[np.isfinite(present)]
        self.total += float(finite.sum())

    @property
    def present(self) -> int:
        return int(self.equal.sum() + self.between.sum())

    def merge(self, other: Continuous) -> None:
        self.equal += other.equal
        self.between += other.between
        self.missing += other.missing
        self.total += other.total

    def state(self) -> dict[str, Any]:
        return {"missing": self.missing, "total": self.total, "equal": _sparse(self.equal),
                "between": _sparse(self.between)}

    def load(self, state: dict[str, Any]) -> None:
        self.missing, self.total = int(state["missing"]), float(state["total"])
        self.equal = _dense(state["equal"], self.grid.size)
        self.between = _dense(state["between"], self.grid.size + 1)


class Discrete:
    """A numeric feature with few distinct values: counts per training value, plus one for any other."""

    def __init__(self, spec: dict[str, Any]):
        self.values = np.asarray(spec["values"], dtype=float)
        self.base_counts = np.asarray(spec["counts"], dtype=np.int64)
        self.counts = np.zeros(self.values.size + 1, dtype=np.int64)  # the last one: values not seen in training
        self.missing = 0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        nan = np.isnan(values)
        self.missing += int(nan.sum())
        present = values[~nan]
        index = np.searchsorted(self.values, present)
        known = index < self.values.size
        known[known] = self.values[index[known]] == present[known]
        index[~known] = self.values.size
        self.counts += np.bincount(index, minlength=self.values.size + 1)

    @property
    def present(self) -> int:
        return int(self.counts.sum())

    def merge(self, other: Discrete) -> None:
        self.counts += other.counts
        self.missing += other.missing

    def state(self) -> dict[str, Any]:
        return {"missing": self.missing, "counts": self.counts.tolist()}

    def load(self, state: dict[str, Any]) -> None:
        self.missing = int(state["missing"])
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        if self.counts.size != self.values.size + 1:
            raise BaselineError("a discrete feature's counts do not match the baseline's values")


class Categorical:
    def __init__(self, spec: dict[str, Any]):
        self.categories = list(spec["counts"])
        self.base_counts = np.asarray(list(spec["counts"].values()), dtype=np.int64)
        self.position = {c: i for i, c in enumerate(self.categories)}
        self.counts = np.zeros(len(self.categories), dtype=np.int64)
        self.unseen: dict[str, int] = {}
        self.unseen_pooled = 0  # unseen values beyond the UNSEEN_NAMES tracked by name
        self.missing = 0

    def add(self, values: np.ndarray) -> None:
        counts = pd.Series(values, dtype=object).value_counts(dropna=True)  # hashing in C: no loop per row
        self.missing += len(values) - int(counts.sum())
        for name, count in zip(counts.index.astype(str).tolist(), counts.tolist(), strict=True):
            i = self.position.get(name)
            if i is not None:
                self.counts[i] += count
            else:
                self._unseen(name, count)

    def _unseen(self, name: str, count: int) -> None:
        if name in self.unseen or len(self.unseen) < UNSEEN_NAMES:
            self.unseen[name] = self.unseen.get(name, 0) + count
        else:
            self.unseen_pooled += count

    @property
    def unseen_total(self) -> int:
        return sum(self.unseen.values()) + self.unseen_pooled

    @property
    def present(self) -> int:
        return int(self.counts.sum()) + self.unseen_total

    def merge(self, other: Categorical) -> None:
        self.counts += other.counts
        self.missing += other.missing
        self.unseen_pooled += other.unseen_pooled
        for name, count in sorted(other.unseen.items(), key=lambda kv: -kv[1]):
            self._unseen(name, count)

    def state(self) -> dict[str, Any]:
        return {"missing": self.missing, "counts": self.counts.tolist(), "unseen": self.unseen,
                "unseen_pooled": self.unseen_pooled}

    def load(self, state: dict[str, Any]) -> None:
        self.missing, self.unseen_pooled = int(state["missing"]), int(state["unseen_pooled"])
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self.unseen = {str(k): int(v) for k, v in state["unseen"].items()}
        if self.counts.size != len(self.categories):
            raise BaselineError("a categorical feature's counts do not match the baseline's categories")


Counter = Continuous | Discrete | Categorical


def counter(name: str, spec: dict[str, Any]) -> Counter:
    try:
        if spec["type"] == "categorical":
            return Categorical(spec)
        if spec.get("kind") == "discrete":
            return Discrete(spec)
        if spec.get("kind") == "continuous":
            return Continuous(spec)
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"feature {name!r}: {exc}") from None
    raise BaselineError(f"feature {name!r}: neither a categorical feature nor a numeric one with a kind "
                        "(a baseline older than version 2: retrain to write a new one)")


class Profile:
    """Everything the drift decision needs from the live data, for every baseline feature."""

    def __init__(self, baseline: dict[str, Any]):
        self.baseline = baseline
        self.fingerprint = fingerprint(baseline)
        self.features = {name: counter(name, spec) for name, spec in baseline["features"].items()}
        self.rows = 0
        self.records = 0
        self.unreadable = 0
        self.errors: list[str] = []  # the first few reasons, for the report

    def add(self, columns: dict[str, np.ndarray], rows: int) -> None:
        """One batch of rows, as one array per feature."""
        self.rows += rows
        for name, feature in self.features.items():
            feature.add(columns[name])

    def skip(self, reason: str) -> None:
        self.unreadable += 1
        if len(self.errors) < 20:
            self.errors.append(reason)

    def merge(self, other: Profile) -> None:
        if other.fingerprint != self.fingerprint:
            raise BaselineError("the partial results were counted against a different baseline")
        self.rows += other.rows
        self.records += other.records
        self.unreadable += other.unreadable
        self.errors += other.errors[: max(0, 20 - len(self.errors))]
        for name, feature in self.features.items():
            feature.merge(other.features[name])  # type: ignore[arg-type]

    def state(self) -> dict[str, Any]:
        return {"format": PARTIAL_FORMAT, "version": PARTIAL_VERSION, "baseline": self.fingerprint,
                "rows": self.rows, "records": self.records, "unreadable": self.unreadable, "errors": self.errors,
                "features": {name: f.state() for name, f in self.features.items()}}

    @classmethod
    def load(cls, baseline: dict[str, Any], state: dict[str, Any]) -> Profile:
        profile = cls(baseline)
        if state.get("format") != PARTIAL_FORMAT or state.get("version") != PARTIAL_VERSION:
            raise BaselineError(f"not a partial result of this job (format {PARTIAL_FORMAT} v{PARTIAL_VERSION})")
        if state["baseline"] != profile.fingerprint:
            raise BaselineError("counted against a different baseline")
        profile.rows, profile.records, profile.unreadable = int(state["rows"]), int(state["records"]), \
            int(state["unreadable"])
        profile.errors = list(state["errors"])
        for name, feature in profile.features.items():
            feature.load(state["features"][name])
        return profile


def _sparse(counts: np.ndarray) -> dict[str, list[int]]:
    index = np.flatnonzero(counts)
    return {"index": index.tolist(), "count": counts[index].tolist()}


def _dense(sparse: dict[str, list[int]], size: int) -> np.ndarray:
    counts = np.zeros(size, dtype=np.int64)
    index = np.asarray(sparse["index"], dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= size):
        raise BaselineError("a continuous feature's counts do not match the baseline's sample")
    counts[index] = np.asarray(sparse["count"], dtype=np.int64)
    return counts
