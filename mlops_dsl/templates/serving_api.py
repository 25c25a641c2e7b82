"""What a ModelServing offers the applications that call it: online features and an inference API.

`OnlineFeatures` on a Variant: requests carry the record id (and any request-time features), the
server reads the rest from the online store of the named FeatureStore groups (serving/online_features.py).
`Api` on ModelServing: an authenticated HTTPS API in front of the endpoint, private or public per
namespace (README: An inference API). Both are validated here with the serving template's other
rules (`problems`), so every mistake names the field and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import Spec
from .constraints import Constraint, Interval, ListOf, NoneOK, Options, Pattern
from .data import LOG_RETENTION_DAYS

if TYPE_CHECKING:
    from .serving import ModelServing

GROUP_NAME = Pattern(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", "the name of a FeatureStore group")
ACCESS = ("private", "public")
# WAFv2 web ACL ARN (regional scope): arn:<partition>:wafv2:<region>:<account>:regional/webacl/<name>/<id>
WEB_ACL_ARN = Pattern(r"arn:aws[a-z-]*:wafv2:[a-z0-9-]+:[0-9]{12}:regional/webacl/[A-Za-z0-9_-]{1,128}/[a-f0-9-]{36}",
                      "a regional WAFv2 web ACL ARN")


@dataclass(frozen=True)
class OnlineFeatures(Spec):
    """A variant whose requests name records: the server reads the named groups' features per request."""

    groups: tuple[str, ...] | list[str]
    """FeatureStore groups to read (each must have an online store). The request carries each
    group's record_id column and the model's columns no group supplies."""
    timeout_ms: int = 300
    """Bound on each read from the online store (connect and read), one attempt; past it the
    request is answered 504. Default 300 ms: the online store answers in single-digit ms."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "groups": [ListOf(GROUP_NAME, min_len=1, max_len=10, unique=True)],
        "timeout_ms": [Interval(int, 10, 10000)],
    }


@dataclass(frozen=True)
class Api(Spec):
    """An HTTPS API for applications in front of the endpoint, IAM-authorised (AWS: SigV4 with
    execute-api:Invoke; Azure: an Entra ID token), throttled, access-logged."""

    access: str = "private"
    """`private`: reachable only from the platform's network (AWS: a PRIVATE REST API through an
    execute-api VPC endpoint; Azure: no API Management, the endpoint's private scoring URI).
    `public`: reachable over the internet, still authenticated (AWS: a REGIONAL REST API; Azure:
    API Management in the platform's network). Default private; a namespace opts in with
    `overrides.serving.api.access: public`."""
    rate_limit: float = 100.0
    """Steady requests per second the stage accepts (AWS method throttling; Azure rate-limit policy)."""
    burst_limit: int = 200
    """Requests above the steady rate accepted at once before 429s."""
    daily_quota: int | None = None
    """Requests per day per API key in the usage plan (needs require_api_key). Default none."""
    require_api_key: bool = False
    """Also require an API key (x-api-key) of the usage plan, for per-client quotas. Default False:
    IAM authorisation alone."""
    waf_web_acl_arn: str | None = None
    """An existing regional WAFv2 web ACL to associate with the stage (AWS). Default none."""
    log_retention_days: int = 365
    audience: str | None = None
    """Azure, public: the Entra ID audience callers' tokens must carry (the application ID URI or
    client id of the API's app registration), checked by API Management. Required there."""
    apim_sku: str = "Developer_1"
    """Azure, public: API Management's tier. Default Developer_1 (no SLA; the cheapest tier that joins
    a VNet); Premium_1 for production traffic."""

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "access": [Options(ACCESS)],
        "rate_limit": [Interval(float, 1, 10000)],
        "burst_limit": [Interval(int, 1, 5000)],
        "daily_quota": [Interval(int, 1, 10**9), NoneOK()],
        "require_api_key": [Options((True, False))],
        "waf_web_acl_arn": [WEB_ACL_ARN, NoneOK()],
        "log_retention_days": [Options(LOG_RETENTION_DAYS)],
        "audience": [Pattern(r"(api://[^\s]{1,200}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|"
                             r"https://[^\s]{1,200})", "an application ID URI (api://...) or a client id"), NoneOK()],
        # API Management tiers that join a virtual network (External mode): Developer and Premium.
        "apim_sku": [Pattern(r"(Developer_1|Premium_[1-9][0-9]?)", "Developer_1 or Premium_<units>")],
    }

    def check_combinations(self) -> list[str]:
        problems = []
        if self.daily_quota is not None and not self.require_api_key:
            problems.append(f"daily_quota ({self.daily_quota}) counts requests per API key; set "
                            f"require_api_key=True or drop the quota")
        if self.burst_limit < self.rate_limit:
            problems.append(f"burst_limit ({self.burst_limit}) must be at least rate_limit ({self.rate_limit:g})")
        return problems


def online_feature_problems(t: ModelServing) -> list[str]:
    """Each variant's OnlineFeatures against the FeatureStore it names and the model's columns."""
    where = f"ModelServing '{t.name}'"
    problems: list[str] = []
    variants = [*t.variants, *([t.shadow] if t.shadow else [])]
    reading = [(i, v) for i, v in enumerate(variants) if v.online_features is not None]
    if not reading:
        return problems
    store = t.features
    if store is None:
        return [f"{where}: variant {v.name!r} reads online_features, so ModelServing needs features=<the "
                f"FeatureStore> (the groups' names and ARNs come from its stack)" for _, v in reading]
    groups = {g.name: g for g in store.groups}
    dataset = t.training.dataset
    inputs = set(dataset.numeric) | set(dataset.categorical) if dataset is not None else None
    for _, v in reading:
        assert v.online_features is not None
        supplied: dict[str, str] = {}
        for name in v.online_features.groups:
            group = groups.get(name)
            if group is None:
                problems.append(f"{where}: variant {v.name!r}: online_features.groups names {name!r}, which is not "
                                f"a group of FeatureStore '{store.name}' ({', '.join(groups)})")
                continue
            if not group.online:
                problems.append(f"{where}: variant {v.name!r}: group {name!r} has online=False; only a group with "
                                f"an online store can be read per request")
            if inputs is None:
                continue
            if group.record_id in inputs:
                problems.append(f"{where}: variant {v.name!r}: the record_id {group.record_id!r} of group {name!r} "
                                f"is a model input of the training dataset; the id is looked up, not scored")
            used = [f.name for f in group.features if f.name in inputs]
            if not used:
                problems.append(f"{where}: variant {v.name!r}: group {name!r} holds none of the model's inputs "
                                f"({', '.join(sorted(inputs))})")
            for feature in used:
                if feature in supplied:
                    problems.append(f"{where}: variant {v.name!r}: feature {feature!r} is in both group "
                                    f"{supplied[feature]!r} and {name!r}; name one")
                supplied.setdefault(feature, name)
    return problems


def stored_features(t: ModelServing, group_name: str) -> list[str]:
    """The group's features the model reads (all but the id and event time without a dataset)."""
    assert t.features is not None
    group = next(g for g in t.features.groups if g.name == group_name)
    dataset = t.training.dataset
    inputs = set(dataset.numeric) | set(dataset.categorical) if dataset is not None else None
    return [f.name for f in group.features if f.name not in (group.record_id, group.event_time)
            and (inputs is None or f.name in inputs)]


__all__ = ["Api", "OnlineFeatures", "online_feature_problems", "stored_features"]
