"""BatchInference: scheduled bulk predictions of a served variant's pinned model version over a prefix
of a data zone, written to a zone (README: Inference modes).

It depends on a ModelServing because that is where a model version is pinned for a namespace: the
batch job scores with exactly the version (and serving image) the named variant serves, so what
was approved, promoted and reviewed for real-time traffic is what scores the batch, and a promotion
moves both in one reviewed diff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import NAME_PATTERN, NAME_RULE, Template
from .constraints import Constraint, InstanceOf, Interval, Options, Pattern
from .data import LOG_RETENTION_DAYS
from .serving import ModelServing
from .training import INSTANCE_TYPE, SCHEDULE

ZONE = Pattern(r"[a-z][a-z0-9-]{0,15}", "a zone name")
# An S3 key prefix without a leading slash, of the characters S3 keys take safely in URIs; the job reads
# every object under it. It ends in "/" so that "batch/in" does not also read "batch/input-old/".
PREFIX = Pattern(r"([A-Za-z0-9!_.*'()-]+/)+", "a key prefix ending in '/', e.g. 'batch/input/'")
CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines")


@dataclass(eq=False, repr=False)
class BatchInference(Template):
    serving: ModelServing
    variant: str = "champion"
    """The ModelServing variant whose pinned version scores the batch."""
    schedule: str = "cron(0 4 * * ? *)"
    """When the job runs (EventBridge Scheduler, UTC). Default daily at 04:00."""
    input_zone: str = "processed"
    input_prefix: str = "batch/input/"
    """Every object under this prefix of input_zone is scored, each line one record."""
    output_zone: str = "experiments"
    output_prefix: str = "batch/predictions/"
    """Predictions go to <output_prefix><execution name>/, one <input object>.out per input object."""
    content_type: str = "text/csv"
    accept: str = "text/csv"
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    max_payload_mb: int = 6
    """Largest request the job sends the container; records are batched up to it (MultiRecord)."""
    max_runtime_minutes: int = 240
    """A run still going after this is stopped and counts as failed (the failure alarm fires)."""
    log_retention_days: int = 365

    name: str = field(default="batch", kw_only=True)

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "serving": [InstanceOf(ModelServing)],
        "variant": [Pattern(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,19}", "a variant name of the ModelServing")],
        "schedule": [SCHEDULE],
        "input_zone": [ZONE],
        "input_prefix": [PREFIX],
        "output_zone": [ZONE],
        "output_prefix": [PREFIX],
        "content_type": [Options(CONTENT_TYPES)],
        "accept": [Options(CONTENT_TYPES)],
        "instance_type": [INSTANCE_TYPE],
        # TransformResources.InstanceCount: at least 1 (botocore); 20 keeps a typo from starting a fleet.
        "instance_count": [Interval(int, 1, 20)],
        # MaxPayloadInMB: 0 to 100 (botocore's SageMaker model); 0 sends each record alone.
        "max_payload_mb": [Interval(int, 1, 100)],
        # One run within the Step Functions task's timeout; a day at most, between two daily runs.
        "max_runtime_minutes": [Interval(int, 5, 24 * 60)],
        "log_retention_days": [Options(LOG_RETENTION_DAYS)],
        "name": [Pattern(NAME_PATTERN, NAME_RULE)],
    }

    def _check_combinations(self) -> list[str]:
        where = f"BatchInference '{self.name}'"
        problems = []
        s = self.serving
        served = [v.name for v in s.variants]
        if self.variant not in served:
            problems.append(f"{where}: variant {self.variant!r} is not a production variant of ModelServing "
                            f"'{s.name}' (variants: {', '.join(served)})")
        elif any(v.name == self.variant and v.multi_model for v in s.variants):
            problems.append(f"{where}: variant {self.variant!r} is a multi-model variant, which pins no one "
                            f"version; name one of its models' variants or a single-model variant")
        zones = s.training.data.zones
        for field_name in ("input_zone", "output_zone"):
            zone = getattr(self, field_name)
            if zone not in zones:
                problems.append(f"{where}: {field_name} {zone!r} is not one of the data zones ({', '.join(zones)})")
        if (self.input_zone, self.input_prefix) == (self.output_zone, self.output_prefix) or (
                self.input_zone == self.output_zone and (self.output_prefix.startswith(self.input_prefix)
                                                         or self.input_prefix.startswith(self.output_prefix))):
            problems.append(f"{where}: output_prefix {self.output_prefix!r} overlaps input_prefix "
                            f"{self.input_prefix!r} in zone {self.input_zone!r}: the next run would score its own "
                            f"predictions")
        return problems
