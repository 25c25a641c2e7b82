"""`mlops release`, as plain data: which steps run in which order, what each did, and the report.

A release is the model lifecycle of README "The model lifecycle" as one command: train, register,
test the model served on this machine, approve, promote, plan, apply. This module decides nothing
about clouds and calls nothing outside: `steps_for` says which steps run and why the others are
skipped, `run` calls the step functions it is given (release_steps.py holds the real ones, the tests
pass fakes), records inputs, outputs, timings and the outcome of each, stops at the first step that
fails or is deferred, and writes the report after every step, so a run that fails (or is killed)
still leaves one.

Outcomes: `ran`, `skipped` (a flag, or not reached after a failure), `failed` (with the error), and
`deferred` (a person must act first: approving a model version, or applying a manual namespace).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import MlopsError, OperationError

RAN, SKIPPED, FAILED, DEFERRED = "ran", "skipped", "failed", "deferred"
STEPS = ("train", "register", "local-test", "approve", "promote", "plan", "apply")


class Deferred(OperationError):
    """A step that needs a person before it can run (its message says what to run); exit 3."""


class Skip(Exception):
    """Raised by a step that finds nothing to do (a version already Approved); the message says why."""


@dataclass
class Step:
    name: str
    outcome: str = SKIPPED
    reason: str | None = None  # why it was skipped, or what deferred it
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started: str | None = None
    seconds: float | None = None


@dataclass
class Release:
    """One run of `mlops release`: its arguments and its steps, in order."""

    namespace: str
    platform: str
    variant: str
    flags: dict[str, Any]
    steps: list[Step]
    started: str = field(default_factory=lambda: _utc())
    finished: str | None = None
    # The version this release moves: registered here, named by --version, or the predecessor's pin.
    version: int | None = None

    @property
    def outcome(self) -> str:
        """failed, deferred, or ran (every step that was not skipped ran)."""
        for state in (FAILED, DEFERRED):
            if any(s.outcome == state for s in self.steps):
                return state
        return RAN

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "outcome": self.outcome}, indent=2, default=str) + "\n"


def _utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def steps_for(first: bool, skip_training: bool, skip_local_test: bool, skip_deploy: bool) -> list[Step]:
    """Every step in order; those that will not run are marked skipped with the reason.

    `first`: the namespace starts its promotion chain (no models.promoted_from), so it may train.
    """
    skipped = {
        "train": "--skip-training" if skip_training else None,
        "register": "--skip-training: nothing new to register" if skip_training else None,
        "local-test": "--skip-local-test" if skip_local_test else None,
        "plan": "--skip-deploy" if skip_deploy else None,
        "apply": "--skip-deploy" if skip_deploy else None,
    }
    if not first:
        skipped["train"] = skipped["register"] = "a later namespace of the promotion chain trains nothing"
    return [Step(name, outcome="pending" if skipped.get(name) is None else SKIPPED, reason=skipped.get(name))
            for name in STEPS]


def refusal(namespace: str, predecessor: str | None, skip_training: bool, version: int | None,
            source: str) -> str | None:
    """What is wrong with the flags for this namespace's place in its chain (exit 2), or None."""
    if predecessor is not None and not skip_training:
        return (f"{source}: namespace {namespace!r} has models.promoted_from: {predecessor}, so it serves only "
                f"versions {predecessor} serves and trains nothing: run with --skip-training (it promotes the "
                f"version {predecessor} pins)")
    if predecessor is not None and version is not None:
        return (f"--version {version}: namespace {namespace!r} releases the version {predecessor} pins "
                f"(models.promoted_from in {source}); leave --version out")
    if predecessor is None and skip_training and version is None:
        return (f"--skip-training: namespace {namespace!r} starts its promotion chain and trains here; without "
                f"training, name the registered version to release with --version N (`mlops models list -n "
                f"{namespace}`)")
    if predecessor is None and not skip_training and version is not None:
        return f"--version {version}: only with --skip-training (otherwise the release registers a new version)"
    return None


def latency_problem(p99_ms: float | None, errors: int, budget_ms: float, margin: float) -> str | None:
    """The latency gate of the local test: every request answered, and the p99 within the serving
    alarm's budget times the margin (README "Releases": why a margin)."""
    limit = budget_ms * margin
    if errors:
        return f"{errors} requests failed"
    if p99_ms is None:
        return "no request was answered"
    if p99_ms > limit:
        return (f"p99 latency {p99_ms:.1f} ms is over {limit:g} ms (the p99 alarm's {budget_ms:g} ms x margin "
                f"{margin:g})")
    return None


Action = Callable[[Release, Step], "Mapping[str, Any] | None"]


def run(release: Release, actions: Mapping[str, Action], write: Callable[[Release], None],
        say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> Release:
    """Run the pending steps in order; each action fills `step.inputs` and returns its outputs.

    An action raising Deferred defers its step, Skip skips it, any other exception fails it; either
    way the steps after it are skipped ("not reached"). The exception of a failed step is re-raised
    once the report is written, so the command can choose the exit code (a bug keeps its traceback).
    """
    problem: BaseException | None = None
    for index, step in enumerate(release.steps):
        if step.outcome != "pending":
            say(f"[{index + 1}/{len(release.steps)}] {step.name}: skipped ({step.reason})")
            continue
        say(f"[{index + 1}/{len(release.steps)}] {step.name} ...")
        step.started, began = _utc(), clock()
        try:
            step.outputs = dict(actions[step.name](release, step) or {})
            step.outcome = RAN
        except Skip as exc:
            step.outcome, step.reason = SKIPPED, str(exc)
        except Deferred as exc:
            step.outcome, step.reason = DEFERRED, str(exc)
        except BaseException as exc:  # Ctrl-C too: recorded in the report, then raised again below
            step.outcome, step.error, problem = FAILED, message(exc), exc
        step.seconds = round(clock() - began, 3)
        say(f"[{index + 1}/{len(release.steps)}] {step.name}: {step.outcome} in {step.seconds:.1f} s"
            + (f" ({step.reason})" if step.reason and step.outcome != RAN else ""))
        if step.outcome in (FAILED, DEFERRED):
            for later in release.steps[index + 1:]:
                if later.outcome == "pending":
                    later.outcome, later.reason = SKIPPED, f"not reached: {step.name} {step.outcome}"
        write(release)
        if problem is not None:
            break
    release.finished = _utc()
    write(release)
    if problem is not None:
        raise problem
    return release


def message(exc: BaseException) -> str:
    """An exception's text as the user saw it (click's format_message, an MlopsError's problems)."""
    if isinstance(exc, MlopsError):
        return "\n".join(exc.problems)
    formatted = getattr(exc, "format_message", None)
    return formatted() if callable(formatted) else f"{type(exc).__name__}: {exc}"


def report_path(directory: Path, namespace: str, started: str) -> Path:
    """`<directory>/<namespace>-<UTC timestamp>.json`, not yet taken."""
    stamp = datetime.strptime(started, "%Y-%m-%dT%H:%M:%S.%fZ").strftime("%Y%m%dT%H%M%SZ")
    path, n = directory / f"{namespace}-{stamp}.json", 1
    while path.exists():
        n += 1
        path = directory / f"{namespace}-{stamp}-{n}.json"
    return path


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it over: a reader sees the old report or
    the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


__all__ = ["DEFERRED", "FAILED", "RAN", "SKIPPED", "STEPS", "Deferred", "Release", "Skip", "Step",
           "latency_problem", "refusal", "report_path", "run", "steps_for", "write_atomically"]
