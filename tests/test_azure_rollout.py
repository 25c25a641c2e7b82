"""The Azure guarded rollout against a fake of Azure ML's control plane (online endpoint GET/PUT with
async operations, deployment GET, listKeys/token), its data plane (the scoring URI, honouring the
`azureml-model-deployment` header) and the Alerts Management API, all in one stateful Transport.
Time is the fake's: sleeping advances its clock, nothing waits for real."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from mlops_dsl import cli_azure_rollout
from mlops_dsl.azureml import rollout as ro
from mlops_dsl.azureml.arm import Client, Response
from mlops_dsl.azureml.smoke import smoke_test
from mlops_dsl.cli import main
from mlops_dsl.errors import OperationError

SUB = "0000-sub"
EP_ID = (f"/subscriptions/{SUB}/resourceGroups/rg-churn/providers/Microsoft.MachineLearningServices/workspaces/"
         "ws-churn/onlineEndpoints/churn-prod-serving")
SCORING = "https://churn-prod-serving.westeurope.inference.ml.azure.com/score"
RULES = f"/subscriptions/{SUB}/resourceGroups/rg-churn/providers/Microsoft.Insights/metricAlerts"
LATENCY, ERRORS = f"{RULES}/churn-prod-serving-latency", f"{RULES}/churn-prod-serving-errors"
EPOCH = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
EXAMPLE = json.dumps({"dataframe_split": {"columns": ["tenure"], "data": [[3]]}}).encode()
BEFORE = {"champion-v2": 90, "challenger-v1": 10}
AFTER = {"champion-v3": 90, "challenger-v1": 10}


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeAzure:
    """Azure ML and Azure Monitor as far as the rollout sees them. A traffic update is accepted only
    as Azure validates it, and applied when its operation succeeds (after one InProgress poll)."""

    def __init__(self, traffic: dict[str, int], mirror: dict[str, int] | None = None, auth: str = "Key"):
        self.t = 0.0
        self.endpoint = {
            "id": EP_ID, "name": "churn-prod-serving",
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "location": "westeurope", "tags": {"team": "ml"},
            "identity": {"type": "UserAssigned", "principalId": "p", "tenantId": "t",
                         "userAssignedIdentities": {"/subscriptions/x/uami": {"principalId": "p", "clientId": "c"}}},
            "systemData": {"createdAt": "2026-11-01T00:00:00Z"},
            "properties": {"authMode": auth, "publicNetworkAccess": "Disabled", "scoringUri": SCORING,
                           "swaggerUri": SCORING.replace("score", "swagger.json"), "provisioningState": "Succeeded",
                           "traffic": dict(traffic), "mirrorTraffic": dict(mirror or {})}}
        self.deployments: dict[str, dict] = {n: {"states": ["Succeeded"], "score": 200}
                                             for n in {*traffic, *(mirror or {})}}
        self.history: list[tuple[dict, dict]] = []  # (traffic, mirrorTraffic) as applied
        self.puts: list[dict] = []
        self.calls: list[tuple[str, str]] = []
        self.scored: list[dict] = []
        self.operations: dict[str, dict] = {}
        self.alerts: list[dict] = []
        self.fire: dict | None = None  # {"rule", "after" (applied updates), "delay" (s)}
        self.stuck_operations: set[int] = set()  # the n-th PUT (1-based) whose operation never ends
        self.refused_puts: set[int] = set()  # the n-th PUT request (1-based) answered 409
        self.put_requests = 0
        self.put_status = 201  # Azure may answer a PUT on an existing endpoint 200, with the operation to follow
        self.tokens = {"mgmt-token"}  # the management tokens accepted
        self.rules = {r: {"id": r, "type": "Microsoft.Insights/metricAlerts", "properties": {
            "enabled": True, "windowSize": "PT5M", "evaluationFrequency": "PT1M", "severity": 2}}
            for r in (LATENCY, ERRORS)}

    # time
    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def clock(self) -> float:
        return self.t

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.t)

    def client(self, cls: type[Client] = Client, bearer=lambda: "mgmt-token") -> Client:
        return cls(transport=self, bearer=bearer, poll_seconds=5, sleep=self.sleep, clock=self.clock)

    def add_deployment(self, name: str, states: list[str] | None = None, score: int = 200) -> None:
        self.deployments[name] = {"states": states or ["Creating", "Creating", "Succeeded"], "score": score}

    def traffic(self) -> dict[str, int]:
        return self.endpoint["properties"]["traffic"]

    def put_count(self) -> int:
        return sum(1 for m, p in self.calls if m == "PUT")

    # the transport
    def __call__(self, method: str, url: str, headers, body: bytes | None) -> Response:
        self.calls.append((method, url.split("?")[0]))
        if url.startswith(SCORING):
            return self._score(headers, body)
        parts = urlsplit(url)
        query, path = parse_qs(parts.query), parts.path
        assert parts.netloc == "management.azure.com"
        self._finish_operations()
        if headers["Authorization"].removeprefix("Bearer ") not in self.tokens:
            return Response(401, {}, {"error": {"code": "ExpiredAuthenticationToken", "message": "token expired"}})
        if path == f"/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts" and method == "GET":
            assert query["api-version"] == [ro.ALERTS_API_VERSION]
            return self._alerts(query)
        if path.startswith(RULES):
            assert method == "GET" and query["api-version"] == [ro.METRIC_ALERTS_API_VERSION]
            rule = self.rules.get(path)
            return Response(200, {}, rule) if rule else Response(404, {}, {"error": {"code": "ResourceNotFound"}})
        assert query["api-version"] == ["2024-10-01"], url
        if path == EP_ID and method == "GET":
            return Response(200, {}, json.loads(json.dumps(self.endpoint)))
        if path == EP_ID and method == "PUT":
            return self._put(json.loads(body or b"{}"))
        if path == f"{EP_ID}/listKeys" and method == "POST":
            assert self.endpoint["properties"]["authMode"] == "Key"
            return Response(200, {}, {"primaryKey": "key-1", "secondaryKey": "key-2"})
        if path == f"{EP_ID}/token" and method == "POST":
            assert self.endpoint["properties"]["authMode"] == "AMLToken"
            return Response(200, {}, {"accessToken": "aml-token", "tokenType": "Bearer"})
        if path.startswith(f"{EP_ID}/deployments/") and method == "GET":
            d = self.deployments.get(path.rsplit("/", 1)[-1])
            if d is None:
                return Response(404, {}, {"error": {"code": "NotFound", "message": "no such deployment"}})
            state = d["states"].pop(0) if len(d["states"]) > 1 else d["states"][0]
            return Response(200, {}, {"name": path.rsplit("/", 1)[-1], "properties": {"provisioningState": state}})
        if path.startswith("/operations/") and method == "GET":
            return self._operation(path.rsplit("/", 1)[-1])
        return Response(404, {}, {"error": {"code": "NotFound", "message": f"{method} {path}"}})

    def _put(self, body: dict) -> Response:
        self.put_requests += 1
        if self.put_requests in self.refused_puts:
            return Response(409, {}, {"error": {"code": "Conflict", "message": "another operation is in progress"}})
        props = body.get("properties", {})
        live, mirror = props.get("traffic", {}), props.get("mirrorTraffic", {})
        problems = []
        if body.get("location") != "westeurope" or props.get("authMode") != self.endpoint["properties"]["authMode"]:
            problems.append("location and authMode are required")
        if any(k in props for k in ("provisioningState", "scoringUri")) or "systemData" in body:
            problems.append("read-only property in the request")
        if live and sum(live.values()) != 100:
            problems.append("Traffic values need to sum to 100")
        if sum(mirror.values()) > 50 or len([v for v in mirror.values() if v]) > 1:
            problems.append("Mirror traffic values need to sum to utmost 50, for one deployment")
        if {k for k, v in live.items() if v} & {k for k, v in mirror.items() if v}:
            problems.append("a deployment takes live or mirror traffic, not both")
        unknown = [k for k in {*live, *mirror} if k not in self.deployments]
        if unknown:
            problems.append(f"deployments {unknown} do not exist")
        if problems:
            return Response(400, {}, {"error": {"code": "BadRequest", "message": "; ".join(problems)}})
        self.puts.append(body)
        op = f"op-{len(self.puts)}"
        self.operations[op] = {"ends": self.t + 8, "traffic": dict(live), "mirror": dict(mirror),
                               "stuck": len(self.puts) in self.stuck_operations}
        if self.put_status != 200:  # else the endpoint looks Succeeded, on the old traffic, until the end
            self.endpoint["properties"]["provisioningState"] = "Updating"
        poll = f"https://management.azure.com/operations/{op}?api-version=2024-10-01"
        return Response(self.put_status, {"Azure-AsyncOperation": poll}, body)

    def _finish_operations(self) -> None:
        """Operations end on the fake's clock, 8 s after their PUT, whether anyone polls or not."""
        for o in self.operations.values():
            if o["stuck"] or "done" in o or self.t < o["ends"]:
                continue
            o["done"] = True
            self.endpoint["properties"].update(traffic=o["traffic"], mirrorTraffic=o["mirror"],
                                               provisioningState="Succeeded")
            self.history.append((o["traffic"], o["mirror"]))
            if self.fire and len(self.history) == self.fire["after"]:
                self.fire["at"] = self.now() + timedelta(seconds=self.fire["delay"])

    def _operation(self, op: str) -> Response:
        return Response(200, {}, {"status": "Succeeded" if "done" in self.operations[op] else "InProgress"})

    def _alerts(self, query: dict) -> Response:
        if self.fire and "at" in self.fire and self.now() >= self.fire["at"] and not self.fire.get("created"):
            self.fire["created"] = True
            self.alerts.append({"id": f"{self.fire['rule']}/providers/Microsoft.AlertsManagement/alerts/a1",
                                "properties": {"essentials": {
                                    "alertRule": self.fire["rule"], "monitorCondition": "Fired",
                                    "startDateTime": _iso(self.fire["at"]), "severity": "Sev2"}}})
        out = []
        for a in self.alerts:
            e = a["properties"]["essentials"]
            if e["alertRule"] != query["alertRule"][0]:
                continue
            if "monitorCondition" in query and e["monitorCondition"] != query["monitorCondition"][0]:
                continue
            if "customTimeRange" in query:
                start, end = query["customTimeRange"][0].split("/")
                if not start <= e["startDateTime"] <= end:
                    continue
            out.append(a)
        return Response(200, {}, {"value": out})

    def _score(self, headers, body: bytes | None) -> Response:
        auth = self.endpoint["properties"]["authMode"]
        secret = {"Key": "key-1", "AMLToken": "aml-token", "AADToken": "data-token"}[auth]
        if headers.get("Authorization") != f"Bearer {secret}":
            return Response(401, {}, {"message": "unauthorized"})
        name = headers.get("azureml-model-deployment")
        if name is None:  # Azure routes by the live traffic; the busiest deployment here
            name = max(self.traffic(), key=lambda k: self.traffic()[k])
        if name not in self.deployments:
            return Response(404, {}, {"message": f"deployment {name} not found"})
        self.scored.append({"deployment": name, "body": body})
        status = self.deployments[name]["score"]
        if status != 200:
            return Response(status, {}, {"message": "model crashed: KeyError 'tenure'"})
        return Response(200, {}, {"predictions": [1]})


