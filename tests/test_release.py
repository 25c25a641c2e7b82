"""`mlops release`: the steps' order, the skip flags, the refusals, the report (also on failure).

These run the real command with fakes at the edges (the step functions of release_steps.Context, or
the registry). The whole release in the `local` namespace (train, register, the model served on
127.0.0.1, approve, promote, plan, apply) runs for real in tests/test_local_features.py, on the
training set built from the feature store: one release applies the five serving stacks, in the one
emulator the session shares with the lifecycle test (conftest.py `local_namespace`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from mlops_dsl import release as r
from mlops_dsl import release_steps
from mlops_dsl.cli import main
from mlops_dsl.errors import OperationError

from .conftest import ROOT

ARGS = ["--namespaces", str(ROOT / "namespaces.yaml"), "--blueprint", str(ROOT / "blueprints" / "customer_churn.py")]


# --- plain: the steps, the refusals, the latency gate, the runner ------------------------------------------

def _names(steps: list[r.Step], outcome: str) -> list[str]:
    return [s.name for s in steps if s.outcome == outcome]


def test_the_steps_run_in_the_lifecycle_order_and_each_flag_skips_its_own() -> None:
    every = r.steps_for(first=True, skip_training=False, skip_local_test=False, skip_deploy=False)
    assert [s.name for s in every] == ["train", "register", "local-test", "approve", "promote", "plan", "apply"]
    assert _names(every, "pending") == list(r.STEPS)
    assert _names(r.steps_for(True, True, False, False), r.SKIPPED) == ["train", "register"]
    assert _names(r.steps_for(True, False, True, False), r.SKIPPED) == ["local-test"]
    assert _names(r.steps_for(True, False, False, True), r.SKIPPED) == ["plan", "apply"]
    later = r.steps_for(first=False, skip_training=True, skip_local_test=False, skip_deploy=False)
    assert _names(later, r.SKIPPED) == ["train", "register"]
    assert "later namespace" in later[0].reason


def test_refusals_name_the_namespace_and_what_to_give() -> None:
    problem = r.refusal("staging", "dev", skip_training=False, version=None, source="namespaces.yaml")
    assert problem is not None and "models.promoted_from: dev" in problem and "--skip-training" in problem
    assert "--version" in r.refusal("staging", "dev", True, 3, "namespaces.yaml")
    assert "--version N" in r.refusal("dev", None, True, None, "namespaces.yaml")
    assert "only with --skip-training" in r.refusal("dev", None, False, 4, "namespaces.yaml")
    assert r.refusal("staging", "dev", True, None, "namespaces.yaml") is None
    assert r.refusal("dev", None, True, 4, "namespaces.yaml") is None


def test_the_latency_gate_is_the_alarm_times_the_margin() -> None:
    assert r.latency_problem(700.0, 0, budget_ms=500, margin=1.5) is None
    assert "over 750 ms" in r.latency_problem(751.0, 0, 500, 1.5)
    assert r.latency_problem(1.0, 2, 500, 1.5) == "2 requests failed"
    assert r.latency_problem(None, 0, 500, 1.5) == "no request was answered"


def _release() -> r.Release:
    return r.Release("local", "customer-churn", "champion", {}, r.steps_for(True, False, False, False))


def test_a_failed_step_stops_the_run_and_the_report_says_so(tmp_path: Path) -> None:
    calls: list[str] = []
    reports: list[dict[str, Any]] = []
    path = tmp_path / "releases" / "local.json"

    def action(name: str):
        def run(release: r.Release, step: r.Step) -> dict[str, Any]:
            calls.append(name)
            step.inputs = {"seen": name}
            if name == "local-test":
                raise OperationError("the model served on 127.0.0.1 answered its input example wrongly")
            return {"did": name}
        return run

    def write(release: r.Release) -> None:
        r.write_atomically(path, release.to_json())
        reports.append(json.loads(path.read_text()))

    release = _release()
    with pytest.raises(OperationError):
        r.run(release, {name: action(name) for name in r.STEPS}, write, lambda _: None)
    assert calls == ["train", "register", "local-test"]
    report = json.loads(path.read_text())
    assert report["outcome"] == r.FAILED and report["finished"]
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["register"]["outcome"] == r.RAN and steps["register"]["outputs"] == {"did": "register"}
    assert steps["local-test"]["outcome"] == r.FAILED and "answered its input example" in steps["local-test"]["error"]
    assert steps["local-test"]["inputs"] == {"seen": "local-test"} and steps["local-test"]["seconds"] >= 0
    assert [steps[n]["outcome"] for n in ("approve", "promote", "plan", "apply")] == [r.SKIPPED] * 4
    assert steps["apply"]["reason"] == "not reached: local-test failed"
    assert len(reports) >= 3 and reports[0]["steps"][0]["outcome"] == r.RAN  # rewritten after every step
    assert not list(path.parent.glob(".*.tmp"))  # the temporary files were renamed over the report


def test_deferred_and_skipped_steps() -> None:
    def ok(release: r.Release, step: r.Step) -> None:
        return None

    def already(release: r.Release, step: r.Step) -> None:
        raise r.Skip("version 3 already is Approved")

    def manual(release: r.Release, step: r.Step) -> None:
        raise r.Deferred("run `mlops apply -n prod --approve abc`")

    release = _release()
    actions = {**{n: ok for n in r.STEPS}, "approve": already, "apply": manual}
    r.run(release, actions, lambda _: None, lambda _: None)
    outcomes = {s.name: s.outcome for s in release.steps}
    assert outcomes["approve"] == r.SKIPPED and outcomes["promote"] == r.RAN and outcomes["apply"] == r.DEFERRED
    assert release.outcome == r.DEFERRED and "--approve abc" in release.steps[-1].reason


def test_report_names_are_per_namespace_and_utc_time(tmp_path: Path) -> None:
    first = r.report_path(tmp_path, "dev", "2026-12-02T03:04:05.000001Z")
    assert first.name == "dev-20261202T030405Z.json"
    first.write_text("{}")
    assert r.report_path(tmp_path, "dev", "2026-12-02T03:04:05.5Z").name == "dev-20261202T030405Z-2.json"


# --- the command, with fake steps -----------------------------------------------------------------

@pytest.fixture
def fake_steps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, int | None]]:
    """Every step of release_steps.Context replaced by a recorder of (step, version); workdir in tmp."""
    calls: list[tuple[str, int | None]] = []
    monkeypatch.setenv("MLOPS_WORKDIR", str(tmp_path / "work"))

    def actions(self: release_steps.Context) -> dict[str, Any]:
        def record(name: str):
            def run(release: r.Release, step: r.Step) -> dict[str, Any]:
                calls.append((name, release.version))
                if name == "register":
                    release.version = 9
                if name == "plan" and os.environ.get("FAKE_PLAN_FAILS"):
                    raise OperationError("some stacks could not be planned; see the table above")
                if name == "approve" and os.environ.get("FAKE_NO_CREDENTIALS"):
                    from botocore.exceptions import NoCredentialsError

                    raise NoCredentialsError()
                return {"step": name}
            return run
        return {name: record(name) for name in r.STEPS}

    monkeypatch.setattr(release_steps.Context, "actions", actions)
    return calls


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["release", *args, *ARGS], catch_exceptions=False)


def _report(tmp_path: Path, namespace: str) -> dict[str, Any]:
    (found,) = (tmp_path / "work" / "releases").glob(f"{namespace}-*.json")
    return json.loads(found.read_text())


def test_release_in_the_first_namespace_runs_every_step(fake_steps: list, tmp_path: Path) -> None:
    result = _invoke("-n", "local")
    assert result.exit_code == 0, result.output
    assert [name for name, _ in fake_steps] == list(r.STEPS)
    assert "[1/7] train ..." in result.output and "[7/7] apply: ran" in result.output
    report = _report(tmp_path, "local")
    assert report["outcome"] == r.RAN and report["version"] == 9 and report["variant"] == "champion"
    assert report["platform"] == "customer-churn"


def test_the_skip_flags_skip_their_steps(fake_steps: list, tmp_path: Path) -> None:
    result = _invoke("-n", "local", "--skip-training", "--version", "2", "--skip-local-test", "--skip-deploy")
    assert result.exit_code == 0, result.output
    assert fake_steps == [("approve", 2), ("promote", 2)]
    steps = {s["name"]: s for s in _report(tmp_path, "local")["steps"]}
    assert steps["train"]["reason"] == "--skip-training" and steps["plan"]["reason"] == "--skip-deploy"
    assert steps["local-test"]["outcome"] == r.SKIPPED and "not deployed (--skip-deploy)" in result.output


def test_a_later_namespace_needs_skip_training_and_releases_its_predecessors_pin(fake_steps: list,
                                                                                  tmp_path: Path) -> None:
    refused = _invoke("-n", "staging", "--platform", "customer-churn")
    assert refused.exit_code == 2 and not fake_steps
    assert "models.promoted_from: dev" in refused.output and "--skip-training" in refused.output
    assert not (tmp_path / "work" / "releases").exists()  # nothing ran: no report
    released = _invoke("-n", "staging", "--platform", "customer-churn", "--skip-training")
    assert released.exit_code == 0, released.output
    dev = (ROOT / "models" / "dev.yaml").read_text()
    pinned = int(dev.split("champion: {version: ", 1)[1].split(",", 1)[0])
    assert fake_steps[0] == ("local-test", pinned) and [n for n, _ in fake_steps][-1] == "apply"


def test_a_failed_step_exits_1_and_still_writes_the_report(fake_steps: list, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PLAN_FAILS", "1")
    result = _invoke("-n", "local")
    assert result.exit_code == 1
    assert "some stacks could not be planned" in result.output
    report = _report(tmp_path, "local")
    assert report["outcome"] == r.FAILED
    assert [s["outcome"] for s in report["steps"]][-2:] == [r.FAILED, r.SKIPPED]


def test_a_cloud_sdks_error_is_a_message_not_a_traceback(fake_steps: list, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_NO_CREDENTIALS", "1")
    result = _invoke("-n", "local")
    assert result.exit_code == 1 and "Error: NoCredentialsError: Unable to locate credentials" in result.output
    steps = {s["name"]: s for s in _report(tmp_path, "local")["steps"]}
    assert steps["approve"]["outcome"] == r.FAILED and "Unable to locate credentials" in steps["approve"]["error"]


def test_user_errors_before_any_step(fake_steps: list) -> None:
    unknown = _invoke("-n", "local", "--variant", "nobody")
    assert unknown.exit_code == 2 and "--variant nobody" in unknown.output and "champion, challenger" in unknown.output
    assert _invoke("-n", "local", "--version", "3").exit_code == 2
    assert _invoke("-n", "nowhere").exit_code == 2
    assert not fake_steps


# --- the real steps that decide without a cloud -------------------------------------------------------

class _Registry:
    def __init__(self, status: str):
        self.pkg = SimpleNamespace(group="customer-churn-dev", version=4, status=status)
        self.set: list[tuple[str, str]] = []

    def package(self, namespace: Any, platform: str, version: int) -> Any:
        return self.pkg

    def set_status(self, namespace: Any, pkg: Any, status: str, reason: str | None) -> None:
        self.set.append((status, reason or ""))


def _context(approval: str, tmp_path: Path) -> release_steps.Context:
    namespace = SimpleNamespace(name="dev" if approval == "auto" else "prod", approval=approval)
    target = SimpleNamespace(namespace=namespace, platform=SimpleNamespace(name="customer-churn", cloud="aws"),
                             serving=SimpleNamespace(name="serving"))
    return release_steps.Context(namespace.name, target, "champion", (), tmp_path / "namespaces.yaml",  # type: ignore[arg-type]
                                 tmp_path / "terraform", 1, None, tmp_path / "config.yaml")


@pytest.mark.parametrize("approval", ["auto", "manual"])
def test_approve_follows_the_namespaces_approval_rule(approval: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _Registry("PendingManualApproval")
    context = _context(approval, tmp_path)
    monkeypatch.setattr(release_steps.Context, "registry", lambda self: registry)
    release = _release()
    release.version = 4
    step = next(s for s in release.steps if s.name == "approve")
    if approval == "manual":
        with pytest.raises(r.Deferred, match=r"mlops models approve -n prod --platform customer-churn --version 4"):
            context.approve(release, step)
        assert not registry.set
    else:
        assert context.approve(release, step)["status"] == "Approved"
        assert registry.set[0][0] == "Approved" and "mlops release -n dev (approval: auto)" in registry.set[0][1]
    registry.pkg.status = "Approved"
    with pytest.raises(r.Skip, match="already is Approved"):
        context.approve(release, step)
    registry.pkg.status = "Rejected"
    with pytest.raises(OperationError, match="is Rejected"):
        context.approve(release, step)


def test_apply_of_a_manual_namespace_is_deferred_with_the_command_to_run(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_dsl.runner.plans import StackPlan, plan_dir, record_file

    monkeypatch.setenv("MLOPS_WORKDIR", str(tmp_path / "work"))
    work = tmp_path / "work"
    plan_dir(work, "prod").mkdir(parents=True)
    (plan_dir(work, "prod") / "index.json").write_text(json.dumps(
        {"namespace": "prod", "summary_hash": "abc123", "stacks": ["prod/customer-churn/serving"]}))
    record_file(work, "prod", "customer-churn", "serving").parent.mkdir(parents=True)
    record_file(work, "prod", "customer-churn", "serving").write_text(
        StackPlan("customer-churn", "serving", "d", "planned").to_json())
    release = _release()
    with pytest.raises(r.Deferred, match=r"mlops apply -n prod --approve abc123"):
        _context("manual", tmp_path).apply(release, release.steps[-1])


# --- the local test, and the stacks a pin reaches ------------------------------------------------------

def test_the_local_test_serves_the_model_and_applies_the_latency_gate(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The real local test on a small model served on 127.0.0.1 (about 5 s): the answer is checked, then the
    burst's p99 against an impossible limit fails the step, its measurements kept for the report."""
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"tenure": [0.0, 1.0, 2.0, 3.0], "charges": [5.0, 3.0, 2.0, 1.0]})
    directory = tmp_path / "model"
    mlflow.sklearn.save_model(LogisticRegression().fit(frame, [0, 0, 1, 1]), directory, input_example=frame.head(2),
                              serialization_format="pickle", pip_requirements=["scikit-learn"])
    monkeypatch.setattr(release_steps.Context, "_model_directory", lambda self, version, scratch: (directory, "m"))
    monkeypatch.setattr(release_steps, "LOCAL_TEST_REQUESTS", 10)
    monkeypatch.setattr(release_steps, "LOCAL_TEST_RPS", 50.0)
    context = _context("auto", tmp_path)
    context.target.serving.alarms = SimpleNamespace(p99_latency_ms=1.0)
    context.latency_margin = 0.1  # 0.1 ms: no HTTP round trip is that fast
    release = _release()
    release.version = 1
    step = next(s for s in release.steps if s.name == "local-test")
    with pytest.raises(OperationError, match=r"local test: p99 latency [\d.]+ ms is over 0.1 ms"):
        context.local_test(release, step)
    assert step.outputs["smoke"] == "ok" and step.outputs["rows"] == 2
    assert step.outputs["sent"] == 10 and step.outputs["errors"] == 0 and step.outputs["limit_ms"] == 0.1
    assert step.outputs["p99_ms"] > 0.1  # the passing case: tests/test_local_features.py


def test_plan_and_apply_reach_the_stacks_a_pin_reaches() -> None:
    """Every ModelServing of the platform and whatever depends on one; never data, features or training."""
    from mlops_dsl.cli_models import _targets
    from mlops_dsl.templates.serving import ModelServing

    (target,) = _targets("local", (), (ROOT / "blueprints" / "customer_churn.py",), ROOT / "namespaces.yaml")
    context = release_steps.Context("local", target, "champion", (), ROOT / "namespaces.yaml", ROOT / "terraform", 1,
                                    None, ROOT / "training" / "config.yaml")
    chosen = context.pinned_templates()
    serving = {t.name for t in target.platform.templates if isinstance(t, ModelServing)}
    assert serving <= set(chosen) and chosen[0] == "serving"
    assert not {"data", "features", "training"} & set(chosen)
    edges = target.platform.edges()
    assert all(name in serving or set(edges[name]) & set(chosen) for name in chosen)


def test_the_local_test_of_an_azure_version_not_trained_here_says_what_to_do(tmp_path: Path) -> None:
    context = _context("auto", tmp_path)
    context.target.platform.cloud = "azure"
    with pytest.raises(OperationError, match="--skip-local-test"):
        context._model_directory(3, tmp_path)
