"""`python -m training split`: the pipeline's split step, by the same id hash as local training.

Validates the whole input like training does, then writes the train and test parts as Parquet
(the training job's `train` and `test` channels, the Evaluate step's data) and the drift
baseline of the train part's features.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import baseline
from .config import TrainingConfig
from .data import load
from .split import check_classes, held_out, min_class_rows
from .train import write_json


def run(data: Path, config: TrainingConfig, output: Path) -> None:
    frame = load(data, config)
    test = held_out(frame, config)
    train_part, test_part = frame[~test], frame[test]
    check_classes(train_part[config.target], config, "training split", min_class_rows(config))
    check_classes(test_part[config.target], config, "held-out split", 1)
    for name, part in (("train", train_part), ("test", test_part)):
        (output / name).mkdir(parents=True, exist_ok=True)
        part = part.copy(deep=False)
        part.attrs = {}  # pandas would store the input's file list in the Parquet metadata
        part.to_parquet(output / name / "part-00000.parquet", index=False)
    write_json(output / "baseline" / "baseline.json",
               baseline.baseline(train_part[config.features], list(config.numeric), list(config.categorical)))
    for name, part in (("train", train_part), ("test", test_part)):
        counts = part[config.target].value_counts()
        click.echo(f"{name}: {len(part)} rows (class 0: {int(counts.get(0, 0))}, class 1: {int(counts.get(1, 0))})"
                   f" -> {output / name / 'part-00000.parquet'}")
    click.echo(f"baseline: {output / 'baseline' / 'baseline.json'}")