def _rollout(fake: FakeAzure, final: dict, policy: ro.Policy, mirror: dict | None = None,
             deployments: tuple[str, ...] = ("champion-v3",), said: list | None = None) -> ro.Rollout:
    return ro.Rollout(fake.client(), EP_ID, list(deployments), ro.Traffic(final, mirror or {}), policy,
                      [LATENCY, ERRORS], EXAMPLE, timeout=600, say=(said if said is not None else []).append,
                      data_bearer=lambda: "data-token", utcnow=fake.now, alert_poll_seconds=30)


def _sums(steps: list[ro.Traffic]) -> list[int]:
    return [sum(s.live.values()) for s in steps]


# -- the plan (pure) ----------------------------------------------------------------------------

def test_canary_plan_moves_the_canary_share_of_the_changing_traffic_then_the_rest():
    steps = ro.plan(ro.Traffic(BEFORE), ro.Traffic(AFTER), ro.Policy("CANARY", canary_percent=10))
    assert [dict(s.live) for s in steps] == [{"champion-v2": 81, "champion-v3": 9, "challenger-v1": 10}, AFTER]


def test_linear_plan_steps_sum_to_100_and_end_at_the_blueprints_map_exactly():
    final = {**AFTER, "champion-v2": 0}  # a 0% entry the blueprint may render stays in the last PUT
    steps = ro.plan(ro.Traffic(BEFORE), ro.Traffic(final), ro.Policy("LINEAR", linear_step_percent=30))
    assert [s.live.get("champion-v3", 0) for s in steps] == [27, 54, 81, 90]
    assert _sums(steps) == [100] * 4
    assert dict(steps[-1].live) == final and steps[-1].live is not final


