"""Running units in dependency order, independent ones at the same time.

Readiness is two small pure functions, as in cdktf's and Terragrunt's run queues: deploy runs a
unit once everything it depends on has succeeded; destroy is the mirror, a unit is ready once
everything depending on it is gone, so reverse order needs no second graph. A failure lets the
running units finish and never unblocks what is downstream (upstream, when destroying): those
are reported as skipped, naming the unit that stopped them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .units import Unit

DONE = "done"
FAILED = "failed"
SKIPPED = "skipped"
DEFERRED = "deferred"
# A deferred unit succeeded as far as it could: it does not block the units after it, which decide
# for themselves (a deferred upstream defers them too).
SETTLED_OK = (DONE, DEFERRED)


@dataclass(frozen=True)
class Outcome:
    status: str
    detail: str = ""
    data: object = None  # what the action produced (a plan's changes), for later units and reports


Action = Callable[[Unit, Mapping[str, Outcome]], Outcome]
Event = Callable[[Unit, str], None]


def blockers(unit: Unit, units: Mapping[str, Unit], reverse: bool) -> list[str]:
    """Keys of the selected units that must finish before `unit` may run."""
    if not reverse:
        return [k for k in unit.dependency_keys if k in units]
    return [k for k, other in units.items() if unit.key in other.dependency_keys]


def ready(unit: Unit, units: Mapping[str, Unit], outcomes: Mapping[str, Outcome], reverse: bool) -> bool:
    return all(k in outcomes and outcomes[k].status in SETTLED_OK for k in blockers(unit, units, reverse))


def blocked_by(unit: Unit, units: Mapping[str, Unit], outcomes: Mapping[str, Outcome], reverse: bool) -> str | None:
    """The first blocker that failed or was skipped: `unit` will never run."""
    for key in blockers(unit, units, reverse):
        if key in outcomes and outcomes[key].status not in SETTLED_OK:
            return key
    return None


def run(units: list[Unit], action: Action, parallelism: int = 4, reverse: bool = False,
        on_event: Event | None = None) -> dict[str, Outcome]:
    """Run `action` on every unit in order; returns each unit's outcome, keyed by unit key.

    An action that raises counts as failed (its message is the detail), so one broken stack
    never takes the whole run down with it.
    """
    by_key = {u.key: u for u in units}
    order = list(reversed(units)) if reverse else list(units)
    outcomes: dict[str, Outcome] = {}
    lock = threading.Lock()

    def call(unit: Unit) -> Outcome:
        if on_event:
            on_event(unit, "started")
        with lock:
            seen = dict(outcomes)
        try:
            return action(unit, seen)
        except Exception as exc:  # reported as this unit's failure; the others go on
            return Outcome(FAILED, f"{type(exc).__name__}: {exc}")

    running: dict[Future[Outcome], Unit] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        while True:
            progressed = True
            while progressed:  # settle every unit that can no longer run, then start what is ready
                progressed = False
                started = {u.key for u in running.values()}
                for unit in order:
                    if unit.key in outcomes or unit.key in started:
                        continue
                    stopper = blocked_by(unit, by_key, outcomes, reverse)
                    if stopper is not None:
                        why = "failed" if outcomes[stopper].status == FAILED else "was skipped"
                        with lock:
                            outcomes[unit.key] = Outcome(SKIPPED, f"{by_key[stopper].name} {why}")
                        if on_event:
                            on_event(unit, SKIPPED)
                        progressed = True
                    elif len(running) < parallelism and ready(unit, by_key, outcomes, reverse):
                        running[pool.submit(call, unit)] = unit
                        started.add(unit.key)
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                unit = running.pop(future)
                outcome = future.result()
                with lock:
                    outcomes[unit.key] = outcome
                if on_event:
                    on_event(unit, outcome.status)
    return {u.key: outcomes[u.key] for u in units}
