"""A guarded rollout of new online deployments, since Azure ML has none built in.

Azure ML's safe rollout is a procedure, not a feature: create the new ("green") deployment with
no traffic, test it by name, then move a share of the live traffic to it, watch, and move the rest
(https://learn.microsoft.com/azure/machine-learning/how-to-safely-rollout-online-endpoints). Nothing
watches the alerts or moves traffic back. This module does it, run by Terraform as the serving
stack's rollout step after the new deployment exists and before the old one is destroyed:

1. read the endpoint's traffic; if it already is the blueprint's final map, there is nothing to do
   (a re-run after success);
2. wait for each new deployment's `provisioningState` to be `Succeeded`;
3. refuse when a watched metric alert rule does not exist or is disabled (the rollout would watch
   nothing), or when a watched alert is firing already (a stateful alert does not fire again, so
   the rollout could not see the new deployment's effect);
4. smoke-test each new deployment through the endpoint with the `azureml-model-deployment` header
   (smoke.py): a failure leaves the traffic untouched;
5. move the traffic in the policy's steps (`plan()`), each a PUT of the endpoint with its
   `traffic` and `mirrorTraffic`, followed to its end, then `wait_seconds` watching the alerts;
6. after the final step, which is the blueprint's map exactly, bake `bake_seconds` watching them.

Any alert fired since the rollout began, a failed PUT or a timeout after traffic moved puts the
previous map back and fails, naming the step, the cause and the map the endpoint serves now.

Traffic is set with OnlineEndpoints_CreateOrUpdate (PUT), as `az ml online-endpoint update
--traffic` does: the PATCH (OnlineEndpoints_Update) takes a PartialMinimalTrackedResourceWithIdentity,
which has only `tags` and `identity` (examples/Workspace/OnlineEndpoint/update.json in the spec of
ML_API_VERSION, smoke.py). REST reference:
https://learn.microsoft.com/rest/api/azureml/online-endpoints/create-or-update and .../get;
https://learn.microsoft.com/rest/api/azureml/online-deployments/get. Mirror traffic: "You can mirror
traffic to only one deployment in an endpoint", "The maximum percentage of traffic you can mirror is
50 percent", "You can configure a deployment to receive only live traffic or mirrored traffic, not
both" (the safe-rollout page above); `mirrorTraffic`'s schema: "Traffic values need to sum to
utmost 50".

Alerts are read from Azure Monitor's alert instances, Alerts Management `Alerts_GetAll`:
`GET /subscriptions/{id}/providers/Microsoft.AlertsManagement/alerts?alertRule={rule id}
&customTimeRange={start}/{end}` (ALERTS_API_VERSION, spec file named next to it;
https://learn.microsoft.com/rest/api/monitor/alertsmanagement/alerts/get-all). An alert instance is
what Azure Monitor created when the rule's own condition held (`essentials.startDateTime`,
`monitorCondition` Fired or Resolved), so the rollout judges by exactly the rules, thresholds and
windows Terraform declared, and an alert that fired and resolved between two looks still counts.
Re-evaluating the metrics here would duplicate every rule's logic and drift from it. The price is
Azure Monitor's delay: a rule evaluates its window (`windowSize`, PT5M here) every
`evaluationFrequency` (PT1M), on metrics that arrive minutes late, so `wait_seconds` and
`bake_seconds` shorter than the window plus a few minutes may end before an alert can fire; the
rollout says so when it reads the rules.

`plan()` and the map checks are pure; `rollout()` takes an arm.Client (transport, sleep, clock
injected), so the tests drive it against a fake control plane, data plane and alerts API.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import MlopsError, OperationError
from .arm import MANAGEMENT, Client, Response
from .smoke import ML_API_VERSION, arm_url, data_plane_token, smoke_test

# Azure/azure-rest-api-specs: specification/alertsmanagement/resource-manager/Microsoft.AlertsManagement/
# AlertsManagement/stable/2019-03-01/AlertsManagement.json (the newest stable version of `alerts`;
# filters alertRule, monitorCondition, timeRange, customTimeRange).
ALERTS_API_VERSION = "2019-03-01"
# Azure/azure-rest-api-specs: specification/monitor/resource-manager/Microsoft.Insights/stable/2018-03-01/
# metricAlert_API.json (MetricAlerts_Get: `enabled`, `windowSize`, `evaluationFrequency`).
METRIC_ALERTS_API_VERSION = "2018-03-01"
MAX_MIRROR_PERCENT = 50
MODES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
BUSY = ("Creating", "Updating", "Scaling", "Deleting")
ENDPOINT_ID = re.compile(r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/[^/]+/providers/"
                         r"Microsoft\.MachineLearningServices/workspaces/[^/]+/onlineEndpoints/(?P<name>[^/]+)",
                         re.IGNORECASE)
ALERT_ID = re.compile(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/[^/]+/[^/]+", re.IGNORECASE)


class RolloutInputError(MlopsError):
    """A traffic map, policy or id that cannot be rolled out (exit code 2)."""


class RefreshingClient(Client):
    """A Client that asks for a new bearer token once Azure refuses the one it holds (HTTP 401): a
    rollout with long waits can outlast a token (about an hour), and the restore must still work."""

    def call(self, method: str, url: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202, 204),
             headers: Mapping[str, str] | None = None) -> Response:
        if 401 in ok:
            return super().call(method, url, body, ok, headers)
        answer = super().call(method, url, body, (*ok, 401), headers)
        if answer.status != 401:
            return answer
        self._token = None
        return super().call(method, url, body, ok, headers)


@dataclass(frozen=True)
class Traffic:
    """An endpoint's live traffic (deployment -> percent, summing to 100) and its mirror traffic."""

    live: Mapping[str, int]
    mirror: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, endpoint: Mapping[str, Any]) -> Traffic:
        props = endpoint.get("properties") or {}
        return cls(dict(props.get("traffic") or {}), dict(props.get("mirrorTraffic") or {}))

    def same(self, other: Traffic) -> bool:
        """Equal once 0% entries are dropped: Azure routes nothing to them either way."""
        return _nonzero(self.live) == _nonzero(other.live) and _nonzero(self.mirror) == _nonzero(other.mirror)

    def __str__(self) -> str:
        text = ", ".join(f"{k}={v}%" for k, v in sorted(self.live.items())) or "none"
        mirror = ", ".join(f"{k}={v}%" for k, v in sorted(self.mirror.items()) if v)
        return f"{{{text}}}" + (f" mirror {{{mirror}}}" if mirror else "")


