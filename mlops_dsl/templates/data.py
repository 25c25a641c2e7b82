"""DataInfrastructure: the encrypted, versioned, logged storage every other template builds on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .base import NAME_PATTERN, NAME_RULE, Template
from .constraints import Constraint, Interval, ListOf, Options, Pattern

ZONE_PATTERN = r"[a-z][a-z0-9-]{0,14}[a-z0-9]"
DEFAULT_ZONES = ("raw", "processed", "models", "experiments")


@dataclass(eq=False, repr=False)
class DataInfrastructure(Template):
    """Storage zones (one bucket or container each), the encryption key and access logging.

    Every field has a secure default; nothing here needs setting for a working platform.
    """

    zones: tuple[str, ...] | list[str] = DEFAULT_ZONES
    """Data zones, one bucket each. Default: raw, processed, models, experiments — the stages
    data passes through from ingestion to trained models."""

    noncurrent_version_days: int = 90
    """Days an overwritten or deleted object version is kept before it expires. Default 90:
    long enough to recover from a bad pipeline run, short enough not to keep every copy forever."""

    abort_multipart_days: int = 7
    """Days before an unfinished multipart upload is cleaned up. Default 7."""

    access_log_retention_days: int = 365
    """Days access logs are kept. Default 365, a common audit requirement."""

    key_deletion_window_days: int = 30
    """Waiting period before a deleted encryption key is gone for good. Default 30, the maximum,
    because losing the key loses every object encrypted with it."""

    force_destroy: bool = False
    """Let `destroy` delete buckets that still hold objects. Default False: destroying a stack must
    never silently delete data. Turn it on only for throwaway namespaces."""

    name: str = field(default="data", kw_only=True)

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "zones": [ListOf(Pattern(ZONE_PATTERN, "2 to 16 lowercase letters, digits and hyphens"),
                         min_len=1, max_len=10, unique=True)],
        "noncurrent_version_days": [Interval(int, 1, 3650)],
        "abort_multipart_days": [Interval(int, 1, 365)],
        "access_log_retention_days": [Interval(int, 1, 3650)],
        "key_deletion_window_days": [Interval(int, 7, 30)],
        "force_destroy": [Options((True, False))],
        "name": [Pattern(NAME_PATTERN, NAME_RULE)],
    }
