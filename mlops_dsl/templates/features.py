"""FeatureStore: feature groups declared in Python, with online and offline stores, and how raw
data is ingested into them (`Ingestion`: a raw-zone prefix, a schedule, on new data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import NAME_PATTERN, NAME_RULE, Spec, Template
from .constraints import Constraint, InstanceOf, Interval, ListOf, NoneOK, Options, Pattern
from .data import DataInfrastructure
from .image import Image

FEATURE_TYPES = ("integral", "fractional", "string")
FEATURE_NAME = Pattern(r"[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}", "1 to 64 letters, digits, '-' and '_'")
SOURCE_COLUMN = Pattern(r"[A-Za-z_][A-Za-z0-9_ .-]{0,127}", "a column name of the raw data (1 to 128 characters)")
# A key prefix of the raw zone, ending with '/' so that "customers/" never matches "customers-old/".
RAW_PREFIX = Pattern(r"[A-Za-z0-9][A-Za-z0-9_.=-]*(/[A-Za-z0-9][A-Za-z0-9_.=-]*)*/",
                     "an S3 key prefix ending with '/' (letters, digits, '_', '.', '=', '-')")
RAW_FORMATS = ("csv", "parquet")
# EventBridge rate or cron expressions (the ingestion schedule is an EventBridge Scheduler schedule).
SCHEDULE = Pattern(r"cron\(\S+( \S+){5}\)|rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)",
                   "a schedule expression: cron(min hour day month weekday year) or rate(N unit)")
INSTANCE_TYPE = Pattern(r"ml\.[a-z0-9]+\.[a-z0-9]+", "a SageMaker instance type, e.g. ml.m5.large")


@dataclass(frozen=True)
class Feature(Spec):
    """One typed feature: integral, fractional or string."""

    name: str
    type: str
    source: str | None = None
    """The raw data's column the ingestion reads this feature from. Default: the feature's own name."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "name": [FEATURE_NAME],
        "type": [Options(FEATURE_TYPES)],
        "source": [SOURCE_COLUMN, NoneOK()],
    }

    @property
    def column(self) -> str:
        """The raw column this feature comes from."""
        return self.source or self.name


@dataclass(frozen=True)
class Ingestion(Spec):
    """How new raw data becomes records of a group: the objects under `prefix` of the raw zone.

    Each object is read (CSV with a header, or Parquet), every row checked against the group's
    features; the good rows are written to the store, the bad ones to `quarantine/<group>/` of the
    raw zone with the reason per row, and the object is recorded in a ledger so a rerun skips it.
    """

    prefix: str
    """Key prefix in the raw zone, ending with '/': e.g. "customers/"."""
    format: str = "csv"
    """csv (a header row, UTF-8, optionally gzip) or parquet."""
    schedule: str | None = "rate(1 hour)"
    """When the ingestion also runs on its own (objects a missed event left behind). Default hourly.
    None: only on new data."""
    on_new_data: bool = True
    """Run when an object is created under the prefix (EventBridge on the raw bucket). Default True."""
    concurrency: int = 4
    """PutRecord calls in flight at once. Default 4: the store's on-demand throughput absorbs it."""
    instance_type: str = "ml.m5.large"
    """The Processing job's instance. Default ml.m5.large: the job reads and writes, it does not train."""
    image: Image = Image("training")
    """The image the job runs (`python -m training ingest`; on Azure `python -m training.ingest_azure`).
    Default the training image (the namespace's registry holds it): the ingestion runs once that
    image is pushed. On Azure give its azureml stage, `Image("training", target="azureml")`, which
    has the Azure SDKs."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "prefix": [RAW_PREFIX],
        "format": [Options(RAW_FORMATS)],
        "schedule": [SCHEDULE, NoneOK()],
        "on_new_data": [Options((True, False))],
        "concurrency": [Interval(int, 1, 32)],
        "instance_type": [INSTANCE_TYPE],
        "image": [InstanceOf(Image)],
    }

    def check_combinations(self) -> list[str]:
        if self.schedule is None and not self.on_new_data:
            return ["schedule is None and on_new_data is False: nothing would ever start the ingestion"]
        if self.prefix.startswith("quarantine/"):
            return [f"prefix {self.prefix!r} is inside quarantine/, where the ingestion writes bad rows"]
        return []


@dataclass(frozen=True)
class FeatureGroup(Spec):
    """A set of features keyed by `record_id` and versioned by `event_time`.

    A changed feature definition replaces the group in place and loses its stored records, which
    is why the generated group is protected from destroy by default.
    """

    name: str
    record_id: str
    event_time: str
    features: tuple[Feature, ...] | list[Feature]
    online: bool = True
    """Serve the latest record per id at low latency. Default True."""
    offline: bool = True
    """Keep every record in the data lake for training. Default True."""
    description: str | None = None
    ingestion: Ingestion | None = None
    """How raw data reaches the group. Default None: nothing of this platform writes to it."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "name": [Pattern(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", "2 to 32 lowercase letters, digits and hyphens")],
        "record_id": [FEATURE_NAME],
        "event_time": [FEATURE_NAME],
        "features": [ListOf(InstanceOf(Feature), min_len=2, max_len=2500)],
        "online": [Options((True, False))],
        "offline": [Options((True, False))],
        "description": [Pattern(r".{1,128}", "1 to 128 characters"), NoneOK()],
        "ingestion": [InstanceOf(Ingestion), NoneOK()],
    }

    def check_combinations(self) -> list[str]:
        problems = []
        types = {f.name: f.type for f in self.features}
        if len(types) != len(self.features):
            dupes = sorted({f.name for f in self.features if [g.name for g in self.features].count(f.name) > 1})
            problems.append(f"feature names must be unique; {', '.join(dupes)} appear more than once")
        for role in ("record_id", "event_time"):
            if getattr(self, role) not in types:
                problems.append(f"{role} {getattr(self, role)!r} must be one of the features "
                                f"({', '.join(types)})")
        if types.get(self.event_time, "string") not in ("string", "fractional"):
            problems.append(f"event_time {self.event_time!r} must be a string or fractional feature, "
                            f"not {types[self.event_time]}")
        if not (self.online or self.offline):
            problems.append("online and offline are both False; a feature group needs at least one store")
        columns = [f.column for f in self.features]
        for dupe in sorted({c for c in columns if columns.count(c) > 1}):
            problems.append(f"features: the raw column {dupe!r} is the source of more than one feature")
        return problems