@dataclass(frozen=True)
class Policy:
    """How traffic moves: like the blueprint's BlueGreen, the share of the moving traffic per step."""

    mode: str = "ALL_AT_ONCE"
    canary_percent: int = 10
    linear_step_percent: int = 20
    wait_seconds: int = 300
    bake_seconds: int = 300

    def fractions(self) -> list[float]:
        if self.mode == "CANARY":
            return [self.canary_percent / 100, 1.0]
        if self.mode == "LINEAR":
            steps = math.ceil(100 / self.linear_step_percent)
            return [min(1.0, k * self.linear_step_percent / 100) for k in range(1, steps + 1)]
        return [1.0]


def _nonzero(m: Mapping[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in m.items() if v}


def check_policy(p: Policy) -> list[str]:
    problems = []
    if p.mode not in MODES:
        problems.append(f"policy mode must be one of {', '.join(MODES)}; got {p.mode!r}")
    for name, value, low, high in (("canary_percent", p.canary_percent, 1, 99),
                                   ("linear_step_percent", p.linear_step_percent, 1, 99),
                                   ("wait_seconds", p.wait_seconds, 0, 24 * 3600),
                                   ("bake_seconds", p.bake_seconds, 0, 24 * 3600)):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(f"policy {name} must be an integer in [{low}, {high}]; got {value!r}")
    return problems


def check_final(final: Traffic) -> list[str]:
    """Every reason Azure ML would refuse `final` as an endpoint's traffic (all of them at once)."""
    problems = []
    for what, m in (("traffic", final.live), ("mirror traffic", final.mirror)):
        for k, v in m.items():
            if not isinstance(k, str) or not k:
                problems.append(f"{what}: deployment names must be non-empty strings; got {k!r}")
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100:
                problems.append(f"{what} of {k}: a whole percentage in [0, 100]; got {v!r}")
    if problems:
        return problems
    if sum(final.live.values()) != 100:
        problems.append(f"traffic must sum to 100; {final} sums to {sum(final.live.values())}")
    mirrored = _nonzero(final.mirror)
    if sum(mirrored.values()) > MAX_MIRROR_PERCENT:
        problems.append(f"mirror traffic is capped at {MAX_MIRROR_PERCENT}% by Azure ML; got "
                        f"{sum(mirrored.values())}% ({', '.join(f'{k}={v}%' for k, v in mirrored.items())})")
    if len(mirrored) > 1:
        problems.append(f"Azure ML mirrors traffic to one deployment only; got {', '.join(sorted(mirrored))}")
    both = sorted(set(mirrored) & set(_nonzero(final.live)))
    if both:
        problems.append(f"a deployment takes live or mirror traffic, not both: {', '.join(both)}")
    return problems


def _blend(current: Mapping[str, int], final: Mapping[str, int], f: float) -> dict[str, int]:
    """The live map `f` of the way from `current` to `final`: whole percentages summing to 100
    (largest remainder), and every deployment that gains traffic gets at least 1%."""
    names = sorted(set(current) | set(final))
    exact = {n: current.get(n, 0) * (1 - f) + final.get(n, 0) * f for n in names}
    out = {n: math.floor(exact[n] + 1e-9) for n in names}
    for n in sorted(names, key=lambda n: (-(exact[n] - out[n]), n))[: 100 - sum(out.values())]:
        out[n] += 1
    for n in names:
        if out[n] == 0 and final.get(n, 0) > current.get(n, 0):
            donors = [m for m in names if out[m] > final.get(m, 0)]
            if donors:
                donor = max(donors, key=lambda m: (out[m] - final.get(m, 0), m))
                out[donor] -= 1
                out[n] += 1
    return _nonzero(out)


def plan(current: Traffic, final: Traffic, policy: Policy) -> list[Traffic]:
    """The traffic steps from `current` to `final`; the last is `final` exactly.

    Each step moves `fractions()` of the changing traffic: a CANARY of 10% moving 90% from
    `champion-v2` to `champion-v3` sends 9% to v3 first. Intermediate steps keep the current mirror
    (minus a deployment that takes live traffic in that step); the final step sets the final mirror.
    With no live traffic yet (a new endpoint) there is nothing to protect: one step. Steps that would
    not change anything are left out.
    """
    problems = check_final(final) + check_policy(policy)
    if problems:
        raise RolloutInputError(problems)
    steps: list[Traffic] = []
    if sum(current.live.values()) == 100:
        for f in policy.fractions()[:-1]:
            live = _blend(current.live, final.live, f)
            mirror = {k: v for k, v in _nonzero(current.mirror).items() if k not in live}
            steps.append(Traffic(live, mirror))
    out: list[Traffic] = []
    previous = current
    for step in steps:
        if not step.same(previous) and not step.same(final):
            out.append(step)
            previous = step
    out.append(Traffic(dict(final.live), dict(final.mirror)))
    return out


@dataclass
class Watch:
    """The alert rules watched, and when they must not have fired since."""

    rule_ids: list[str]
    subscription: str
    poll_seconds: float = 60.0


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def alert_instances(client: Client, subscription: str, rule_id: str, query: dict[str, str]) -> list[dict[str, Any]]:
    """The alert instances of one rule (Alerts_GetAll, following nextLink)."""
    params = {"api-version": ALERTS_API_VERSION, "alertRule": rule_id, **query}
    url: str | None = (f"{MANAGEMENT}/subscriptions/{subscription}/providers/Microsoft.AlertsManagement/alerts?"
                       + urllib.parse.urlencode(params))
    found: list[dict[str, Any]] = []
    for _ in range(20):
        if not url:
            break
        body = client.get(url) or {}
        found.extend(a for a in body.get("value", []) if isinstance(a, dict))
        url = body.get("nextLink")
    return found


def _essentials(alert: dict[str, Any]) -> dict[str, Any]:
    return (alert.get("properties") or {}).get("essentials") or {}


def _duration(text: Any) -> float:
    """Seconds of an ISO 8601 duration as Azure Monitor writes them (PT1M, PT5M, PT1H, P1D); 0 if unknown."""
    pattern = r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?"
    m = re.fullmatch(pattern, text) if isinstance(text, str) else None
    if not m:
        return 0.0
    d, h, mi, sec = (int(g or 0) for g in m.groups())
    return float(((d * 24 + h) * 60 + mi) * 60 + sec)


def rule_name(rule_id: str) -> str:
    return rule_id.rstrip("/").rsplit("/", 1)[-1]


class Rollout:
    """One rollout's clients, inputs and timeline; `run()` does it (see the module docstring)."""

    def __init__(self, client: Client, endpoint_id: str, deployments: list[str], final: Traffic, policy: Policy,
                 alert_rule_ids: list[str], smoke_body: bytes, timeout: float = 3600.0,
                 say: Callable[[str], None] = print, data_bearer: Callable[[], str] = data_plane_token,
                 utcnow: Callable[[], datetime] | None = None, alert_poll_seconds: float = 60.0):
        match = ENDPOINT_ID.fullmatch(endpoint_id or "")
        problems = [] if match else [f"--endpoint-id must be an online endpoint's ARM id (/subscriptions/.../"
                                     f"onlineEndpoints/NAME); got {endpoint_id!r}"]
        problems += [f"alert rule id {a!r} is not an ARM resource id" for a in alert_rule_ids
                     if not ALERT_ID.fullmatch(a)]
        if not deployments:
            problems.append("no new deployment given")
        problems += check_final(final) + check_policy(policy)
        missing = [d for d in deployments if not final.live.get(d) and not final.mirror.get(d)]
        if missing and not problems:
            problems.append(f"new deployment {', '.join(missing)} gets no traffic in the final map {final}: "
                            "nothing to roll out")
        if problems:
            raise RolloutInputError(problems)
        assert match is not None
        self.client, self.endpoint_id, self.deployments = client, endpoint_id, deployments
        self.name = match["name"]
        self.final, self.policy, self.smoke_body, self.timeout = final, policy, smoke_body, timeout
        self.watch = Watch(alert_rule_ids, match["sub"], alert_poll_seconds)
        self.say, self.data_bearer = say, data_bearer
        start_wall, start = (utcnow or (lambda: datetime.now(UTC)))(), client.clock()
        # One clock for everything (the injected one); wall time only for the alerts' time range.
        self.start, self.start_wall = start, start_wall
        self.timeline: list[tuple[datetime, str]] = []

    # -- time and progress -------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.client.clock() - self.start

    def wall(self) -> datetime:
        return self.start_wall + timedelta(seconds=self.elapsed())

    def progress(self, text: str) -> None:
        e = int(self.elapsed())
        self.say(f"{self.name} [{e // 60:d}m{e % 60:02d}s] {text}")

    # -- control plane -----------------------------------------------------------------------
    def endpoint(self) -> dict[str, Any]:
        return self.client.get(arm_url(self.endpoint_id))

    def settled_endpoint(self, what: str) -> dict[str, Any]:
        """GET the endpoint until it is not busy (another update finishing)."""
        start = self.client.clock()
        while True:
            endpoint = self.endpoint()
            state = (endpoint.get("properties") or {}).get("provisioningState")
            if state not in BUSY:
                return endpoint
            if self.client.clock() - start > self.timeout:
                raise OperationError(f"{what}: online endpoint {self.name} still {state} after "
                                     f"{self.timeout / 60:.0f} min")
            self.client.sleep(self.client.poll_seconds)

    def wait_deployment(self, deployment: str) -> None:
        url = arm_url(f"{self.endpoint_id}/deployments/{deployment}")
        start, last = self.client.clock(), None
        while True:
            body = self.client.get(url, missing_ok=True)
            if body is None:
                raise OperationError(f"deployment {deployment} does not exist on online endpoint {self.name}")
            state = (body.get("properties") or {}).get("provisioningState")
            if state != last:
                self.progress(f"deployment {deployment}: {state}")
                last = state
            if state == "Succeeded":
                return
            if state in ("Failed", "Canceled"):
                raise OperationError(f"deployment {deployment} is {state}: see its logs "
                                     f"(az ml online-deployment get-logs -e {self.name} -n {deployment})")
            if self.client.clock() - start > self.timeout:
                raise OperationError(f"deployment {deployment} still {state} after {self.timeout / 60:.0f} min")
            self.client.sleep(self.client.poll_seconds)

    def put_traffic(self, traffic: Traffic, what: str) -> None:
        """PUT the endpoint with this traffic, follow the operation, and check the endpoint serves it."""
        endpoint = self.settled_endpoint(what)
        props = {k: v for k, v in (endpoint.get("properties") or {}).items()
                 if k not in ("provisioningState", "scoringUri", "swaggerUri")}
        props["traffic"], props["mirrorTraffic"] = dict(traffic.live), dict(traffic.mirror)
        body: dict[str, Any] = {k: endpoint[k] for k in ("location", "tags", "kind", "sku") if k in endpoint}
        identity = endpoint.get("identity")
        if isinstance(identity, dict) and identity.get("type"):
            body["identity"] = {"type": identity["type"]}
            if identity.get("userAssignedIdentities"):
                body["identity"]["userAssignedIdentities"] = {k: {} for k in identity["userAssignedIdentities"]}
        body["properties"] = props
        answer = self.client.call("PUT", arm_url(self.endpoint_id), body, ok=(200, 201, 202))
        self.client.wait(answer, f"{what}: PUT online endpoint {self.name}", timeout=self.timeout)
        # The operation's end (or a 200 with nothing to follow) is not proof: GET until the endpoint
        # is Succeeded and serves this traffic.
        start = self.client.clock()
        while True:
            served = self.endpoint()
            state = (served.get("properties") or {}).get("provisioningState")
            if state in ("Failed", "Canceled"):
                raise OperationError(f"{what}: online endpoint {self.name} is {state} after the traffic update")
            if state == "Succeeded" and Traffic.of(served).same(traffic):
                return
            if self.client.clock() - start > self.timeout:
                raise OperationError(f"{what}: online endpoint {self.name} is {state} and serves "
                                     f"{Traffic.of(served)}, not {traffic}, {self.timeout / 60:.0f} min after the "
                                     "traffic update")
            self.client.sleep(self.client.poll_seconds)

    # -- alerts --------------------------------------------------------------------------------
    def check_rules(self) -> list[str]:
        """Problems with the watched metric alert rules (missing, disabled); says when the waits are short."""
        problems, slowest = [], 0.0
        if not self.watch.rule_ids:
            self.progress("no alert rules to watch: traffic moves on the smoke test alone")
        for rule in self.watch.rule_ids:
            if "/providers/microsoft.insights/metricalerts/" not in rule.lower():
                continue  # another kind of rule: its alert instances are read all the same
            body = self.client.get(arm_url(rule, api_version=METRIC_ALERTS_API_VERSION), missing_ok=True)
            props = (body or {}).get("properties") or {}
            if body is None:
                problems.append(f"alert rule {rule_name(rule)} does not exist ({rule}): the rollout would watch "
                                "nothing")
            elif props.get("enabled") is False:
                problems.append(f"alert rule {rule_name(rule)} is disabled: the rollout would watch nothing")
            else:
                slowest = max(slowest, _duration(props.get("windowSize")) + _duration(props.get("evaluationFrequency")))
        shortest = min(self.policy.bake_seconds, self.policy.wait_seconds if len(self.policy.fractions()) > 1
                       else self.policy.bake_seconds)
        if slowest and shortest < slowest:
            self.progress(f"note: the alert rules look at {slowest:.0f} s of metrics; a wait of {shortest} s may end "
                          "before one of them can fire")
        return problems

    def firing_now(self) -> list[str]:
        out = []
        for rule in self.watch.rule_ids:
            for alert in alert_instances(self.client, self.watch.subscription, rule,
                                         {"monitorCondition": "Fired", "timeRange": "30d"}):
                e = _essentials(alert)
                if e.get("monitorCondition") == "Fired":
                    out.append(f"alert {rule_name(rule)} has been firing since {e.get('startDateTime', '?')}")
                    break
        return out

    def fired_since_start(self) -> str | None:
        """Why the rollout must stop (an alert instance started after it began), or None."""
        window = f"{_iso(self.start_wall)}/{_iso(self.wall())}"
        for rule in self.watch.rule_ids:
            for alert in alert_instances(self.client, self.watch.subscription, rule, {"customTimeRange": window}):
                started = _parse_time(_essentials(alert).get("startDateTime"))
                if started is not None and started >= self.start_wall:
                    return f"alert {rule_name(rule)} fired at {_iso(started)}{self.during(started)}"
        return None

    def during(self, t: datetime) -> str:
        steps = [label for at, label in self.timeline if at <= t]
        return f" (during {steps[-1]})" if steps else ""

    def watch_for(self, seconds: float, what: str) -> None:
        end = self.client.clock() + seconds
        while True:
            problem = self.fired_since_start()
            if problem:
                raise OperationError(f"{what}: {problem}")
            remaining = end - self.client.clock()
            if remaining <= 0:
                return
            self.client.sleep(min(self.watch.poll_seconds, remaining))

    # -- the rollout -------------------------------------------------------------------------
    def run(self) -> None:
        current = Traffic.of(self.settled_endpoint("reading the traffic"))
        if current.same(self.final):
            self.progress(f"already serves the final map {self.final}: nothing to do")
            return
        self.progress(f"rolling out {', '.join(self.deployments)}: {current} -> {self.final} ({self.policy.mode})")
        try:
            problems = self.check_rules()
            if problems:
                raise OperationError(f"refused: {'; '.join(problems)}")
            for d in self.deployments:
                self.wait_deployment(d)
            firing = self.firing_now()
            if firing:
                raise OperationError(f"refused: {'; '.join(firing)}. A firing alert does not fire again, so the "
                                     "rollout could not watch it; apply again once it resolved")
            endpoint = self.endpoint()
            for d in self.deployments:
                smoke_test(self.client, self.endpoint_id, d, self.smoke_body, self.data_bearer, endpoint=endpoint)
                self.progress(f"smoke test of {d} passed")
            fired = self.fired_since_start()  # while the deployments provisioned: not theirs, but no baseline
            if fired:
                raise OperationError(f"refused: {fired}")
        except OperationError as exc:
            raise OperationError(f"rollout of {', '.join(self.deployments)} on {self.name} failed before any traffic "
                                 f"moved: {'; '.join(exc.problems)}. The endpoint still serves {current}") from None
        steps = plan(current, self.final, self.policy)
        for i, step in enumerate(steps, 1):
            label = f"step {i}/{len(steps)}"
            try:
                self.progress(f"{label}: traffic {step}")
                self.timeline.append((self.wall(), f"{label}, {step}"))
                self.put_traffic(step, label)
                if i < len(steps):
                    self.progress(f"{label}: watching {len(self.watch.rule_ids)} alerts for "
                                  f"{self.policy.wait_seconds} s")
                    self.watch_for(self.policy.wait_seconds, label)
                else:
                    self.progress(f"{label}: final map reached; baking {self.policy.bake_seconds} s")
                    self.watch_for(self.policy.bake_seconds, f"bake after {label}")
            except OperationError as exc:
                cause = exc if label in str(exc) else OperationError(f"{label}: {exc}")
                raise OperationError(self.restore(current, cause)) from None
            except KeyboardInterrupt:
                self.restore(current, OperationError("interrupted"))
                raise
        self.progress(f"done: serves {self.final}")

    def restore(self, previous: Traffic, cause: OperationError) -> str:
        """Put `previous` back; the failure message, saying whether that worked."""
        why = "; ".join(cause.problems)
        self.progress(f"{why}; restoring {previous}")
        try:
            self.put_traffic(previous, "restoring the previous traffic")
        except OperationError as again:
            by_hand = " ".join(f"{k}={v}" for k, v in previous.live.items())
            return (f"rollout of {', '.join(self.deployments)} on {self.name} failed: {why}. Restoring the previous "
                    f"traffic {previous} failed too: {'; '.join(again.problems)}. Set it by hand: "
                    f"az ml online-endpoint update -n {self.name} --traffic \"{by_hand}\"")
        self.progress(f"traffic is back to {previous}")
        return (f"rollout of {', '.join(self.deployments)} on {self.name} failed: {why}. Traffic is back to the "
                f"previous map {previous}")


def rollout(client: Client, endpoint_id: str, deployments: list[str], final: Traffic, policy: Policy,
            alert_rule_ids: list[str], smoke_body: bytes, **kwargs: Any) -> None:
    """Roll `deployments` out to `final` (see the module docstring); OperationError when it failed."""
    Rollout(client, endpoint_id, deployments, final, policy, alert_rule_ids, smoke_body, **kwargs).run()


def config_from_json(doc: Any, where: str) -> tuple[Traffic, Policy, list[str]]:
    """The final traffic, policy and alert rule ids from the rollout document (schema in cli_azure_rollout.py)."""
    if not isinstance(doc, dict):
        raise RolloutInputError(f"{where}: expected a JSON object")
    problems = [f"{where}: unknown key {k!r} (valid: alert_rule_ids, mirror_traffic, policy, traffic)"
                for k in doc if k not in ("traffic", "mirror_traffic", "policy", "alert_rule_ids")]
    live, mirror = doc.get("traffic"), doc.get("mirror_traffic", {})
    policy_doc = doc.get("policy", {})
    alerts = doc.get("alert_rule_ids", [])
    if not isinstance(live, dict):
        problems.append(f"{where}: traffic must be an object of deployment name -> percent")
    if not isinstance(mirror, dict):
        problems.append(f"{where}: mirror_traffic must be an object of deployment name -> percent")
    if not isinstance(alerts, list) or not all(isinstance(a, str) for a in alerts):
        problems.append(f"{where}: alert_rule_ids must be a list of ARM ids")
    fields = ("mode", "canary_percent", "linear_step_percent", "wait_seconds", "bake_seconds")
    if not isinstance(policy_doc, dict):
        problems.append(f"{where}: policy must be an object")
        policy_doc = {}
    problems += [f"{where}: unknown policy key {k!r} (valid: {', '.join(fields)})" for k in policy_doc
                 if k not in fields]
    if problems:
        raise RolloutInputError(problems)
    policy = Policy(**{k: policy_doc[k] for k in fields if k in policy_doc})
    return Traffic(live or {}, mirror or {}), policy, list(alerts)


__all__ = ["ALERTS_API_VERSION", "MAX_MIRROR_PERCENT", "METRIC_ALERTS_API_VERSION", "ML_API_VERSION", "Policy",
           "RefreshingClient", "Rollout",
           "RolloutInputError", "Traffic", "check_final", "check_policy", "config_from_json", "plan", "rollout"]