def test_a_small_new_share_still_gets_one_percent_in_the_canary_step():
    steps = ro.plan(ro.Traffic({"a": 95, "b": 5}), ro.Traffic({"a": 99, "c": 1}),
                    ro.Policy("CANARY", canary_percent=10))
    assert [dict(s.live) for s in steps] == [{"a": 95, "b": 4, "c": 1}, {"a": 99, "c": 1}]


def test_all_at_once_a_new_endpoint_and_a_mirror_only_change_are_one_step():
    assert len(ro.plan(ro.Traffic(BEFORE), ro.Traffic(AFTER), ro.Policy("ALL_AT_ONCE"))) == 1
    assert [dict(s.live) for s in ro.plan(ro.Traffic({}), ro.Traffic(AFTER), ro.Policy("LINEAR"))] == [AFTER]
    steps = ro.plan(ro.Traffic({"a": 100}, {"s1": 20}), ro.Traffic({"a": 100}, {"s2": 20}), ro.Policy("CANARY"))
    assert [(dict(s.live), dict(s.mirror)) for s in steps] == [({"a": 100}, {"s2": 20})]


def test_intermediate_steps_keep_the_current_mirror_and_the_last_sets_the_new_one():
    steps = ro.plan(ro.Traffic({"a": 100}, {"s1": 20}), ro.Traffic({"a2": 100}, {"s2": 20}), ro.Policy("CANARY"))
    assert [(dict(s.live), dict(s.mirror)) for s in steps] == [({"a": 90, "a2": 10}, {"s1": 20}),
                                                               ({"a2": 100}, {"s2": 20})]


