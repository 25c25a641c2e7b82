"""The steps of `mlops release`, each calling the code the single-purpose commands run.

    train       training/ on this machine (`python -m training train`): fit, evaluate, gates, MLflow run
                and the model version aliased `candidate`. It does not start the SageMaker pipeline
                or an Azure ML job: those run in the cloud on their schedule, and register on their own.
    register    `mlops models register` of that MLflow version: AWS model package, Azure ML registry
                model version, PendingManualApproval either way.
    local-test  the version served on 127.0.0.1 by serving/ (`python -m serving serve`, one worker):
                the input example checked as `mlops smoke` checks an endpoint's answer (smoke.py), then
                an open-loop burst (loadtest.py) whose p99 must stay within the blueprint's p99 alarm
                times a margin. On AWS the artifact is the registered model.tar.gz, read from the
                registry's S3 with its digest checked; on Azure, the MLflow model this run trained (a
                version already in an Azure ML registry is not downloaded here: --skip-local-test).
    approve     `mlops models approve` in an `approval: auto` namespace, recording why; deferred in a
                manual one (a person approves, then re-runs with --skip-training --version N).
    promote     `mlops models promote`: one line of models/<namespace>.yaml.
    plan/apply  `mlops plan|apply -n NS --platform P --template T...`: the stacks a pin reaches (every
                ModelServing and what depends on one). Apply runs where the namespace's approval allows
                it without a person; a manual namespace is deferred after the plan, with the
                `--approve <hash>` command to run.

The command functions are called in this process (their click callbacks), not as subprocesses;
only the model server runs in its own process, since it is a server that must be stopped.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .errors import MlopsError, OperationError
from .release import Deferred, Release, Skip, Step, latency_problem

if TYPE_CHECKING:
    from .cli_models import Target

# The local test's load: 100 requests at 25/s (4 s), so the p99 is the 99th of 100 latencies.
LOCAL_TEST_REQUESTS = 100
LOCAL_TEST_RPS = 25.0
LOCAL_TEST_WARMUP = 5  # sequential requests before the burst, not measured
# The margin over the blueprint's p99 alarm (ModelServing alarms.p99_latency_ms): the machine that
# runs the release is rarely the endpoint's instance type and is often busy (a laptop, a shared CI
# runner), so it may be half as slow again without failing the gate; a model an order of magnitude
# over the alarm, which would roll its own deployment back, is still stopped before it is deployed.
LATENCY_MARGIN = 1.5
CHECKOUT = Path(__file__).resolve().parents[1]  # training/ and serving/ are not installed packages
DEFAULT_CONFIG = CHECKOUT / "training" / "config.yaml"  # training/config.py DEFAULT_CONFIG


@dataclass
class Context:
    """What every step needs: the command's arguments and the platform they resolve to."""

    wanted: str
    target: Target
    variant: str
    blueprints: tuple[Path, ...]
    namespaces_file: Path
    out: Path
    parallelism: int
    data: Path | None
    config: Path
    latency_margin: float = LATENCY_MARGIN
    model_uri: str | None = None  # the MLflow model version this run trained

    @property
    def platform(self) -> str:
        return self.target.platform.name

    @property
    def cloud(self) -> str:
        return self.target.platform.cloud

    def pinned_templates(self) -> tuple[str, ...]:
        """The templates a pin reaches, in deploy order: every ModelServing of the platform and every
        template that depends on one (a batch job of a served variant). The others (data, features,
        training) do not read the pins; they are the bootstrap's (README "The model lifecycle")."""
        from .templates.serving import ModelServing

        platform = self.target.platform
        edges, order = platform.edges(), platform.deploy_order()
        keep = {t.name for t in platform.templates if isinstance(t, ModelServing)}
        for name in order:
            if any(dep in keep for dep in edges[name]):
                keep.add(name)
        return tuple(name for name in order if name in keep)

    def registry(self) -> Any:
        from .cli_models import registry_of

        return registry_of(self.cloud)

    def actions(self) -> dict[str, Any]:
        return {"train": self.train, "register": self.register, "local-test": self.local_test,
                "approve": self.approve, "promote": self.promote, "plan": self.plan, "apply": self.apply}

    # --- train and register -----------------------------------------------------------------------

    def train(self, release: Release, step: Step) -> Mapping[str, Any]:
        importable_checkout()
        from training import train as t
        from training.cli import DEFAULT_DATA, report
        from training.config import ConfigError
        from training.config import load as load_config
        from training.data import DataError, generate_churn, load
        from training.model import SearchError

        step.inputs = {"config": str(self.config), "data": str(self.data or DEFAULT_DATA)}
        try:
            config = load_config(self.config)
            if config.platform != self.platform:
                raise MlopsError(f"{self.config}: platform is {config.platform!r}, but this release is of platform "
                                 f"{self.platform!r}: give --config with that platform's training configuration")
            data = self.data
            if data is None:  # as `python -m training train` does: the sample, generated on first use
                data = DEFAULT_DATA
                if not data.exists():
                    data.parent.mkdir(parents=True, exist_ok=True)
                    generate_churn().to_csv(data, index=False)
            fitted = t.fit(load(data, config), config)
            result = t.record(config, fitted, str(data))
        except (DataError, ConfigError) as exc:
            raise MlopsError([line.removeprefix("Error: ") for line in report(exc)]) from None
        except SearchError as exc:
            raise OperationError(str(exc)) from None
        click.echo(t.summary(result))
        if not fitted.passed or result.version is None:
            failed = [g.message for g in fitted.gates if not g.passed]
            raise OperationError(["training: a gate failed, nothing was registered", *failed])
        self.model_uri = f"models:/{config.platform}/{result.version}"
        return {"mlflow_run_id": result.run_id, "mlflow_model": self.model_uri,
                "metrics": {k: round(float(v), 6) for k, v in fitted.results.items()}}

    def register(self, release: Release, step: Step) -> Mapping[str, Any]:
        from .cli_models import register

        assert self.model_uri is not None, "register runs after train"
        step.inputs = {"model": self.model_uri}
        registry = self.registry()
        before = {p.version for p in registry.packages(self.target.namespace, self.platform)}
        register.callback(wanted=self.wanted, model_uri=self.model_uri, platforms=(self.platform,),  # type: ignore[misc]
                          blueprints=self.blueprints, namespaces_file=self.namespaces_file)
        new = [p for p in registry.packages(self.target.namespace, self.platform) if p.version not in before]
        if len(new) != 1:
            raise OperationError(f"registered {self.model_uri}, but {len(new)} new versions appeared in "
                                 f"{registry.group_name(self.platform, self.target.namespace)} meanwhile: "
                                 "release one of them with --skip-training --version N")
        release.version = new[0].version
        return {"group": new[0].group, "version": new[0].version, "status": new[0].status, "arn": new[0].arn}

    # --- the local serving test -------------------------------------------------------------------

    def local_test(self, release: Release, step: Step) -> Mapping[str, Any]:
        from . import smoke
        from .cli_smoke import http_sender
        from .loadtest import run

        assert release.version is not None
        budget = float(self.target.serving.alarms.p99_latency_ms)
        step.inputs = {"version": release.version, "requests": LOCAL_TEST_REQUESTS, "rps": LOCAL_TEST_RPS,
                       "p99_budget_ms": budget, "margin": self.latency_margin}
        with tempfile.TemporaryDirectory(prefix="mlops-release-") as tmp:
            directory, source = self._model_directory(release.version, Path(tmp))
            step.inputs["model"] = source
            example = smoke.example(directory, source)
            with served(directory, Path(tmp) / "serve.log") as port:
                status, body = post(port, example.body)
                problem = (f"HTTP {status}: {body[:300]!r}" if status != 200
                           else smoke.check_answer(body, example.rows, example.classes))
                if problem:
                    raise smoke.SmokeFailed(f"the model served on 127.0.0.1 answered its input example wrongly: "
                                            f"{problem}")
                for _ in range(LOCAL_TEST_WARMUP):  # one-time costs of a fresh process, not the model's latency
                    post(port, example.body)
                load = run(http_sender(port, "/invocations", example.body), LOCAL_TEST_RPS,
                           LOCAL_TEST_REQUESTS / LOCAL_TEST_RPS, LOCAL_TEST_REQUESTS)
        for line in load.lines():
            click.echo(f"  {line}")
        p50, p99 = load.percentile(50), load.percentile(99)
        outputs = {"smoke": "ok", "rows": example.rows, "sent": load.sent, "errors": load.errors,
                   "p50_ms": _ms(p50), "p99_ms": _ms(p99), "limit_ms": budget * self.latency_margin}
        step.outputs = outputs
        problem = latency_problem(p99, load.errors, budget, self.latency_margin)
        if problem:
            raise OperationError(f"local test: {problem}; first errors: {load.first_errors}" if load.first_errors
                                 else f"local test: {problem}")
        return outputs

    def _model_directory(self, version: int, scratch: Path) -> tuple[Path, str]:
        """The version's MLflow model unpacked in `scratch`, and where it came from."""
        from . import packaging, smoke

        if self.cloud == "azure":
            if self.model_uri is None:
                raise OperationError(f"local test: platform {self.platform!r} is on Azure, and a version already "
                                     "in the Azure ML registry is not downloaded here: give --skip-local-test (or "
                                     "release from training, which tests the model it trained)")
            return packaging.resolve(self.model_uri, scratch).directory, self.model_uri
        from . import registry

        pkg = registry.package(self.target.namespace, self.platform, version)
        sha256 = registry.artifact_sha256(self.target.namespace, pkg)
        bucket, key = registry._split_s3(pkg.artifact)
        s3 = registry.client(registry._registry(self.target.namespace), "s3")
        body = registry.aws_call(f"reading {pkg.artifact}", s3.get_object, Bucket=bucket, Key=key)["Body"]
        directory = scratch / "model"
        try:
            smoke.unpack(body, directory, sha256, pkg.artifact)
        finally:
            body.close()
        return directory, pkg.artifact

    # --- approve and promote ----------------------------------------------------------------------

    def approve(self, release: Release, step: Step) -> Mapping[str, Any]:
        from .registry import APPROVED, REJECTED

        assert release.version is not None
        ns, registry = self.target.namespace, self.registry()
        pkg = registry.package(ns, self.platform, release.version)
        step.inputs = {"version": release.version, "status": pkg.status, "approval": ns.approval}
        if pkg.status == APPROVED:
            raise Skip(f"version {release.version} already is {APPROVED}")
        if pkg.status == REJECTED:
            raise OperationError(f"refused: {pkg.group} version {release.version} is {REJECTED}")
        if ns.approval == "manual":
            raise Deferred(f"{pkg.group} version {release.version} is {pkg.status} and namespace {ns.name!r} has "
                           f"approval: manual: review it, run `mlops models approve -n {ns.name} --platform "
                           f"{self.platform} --version {release.version} --reason ...`, then `mlops release -n "
                           f"{ns.name} --platform {self.platform} --skip-training --version {release.version}`")
        tested = next((s for s in release.steps if s.name == "local-test"), None)
        checks = (f"local test passed (p99 {tested.outputs.get('p99_ms')} ms within {tested.outputs.get('limit_ms')} "
                  "ms)" if tested is not None and tested.outcome == "ran" else "local test skipped")
        reason = f"mlops release -n {ns.name} (approval: auto) at {release.started}: {checks}"
        registry.set_status(ns, pkg, APPROVED, reason)
        click.echo(f"{pkg.group} version {release.version}: {pkg.status} -> {APPROVED} ({reason})")
        return {"status": APPROVED, "reason": reason}

    def promote(self, release: Release, step: Step) -> Mapping[str, Any]:
        from . import pins
        from .cli_models import promote

        assert release.version is not None
        path = pins.path_for(self.namespaces_file, self.wanted)
        step.inputs = {"variant": self.variant, "version": release.version, "pins": str(path)}
        promote.callback(wanted=self.wanted, variant=self.variant, version=release.version,  # type: ignore[misc]
                         platforms=(self.platform,), blueprints=self.blueprints, namespaces_file=self.namespaces_file)
        pin = pins.load(path).get(self.platform, {}).get(self.variant)
        return {"pin": asdict(pin) if pin else None}

    # --- plan and apply ---------------------------------------------------------------------------

    def _selection(self) -> dict[str, Any]:
        return {"wanted": self.wanted, "platforms": (self.platform,), "templates": self.pinned_templates(),
                "changed": False, "base": "HEAD", "parallelism": self.parallelism, "out": self.out,
                "blueprints": self.blueprints, "namespaces_file": self.namespaces_file}

    def plan(self, release: Release, step: Step) -> Mapping[str, Any]:
        from . import cli
        from .runner.terraform import locate

        step.inputs = {"platform": self.platform, "templates": list(self.pinned_templates()), "out": str(self.out)}
        if locate(cli.workdir()) is None:
            raise OperationError("no terraform or tofu binary found on PATH (set TF_BINARY to use another): plan "
                                 "and apply need one; or give --skip-deploy and plan where there is one")
        cli.plan.callback(**self._selection())  # type: ignore[misc]
        return self._saved_plans()

    def _saved_plans(self) -> dict[str, Any]:
        import json

        from . import cli
        from .runner.plans import StackPlan, plan_dir, record_file, summary_file

        index = json.loads((plan_dir(cli.workdir(), self.wanted) / "index.json").read_text())
        stacks = {}
        for key in index["stacks"]:
            record = StackPlan.from_json(record_file(cli.workdir(), *key.split("/")).read_text())
            stacks[key] = {"status": record.status, "changes": record.changes.counts()}
        return {"summary": str(summary_file(cli.workdir(), self.wanted)), "summary_hash": index["summary_hash"],
                "stacks": stacks}

    def apply(self, release: Release, step: Step) -> Mapping[str, Any]:
        from . import cli

        ns = self.target.namespace
        planned = self._saved_plans()
        step.inputs = {"summary_hash": planned["summary_hash"], "approval": ns.approval}
        if ns.approval == "manual":
            raise Deferred(f"namespace {ns.name!r} has approval: manual: review {planned['summary']}, then run "
                           f"`mlops apply -n {ns.name} --approve {planned['summary_hash']}`")
        try:
            cli.apply.callback(**self._selection(), approve=None, auto_approve=False)  # type: ignore[misc]
        except SystemExit as exc:
            if exc.code == 3:
                raise Deferred("some stacks were deferred and await their own review: see the table above") from None
            raise
        return self._saved_plans()