@dataclass(eq=False, repr=False)
class FeatureStore(Template):
    data: DataInfrastructure
    groups: tuple[FeatureGroup, ...] | list[FeatureGroup]
    """The feature groups, each with its own schema."""

    offline_zone: str = "processed"
    """The data zone that holds the offline store. Default 'processed': features are derived data."""

    protect_from_destroy: bool = True
    """Refuse to destroy feature groups (Terraform prevent_destroy). Default True, because
    destroying a group deletes its records; turn off only in throwaway namespaces."""

    raw_zone: str = "raw"
    """The data zone the ingestion reads raw data from (and quarantines bad rows in). Default 'raw'."""

    name: str = field(default="features", kw_only=True)

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "data": [InstanceOf(DataInfrastructure)],
        "groups": [ListOf(InstanceOf(FeatureGroup), min_len=1, max_len=50)],
        "offline_zone": [Pattern(r"[a-z][a-z0-9-]{0,15}", "a zone name")],
        "raw_zone": [Pattern(r"[a-z][a-z0-9-]{0,15}", "a zone name")],
        "protect_from_destroy": [Options((True, False))],
        "name": [Pattern(NAME_PATTERN, NAME_RULE)],
    }

    def _check_combinations(self) -> list[str]:
        problems = []
        if self.offline_zone not in self.data.zones:
            problems.append(f"FeatureStore '{self.name}': offline_zone {self.offline_zone!r} is not one of the "
                            f"zones of DataInfrastructure '{self.data.name}' ({', '.join(self.data.zones)})")
        names = [g.name for g in self.groups]
        for dupe in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"FeatureStore '{self.name}': groups: the name {dupe!r} is used more than once")
        ingested = [g for g in self.groups if g.ingestion is not None]
        if ingested and self.raw_zone not in self.data.zones:
            problems.append(f"FeatureStore '{self.name}': raw_zone {self.raw_zone!r} is not one of the zones of "
                            f"DataInfrastructure '{self.data.name}' ({', '.join(self.data.zones)}); the ingestion "
                            f"of {ingested[0].name!r} reads it")
        if ingested and self.raw_zone == self.offline_zone:
            problems.append(f"FeatureStore '{self.name}': raw_zone and offline_zone are both {self.raw_zone!r}; "
                            f"raw data and derived features belong in different zones")
        prefixes = [g.ingestion.prefix for g in ingested if g.ingestion is not None]
        for i, a in enumerate(prefixes):
            for b in prefixes[i + 1:]:
                if a.startswith(b) or b.startswith(a):
                    problems.append(f"FeatureStore '{self.name}': ingestion prefixes {a!r} and {b!r} overlap; "
                                    f"each raw object must belong to one group")
        return problems
