"""Finished search candidates on disk, so that an interrupted training job resumes its search.

SageMaker managed spot training syncs `/opt/ml/checkpoints` to S3 and restores it when a job
that was reclaimed restarts. One JSON line per finished candidate, appended and flushed as soon
as it finishes: a kill leaves at most a torn last line, which is ignored. The first line is a
fingerprint of the data and the search; a checkpoint from other data or another search is
discarded, never mixed in.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from .config import TrainingConfig


def fingerprint(config: TrainingConfig, features: pd.DataFrame, target: pd.Series,
                fixed: dict[str, Any] | None) -> str:
    """What the scores depend on: the rows (content, not just count), the family, its space,
    the folds and the seed."""
    rows = pd.util.hash_pandas_object(features.assign(**{config.target: target}), index=False).to_numpy()
    search = json.dumps({"family": config.family, "space": config.space, "fixed": fixed or {},
                         "cv_folds": config.cv_folds, "n_iter": config.n_iter, "seed": config.seed,
                         "max_rows": config.search_rows,
                         "columns": list(features.columns)}, sort_keys=True, default=str)
    digest = hashlib.sha256(search.encode())
    digest.update(rows.tobytes())
    return digest.hexdigest()


class Checkpoint:
    """The candidates file in a checkpoint directory, for one fingerprint."""

    NAME = "search-candidates.jsonl"

    def __init__(self, directory: Path, fingerprint: str):
        self.path = directory / self.NAME
        self.fingerprint = fingerprint

    @staticmethod
    def key(params: dict[str, Any]) -> str:
        return json.dumps(params, sort_keys=True, default=str)

    def load(self) -> dict[str, dict[str, Any]]:
        """Finished candidates by key; nothing (and a fresh file) when the fingerprint differs."""
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.is_file() else []
        records: list[dict[str, Any]] = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # torn by the kill
        if not records or records[0].get("fingerprint") != self.fingerprint:
            if records:
                print(f"{self.path}: from other data or another search; starting the search over",
                      file=sys.stderr, flush=True)
            records = [{"fingerprint": self.fingerprint}]
        # Rewritten whole (and atomically), so that a torn last line cannot swallow the next record.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_suffix(".tmp")
        staged.write_text("".join(json.dumps(r, default=str) + "\n" for r in records), encoding="utf-8")
        staged.replace(self.path)
        return {self.key(r["params"]): r["result"] for r in records[1:] if "params" in r and "result" in r}

    def add(self, params: dict[str, Any], result: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"params": params, "result": result}, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
