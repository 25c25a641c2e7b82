"""DataInfrastructure: the encrypted, versioned, logged storage every other template builds on."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import ClassVar

from .base import NAME_PATTERN, NAME_RULE, Template
from .constraints import Constraint, Interval, ListOf, Options, Pattern

ZONE_PATTERN = r"[a-z][a-z0-9-]{0,14}[a-z0-9]"
DEFAULT_ZONES = ("raw", "processed", "models", "experiments")
# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)


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

    vpc_cidr: str = "10.20.0.0/16"
    """Address range of the platform's private network. Pick one that does not overlap networks
    it may be peered with later."""

    availability_zones: int = 2
    """Private subnets, one per availability zone (<region>a, <region>b, ...). Default 2, the
    minimum for an endpoint that survives the loss of a zone."""

    log_retention_days: int = 365
    """Retention of the CloudWatch log groups created here (flow logs, SageMaker jobs). Default 365."""

    manage_account_settings: bool = True
    """Manage the account- and region-wide settings (Glue catalog encryption, the SageMaker job log
    groups) in this stack. Default True; set False on every platform but one per account and
    region, or their stacks fight over the same settings."""

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
        "vpc_cidr": [Pattern(r"(10|172|192)\.\d{1,3}\.\d{1,3}\.\d{1,3}/(1[6-9]|2[0-4])",
                             "a private IPv4 CIDR block from /16 to /24")],
        "availability_zones": [Interval(int, 2, 6)],
        "log_retention_days": [Options(LOG_RETENTION_DAYS)],
        "manage_account_settings": [Options((True, False))],
        "force_destroy": [Options((True, False))],
        "name": [Pattern(NAME_PATTERN, NAME_RULE)],
    }

    def _check_combinations(self) -> list[str]:
        try:
            network = ipaddress.ip_network(self.vpc_cidr)
        except ValueError as exc:
            return [f"DataInfrastructure '{self.name}': vpc_cidr {self.vpc_cidr!r} is not a network address ({exc})"]
        if not network.is_private:
            return [f"DataInfrastructure '{self.name}': vpc_cidr {self.vpc_cidr!r} is not a private range"]
        if 2 ** min(4, 28 - network.prefixlen) < self.availability_zones:
            return [f"DataInfrastructure '{self.name}': vpc_cidr {self.vpc_cidr!r} is too small for "
                    f"{self.availability_zones} subnets"]
        return []
