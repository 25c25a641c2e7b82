"""FeatureStore: feature groups declared in Python, with online and offline stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import NAME_PATTERN, NAME_RULE, Spec, Template
from .constraints import Constraint, InstanceOf, ListOf, NoneOK, Options, Pattern
from .data import DataInfrastructure

FEATURE_TYPES = ("integral", "fractional", "string")
FEATURE_NAME = Pattern(r"[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}", "1 to 64 letters, digits, '-' and '_'")


@dataclass(frozen=True)
class Feature(Spec):
    """One typed feature: integral, fractional or string."""

    name: str
    type: str

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "name": [FEATURE_NAME],
        "type": [Options(FEATURE_TYPES)],
    }


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

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "name": [Pattern(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", "2 to 32 lowercase letters, digits and hyphens")],
        "record_id": [FEATURE_NAME],
        "event_time": [FEATURE_NAME],
        "features": [ListOf(InstanceOf(Feature), min_len=2, max_len=2500)],
        "online": [Options((True, False))],
        "offline": [Options((True, False))],
        "description": [Pattern(r".{1,128}", "1 to 128 characters"), NoneOK()],
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

    name: str = field(default="features", kw_only=True)

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "data": [InstanceOf(DataInfrastructure)],
        "groups": [ListOf(InstanceOf(FeatureGroup), min_len=1, max_len=50)],
        "offline_zone": [Pattern(r"[a-z][a-z0-9-]{0,15}", "a zone name")],
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
        return problems