def importable_checkout() -> None:
    """Make this checkout's `training` package importable: pyproject installs only mlops_dsl, and the
    `mlops` script does not run from the checkout (smoke.py finds `serving` the same way)."""
    if str(CHECKOUT) not in sys.path and (CHECKOUT / "training" / "train.py").is_file():
        sys.path.insert(0, str(CHECKOUT))


def _ms(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


@contextmanager
def served(directory: Path, log: Path) -> Iterator[int]:
    """`python -m serving serve` of `directory` on a free port of 127.0.0.1, one worker; its port.

    The emulator starts the server of an endpoint's model the same way; its readiness wait is reused.
    """
    import socket

    from .emulator_server import _Served

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")]))}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "serving", "serve", "--model", str(directory),
                                    "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=CHECKOUT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            try:
                _Served._wait(process, port, log)
            except RuntimeError as exc:
                tail = log.read_text(errors="replace")[-2000:]
                raise OperationError(f"local test: {exc}\n{tail}") from None
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def post(port: int, body: bytes) -> tuple[int, bytes]:
    """One POST /invocations to 127.0.0.1; (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/invocations", body=body,
                           headers={"Content-Type": "application/json", "Accept": "application/json"})
        answer = connection.getresponse()
        return answer.status, answer.read()
    except (OSError, http.client.HTTPException) as exc:
        raise OperationError(f"local test: POST http://127.0.0.1:{port}/invocations failed ({exc})") from None
    finally:
        connection.close()