@pytest.mark.parametrize(("final", "mirror", "expected"), [
    (AFTER, {"shadow": 60}, "mirror traffic is capped at 50%"),
    (AFTER, {"s1": 30, "s2": 30}, "mirror traffic is capped at 50%"),
    (AFTER, {"s1": 10, "s2": 10}, "mirrors traffic to one deployment only"),
    (AFTER, {"champion-v3": 10}, "live or mirror traffic, not both: champion-v3"),
    ({"champion-v3": 90}, {}, "traffic must sum to 100"),
    ({"champion-v3": 90.5, "x": 9.5}, {}, "a whole percentage"),
])
def test_maps_azure_refuses_are_refused_before_any_call(final, mirror, expected):
    with pytest.raises(ro.RolloutInputError, match=expected):
        ro.plan(ro.Traffic(BEFORE), ro.Traffic(final, mirror), ro.Policy())
    fake = FakeAzure(BEFORE)
    with pytest.raises(ro.RolloutInputError, match=expected):
        _rollout(fake, final, ro.Policy(), mirror)
    assert fake.calls == []


# -- the rollout against the fake ---------------------------------------------------------------

def test_a_canary_rollout_smoke_tests_moves_traffic_in_steps_and_ends_at_the_blueprints_weights():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    said: list[str] = []
    _rollout(fake, AFTER, ro.Policy("CANARY", canary_percent=10, wait_seconds=300, bake_seconds=600),
             said=said).run()
    assert [t for t, _m in fake.history] == [{"champion-v2": 81, "champion-v3": 9, "challenger-v1": 10}, AFTER]
    assert fake.traffic() == AFTER
    # smoke-tested alone, with the endpoint's key, before the first traffic update
    assert fake.scored == [{"deployment": "champion-v3", "body": EXAMPLE}]
    first_score = fake.calls.index(("POST", SCORING))
    assert first_score < fake.calls.index(("PUT", f"https://management.azure.com{EP_ID}"))
    # the PUT keeps the endpoint's writable fields and drops the read-only ones
    assert fake.puts[0]["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {"/subscriptions/x/uami": {}}}
    assert fake.puts[0]["properties"]["publicNetworkAccess"] == "Disabled" and fake.puts[0]["tags"] == {"team": "ml"}
    assert fake.t >= 300 + 600  # the wait after the canary and the bake, watched in the fake's time
    assert any("step 1/2: traffic {challenger-v1=10%, champion-v2=81%, champion-v3=9%}" in s for s in said)
    assert said[-1].startswith("churn-prod-serving [15m") and said[-1].endswith(
        "done: serves {challenger-v1=10%, champion-v3=90%}")


def test_an_alert_during_step_2_puts_the_previous_map_back_and_says_so():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    fake.fire = {"rule": LATENCY, "after": 2, "delay": 60}
    with pytest.raises(OperationError) as failure:
        _rollout(fake, AFTER, ro.Policy("LINEAR", linear_step_percent=25, wait_seconds=300)).run()
    message = str(failure.value)
    assert "step 2/4: alert churn-prod-serving-latency fired at 2026-12-01T22:" in message
    assert "(during step 2/4, {challenger-v1=10%, champion-v2=45%, champion-v3=45%})" in message
    assert message.endswith("Traffic is back to the previous map {challenger-v1=10%, champion-v2=90%}")
    assert fake.traffic() == BEFORE
    assert [t for t, _m in fake.history] == [
        {"champion-v2": 68, "champion-v3": 22, "challenger-v1": 10},
        {"champion-v2": 45, "champion-v3": 45, "challenger-v1": 10}, BEFORE]


def test_a_failed_smoke_test_never_moves_traffic():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3", score=500)
    with pytest.raises(OperationError, match=r"failed before any traffic moved: smoke test of deployment "
                                             r"champion-v3: HTTP 500: .*KeyError 'tenure'.*The endpoint still "
                                             r"serves \{challenger-v1=10%, champion-v2=90%\}"):
        _rollout(fake, AFTER, ro.Policy("CANARY")).run()
    assert fake.put_count() == 0 and fake.traffic() == BEFORE
    assert [s["deployment"] for s in fake.scored] == ["champion-v3"]  # the header reached the new one


def test_a_rerun_after_success_changes_nothing():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    _rollout(fake, AFTER, ro.Policy("CANARY", wait_seconds=60, bake_seconds=60)).run()
    puts, calls = fake.put_count(), len(fake.calls)
    said: list[str] = []
    _rollout(fake, AFTER, ro.Policy("CANARY", wait_seconds=60, bake_seconds=60), said=said).run()
    assert fake.put_count() == puts and fake.calls[calls:] == [("GET", f"https://management.azure.com{EP_ID}")]
    assert said[-1].endswith("already serves the final map {challenger-v1=10%, champion-v3=90%}: nothing to do")


def test_a_shadow_gets_its_mirror_traffic_after_its_smoke_test():
    fake = FakeAzure({"champion-v2": 100})
    fake.add_deployment("shadow-v3")
    _rollout(fake, {"champion-v2": 100}, ro.Policy("CANARY"), mirror={"shadow-v3": 20},
             deployments=("shadow-v3",)).run()
    assert fake.history == [({"champion-v2": 100}, {"shadow-v3": 20})]
    assert [s["deployment"] for s in fake.scored] == ["shadow-v3"]


def test_an_alert_already_firing_refuses_before_any_traffic_moves():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    fake.alerts.append({"properties": {"essentials": {"alertRule": ERRORS, "monitorCondition": "Fired",
                                                      "startDateTime": "2026-12-01T21:00:00Z"}}})
    with pytest.raises(OperationError, match=r"refused: alert churn-prod-serving-errors has been firing since "
                                             r"2026-12-01T21:00:00Z"):
        _rollout(fake, AFTER, ro.Policy("CANARY")).run()
    assert fake.put_count() == 0 and fake.scored == []


@pytest.mark.parametrize(("change", "expected"), [
    ("missing", "alert rule churn-prod-serving-errors does not exist"),
    ("disabled", "alert rule churn-prod-serving-errors is disabled: the rollout would watch nothing"),
])
def test_a_watched_rule_that_cannot_fire_refuses_before_any_traffic_moves(change, expected):
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    if change == "missing":
        del fake.rules[ERRORS]
    else:
        fake.rules[ERRORS]["properties"]["enabled"] = False
    with pytest.raises(OperationError, match=f"failed before any traffic moved: refused: {expected}"):
        _rollout(fake, AFTER, ro.Policy("CANARY")).run()
    assert fake.put_count() == 0 and fake.scored == []


def test_a_wait_shorter_than_the_rules_window_is_pointed_out():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    said: list[str] = []
    _rollout(fake, AFTER, ro.Policy("CANARY", wait_seconds=60, bake_seconds=600), said=said).run()
    assert any("the alert rules look at 360 s of metrics; a wait of 60 s may end" in s for s in said)


def test_an_alert_fired_while_the_deployment_provisioned_refuses_before_any_traffic_moves():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    fake.alerts.append({"properties": {"essentials": {"alertRule": LATENCY, "monitorCondition": "Resolved",
                                                      "startDateTime": "2026-12-01T22:00:05Z"}}})
    with pytest.raises(OperationError, match=r"before any traffic moved: refused: alert churn-prod-serving-latency "
                                             r"fired at 2026-12-01T22:00:05Z"):
        _rollout(fake, AFTER, ro.Policy("CANARY")).run()
    assert fake.put_count() == 0


def test_a_deployment_that_never_finishes_provisioning_times_out_without_moving_traffic():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3", states=["Creating"])
    with pytest.raises(OperationError, match=r"deployment champion-v3 still Creating after 10 min.*still serves"):
        _rollout(fake, AFTER, ro.Policy("CANARY")).run()
    assert fake.put_count() == 0 and 600 <= fake.t <= 620


def test_a_failed_deployment_is_not_rolled_out():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3", states=["Creating", "Failed"])
    with pytest.raises(OperationError, match=r"deployment champion-v3 is Failed: see its logs"):
        _rollout(fake, AFTER, ro.Policy("CANARY")).run()
    assert fake.put_count() == 0


def test_a_traffic_update_that_never_ends_times_out_and_says_the_restore_failed_too():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    fake.stuck_operations = {1}
    with pytest.raises(OperationError) as failure:
        _rollout(fake, AFTER, ro.Policy("CANARY")).run()
    message = str(failure.value)
    assert "step 1/2: PUT online endpoint churn-prod-serving: not finished after 10 min" in message
    assert "Restoring the previous traffic {challenger-v1=10%, champion-v2=90%} failed too: " in message
    assert message.endswith('az ml online-endpoint update -n churn-prod-serving --traffic '
                            '"champion-v2=90 challenger-v1=10"')


def test_a_refused_traffic_update_restores_the_previous_map():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    fake.refused_puts = {2}
    with pytest.raises(OperationError, match=r"step 2/2: PUT .*HTTP 409: Conflict: another operation is in progress"
                                             r"\. Traffic is back to the previous map \{challenger-v1=10%, "
                                             r"champion-v2=90%\}$"):
        _rollout(fake, AFTER, ro.Policy("CANARY")).run()
    assert fake.traffic() == BEFORE and len(fake.history) == 2


def test_a_map_naming_a_deployment_that_is_gone_fails_and_says_the_restore_failed_too():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    del fake.deployments["challenger-v1"]  # Azure refuses every map naming it, the previous one too
    with pytest.raises(OperationError, match=r"step 1/2: PUT .*HTTP 400: BadRequest: deployments "
                                             r"\['challenger-v1'\] do not exist.*failed too"):
        _rollout(fake, AFTER, ro.Policy("CANARY")).run()


def test_an_update_answered_200_is_still_followed_until_the_endpoint_serves_it():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    fake.put_status = 200  # nothing for arm.Client.wait to follow, and the endpoint looks Succeeded at first
    _rollout(fake, AFTER, ro.Policy("CANARY", wait_seconds=60)).run()
    assert [t for t, _m in fake.history] == [{"champion-v2": 81, "champion-v3": 9, "challenger-v1": 10}, AFTER]


def test_a_token_that_expires_during_the_rollout_is_replaced():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    issued = iter(["mgmt-token", "mgmt-token-2"])
    client = fake.client(ro.RefreshingClient, bearer=lambda: next(issued))
    engine = ro.Rollout(client, EP_ID, ["champion-v3"], ro.Traffic(AFTER), ro.Policy("CANARY", wait_seconds=300),
                        [LATENCY], EXAMPLE, timeout=600, say=lambda _: None, data_bearer=lambda: "data-token",
                        utcnow=fake.now, alert_poll_seconds=30)
    original = fake._alerts

    def expire_then_list(query):  # the first token expires during the canary's wait
        fake.tokens = {"mgmt-token-2"}
        return original(query)

    fake._alerts = expire_then_list
    engine.run()
    assert fake.traffic() == AFTER


@pytest.mark.parametrize(("auth", "calls"), [("Key", ["listKeys"]), ("AMLToken", ["token"]), ("AADToken", [])])
def test_the_smoke_test_takes_the_credential_of_the_endpoints_auth_mode(auth, calls):
    fake = FakeAzure(BEFORE, auth=auth)
    fake.add_deployment("champion-v3")
    answer = smoke_test(fake.client(), EP_ID, "champion-v3", EXAMPLE, data_bearer=lambda: "data-token")
    assert answer == {"predictions": [1]}
    assert [p.rsplit("/", 1)[-1] for m, p in fake.calls if m == "POST" and p != SCORING] == calls


def test_a_gateway_error_is_retried_but_a_model_error_is_not():
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3", score=503)
    with pytest.raises(OperationError, match="HTTP 503"):
        smoke_test(fake.client(), EP_ID, "champion-v3", EXAMPLE)
    assert len(fake.scored) == 3
    fake.add_deployment("champion-v4", score=500)
    fake.scored.clear()
    with pytest.raises(OperationError, match="HTTP 500"):
        smoke_test(fake.client(), EP_ID, "champion-v4", EXAMPLE)
    assert len(fake.scored) == 1


# -- the command ---------------------------------------------------------------------------------

def _invoke(monkeypatch, tmp_path, fake: FakeAzure, doc, *extra: str):
    monkeypatch.setattr(cli_azure_rollout, "_client", lambda poll: fake.client())
    example = tmp_path / "input_example.json"
    example.write_bytes(EXAMPLE)
    env = {cli_azure_rollout.CONFIG_ENV: doc if isinstance(doc, str) else json.dumps(doc)}
    return CliRunner().invoke(main, ["update-online-endpoint", "--endpoint-id", EP_ID, "--deployment", "champion-v3",
                                     "--smoke-request", str(example), *extra], env=env)


DOC = {"traffic": AFTER, "policy": {"mode": "LINEAR", "linear_step_percent": 50, "wait_seconds": 0,
                                    "bake_seconds": 0}, "alert_rule_ids": [LATENCY, ERRORS]}


def test_the_command_rolls_out_and_exits_0(monkeypatch, tmp_path):
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3")
    result = _invoke(monkeypatch, tmp_path, fake, DOC)
    assert result.exit_code == 0, result.output
    assert fake.traffic() == AFTER and len(fake.history) == 2
    assert "step 2/2" in result.output


def test_the_command_exits_1_with_the_reason_when_the_rollout_fails(monkeypatch, tmp_path):
    fake = FakeAzure(BEFORE)
    fake.add_deployment("champion-v3", score=500)
    result = _invoke(monkeypatch, tmp_path, fake, DOC)
    assert result.exit_code == 1
    assert "Error: rollout of champion-v3 on churn-prod-serving failed before any traffic moved" in result.output


@pytest.mark.parametrize(("doc", "expected"), [
    ({**DOC, "mirror_traffic": {"shadow": 60}}, "mirror traffic is capped at 50%"),
    ({**DOC, "policy": {"mode": "BLUE"}}, "policy mode must be one of ALL_AT_ONCE, CANARY, LINEAR"),
    ({**DOC, "wieghts": {}}, "unknown key 'wieghts'"),
    ({**DOC, "traffic": {"champion-v2": 100}}, "new deployment champion-v3 gets no traffic in the final map"),
    ("{not json", "MLOPS_ROLLOUT_CONFIG: not JSON"),
])
def test_the_command_exits_2_on_a_bad_document_without_calling_azure(monkeypatch, tmp_path, doc, expected):
    fake = FakeAzure(BEFORE)
    result = _invoke(monkeypatch, tmp_path, fake, doc)
    assert result.exit_code == 2, result.output
    assert expected in result.output and fake.calls == []


def test_the_command_exits_2_on_a_missing_smoke_request(monkeypatch, tmp_path):
    fake = FakeAzure(BEFORE)
    monkeypatch.setattr(cli_azure_rollout, "_client", lambda poll: fake.client())
    result = CliRunner().invoke(main, ["update-online-endpoint", "--endpoint-id", EP_ID, "--deployment", "x",
                                       "--smoke-request", str(tmp_path / "missing.json")],
                                env={cli_azure_rollout.CONFIG_ENV: json.dumps({**DOC, "traffic": {"x": 100}})})
    assert result.exit_code == 2 and "smoke request" in result.output and fake.calls == []
