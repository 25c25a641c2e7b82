"""Drift detection: captured inputs against the training baseline (baseline.json), at any scale.

    python -m serving.drift --baseline baseline.json --data <dir | file | s3://... | azure://...>

`sketch` counts live rows on the baseline's grid (bounded memory, exact merges), `capture` reads
SageMaker data-capture files and CSV tables, `sources` lists and streams local, S3 and Azure Blob
inputs, `stats` makes the decision, `report` and `metrics` write it out, `cli` ties them together.
"""

from .cli import main
from .sketch import Profile
from .stats import Thresholds, compare

__all__ = ["Profile", "Thresholds", "compare", "main"]
