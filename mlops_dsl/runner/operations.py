"""plan, apply, destroy and drift over a namespace's stacks, with real terraform or tofu.

Each operation is a per-stack action handed to the scheduler. Plans are saved per stack under
`.mlops/plans/<ns>/<platform>/<template>.tfplan` with a record of the rendered configuration they
were made from; apply refuses every plan at once if any record no longer matches the blueprints.
A stack whose upstream stack will change outputs it reads is not planned against values Terraform
cannot know yet: it is deferred, and apply plans and applies it in a later wave.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..cost import plan_cost_line
from ..errors import OperationError
from ..namespaces import Namespace
from ..synth import is_generated, stack_digest
from . import approval, schedule
from .plans import (
    StackPlan,
    changes_of,
    drift_of,
    plan_dir,
    plan_file,
    record_file,
    summary,
    summary_file,
    summary_hash,
)
from .schedule import DEFERRED, DONE, FAILED, SKIPPED, Outcome
from .terraform import StackFailed, Terraform
from .units import Unit

LOCK_TIMEOUT = "-lock-timeout=120s"
# Credentials for the local emulator: it accepts any, and real ones must never be sent to it.
EMULATOR_ENV = {"AWS_ACCESS_KEY_ID": "mlops-local", "AWS_SECRET_ACCESS_KEY": "mlops-local",
                "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None}


@dataclass
class Runner:
    terraform: Terraform
    namespace: Namespace
    workdir: Path = Path(".mlops")
    parallelism: int = 4
    say: Callable[[str], None] = print

    def env(self) -> dict[str, str | None]:
        aws = self.namespace.aws
        return dict(EMULATOR_ENV) if aws is not None and aws.endpoint else {}

    def log_name(self, unit: Unit, verb: str) -> str:
        return f"{unit.namespace}/{unit.platform}/{unit.template}.{verb}"

    def event(self, verb: str) -> schedule.Event:
        def on_event(unit: Unit, what: str) -> None:
            self.say(f"  {unit.name}: {verb} {what}")
        return on_event

    def tf(self, unit: Unit, verb: str, *args: str,
           ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        return self.terraform.run(unit.path, self.log_name(unit, verb), *args, env=self.env(), ok_codes=ok_codes)

    def init(self, unit: Unit, verb: str) -> None:
        self.terraform.init(unit.path, self.log_name(unit, verb), env=self.env())

    # --- plan -----------------------------------------------------------------------------------

    def _deferral(self, unit: Unit, seen: Mapping[str, Outcome]) -> str | None:
        """The upstream stack this one must wait for, if any."""
        for dep, key in zip(unit.depends_on, unit.dependency_keys, strict=True):
            outcome = seen.get(key)
            if outcome is None:
                continue  # not selected: taken as applied
            record = outcome.data
            if outcome.status == DEFERRED and isinstance(record, StackPlan):
                return record.detail
            if isinstance(record, StackPlan) and set(record.changes.outputs) & set(unit.reads.get(dep, ())):
                return record.name
        return None

    def _plan_one(self, unit: Unit, seen: Mapping[str, Outcome]) -> Outcome:
        planfile = plan_file(self.workdir, unit.namespace, unit.platform, unit.template)
        record = StackPlan(unit.platform, unit.template, unit.digest, "planned", notes=list(unit.notes))
        waits_for = self._deferral(unit, seen)
        if waits_for is not None:
            record.status, record.detail = "deferred", waits_for
            _save(self.workdir, unit, record)
            return Outcome(DEFERRED, f"until {waits_for} is applied", record)
        try:
            self.init(unit, "plan")
            self.tf(unit, "plan", "plan", "-input=false", "-no-color", LOCK_TIMEOUT, f"-out={planfile.resolve()}")
            shown = self.terraform.show_json(unit.path, self.log_name(unit, "plan"), planfile, env=self.env())
            record.changes = changes_of(shown)
            record.cost = plan_cost_line(shown, self.namespace)
        except StackFailed as exc:
            planfile.unlink(missing_ok=True)
            record.status, record.detail = "failed", str(exc)
            _save(self.workdir, unit, record)
            return Outcome(FAILED, str(exc), record)
        _save(self.workdir, unit, record)
        return Outcome(DONE, record.changes.counts() if not record.changes.empty else "no changes", record)

    def plan(self, units: list[Unit]) -> tuple[dict[str, Outcome], str, str]:
        """Plan `units`; returns their outcomes, the summary and its hash (also saved to disk)."""
        base = plan_dir(self.workdir, self.namespace.name)
        shutil.rmtree(base, ignore_errors=True)  # plans of an earlier run must never be applied by mistake
        base.mkdir(parents=True)
        for unit in units:
            plan_file(self.workdir, unit.namespace, unit.platform, unit.template).parent.mkdir(parents=True,
                                                                                               exist_ok=True)
        outcomes = schedule.run(units, self._plan_one, self.parallelism, on_event=self.event("plan"))
        records = []
        for unit in units:
            outcome = outcomes[unit.key]
            record = outcome.data
            if not isinstance(record, StackPlan):  # skipped, or failed outside terraform
                record = StackPlan(unit.platform, unit.template, unit.digest, outcome.status, detail=outcome.detail)
                _save(self.workdir, unit, record)
            records.append(record)
        text = summary(self.namespace.name, self.terraform.label, records)
        digest = summary_hash(text)
        summary_file(self.workdir, self.namespace.name).write_text(text, encoding="utf-8")
        index = {"namespace": self.namespace.name, "summary_hash": digest, "stacks": [u.key for u in units]}
        (base / "index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        return outcomes, text, digest

    # --- apply ----------------------------------------------------------------------------------

    def saved(self, units: list[Unit]) -> tuple[list[Unit], dict[str, StackPlan], str, str]:
        """The saved plans that apply would use, checked against the blueprints; raises if stale."""
        base = plan_dir(self.workdir, self.namespace.name)
        ns = self.namespace.name
        try:
            index = json.loads((base / "index.json").read_text())
            text = summary_file(self.workdir, ns).read_text(encoding="utf-8")
        except (FileNotFoundError, ValueError):
            raise OperationError(f"no saved plans for namespace '{ns}': run `mlops plan -n {ns}` first") from None
        if summary_hash(text) != index["summary_hash"]:
            raise OperationError(f"{summary_file(self.workdir, ns)} was changed after the plan: run "
                                 f"`mlops plan -n {ns}` again")
        by_key = {u.key: u for u in units}
        problems, chosen, records = [], [], {}
        for key in index["stacks"]:
            unit = by_key.get(key)
            if unit is None:
                continue
            try:
                record = StackPlan.from_json(record_file(self.workdir, *key.split("/")).read_text())
            except (FileNotFoundError, ValueError, TypeError, KeyError):
                problems.append(f"{unit.name}: its saved plan record is missing or unreadable")
                continue
            if record.digest != unit.digest:
                problems.append(f"{unit.name}: the rendered stack changed since it was planned (plan "
                                f"{record.digest[:12]}, blueprints now {unit.digest[:12]})")
            elif _disk_digest(unit.path) != unit.digest:
                problems.append(f"{unit.name}: {unit.path} differs from the blueprints (edited by hand, or not "
                                f"synthesized)")
            elif record.status in ("failed", "skipped"):
                problems.append(f"{unit.name}: its plan {record.status} ({record.detail})")
            elif record.status == "planned" and not plan_file(self.workdir, *key.split("/")).exists():
                problems.append(f"{unit.name}: the saved plan file is missing (already applied?)")
            chosen.append(unit)
            records[key] = record
        if not chosen and not problems:
            problems.append(f"the saved plans of namespace '{ns}' cover none of the selected stacks")
        if problems:
            raise OperationError([f"refusing to apply stale or incomplete plans of namespace '{ns}'; nothing "
                                  f"was applied:", *[f"  {p}" for p in problems],
                                  f"Run `mlops plan -n {ns}` again and review the new summary."])
        return chosen, records, text, index["summary_hash"]

    def _apply_one(self, unit: Unit, seen: Mapping[str, Outcome]) -> Outcome:
        record_path = record_file(self.workdir, unit.namespace, unit.platform, unit.template)
        record = StackPlan.from_json(record_path.read_text())
        if record.status == "deferred":
            return Outcome(DEFERRED, f"until {record.detail} is applied", record)
        planfile = plan_file(self.workdir, unit.namespace, unit.platform, unit.template)
        if record.changes.empty:
            planfile.unlink(missing_ok=True)
            return Outcome(DONE, "no changes", record)
        try:
            self.tf(unit, "apply", "apply", "-input=false", "-no-color", LOCK_TIMEOUT, str(planfile.resolve()))
        except StackFailed as exc:
            return Outcome(FAILED, str(exc), record)
        planfile.unlink(missing_ok=True)  # a plan is applied once
        record.status = "applied"
        record_path.write_text(record.to_json())
        return Outcome(DONE, record.changes.counts(), record)

    def apply(self, units: list[Unit], approve: str | None, auto_approve: bool,
              prompt: approval.Prompt | None) -> dict[str, Outcome]:
        chosen, _, text, digest = self.saved(units)
        summary_path = str(summary_file(self.workdir, self.namespace.name))
        if self.namespace.approval == "manual" and approve is None and prompt is not None:
            self.say(text)
        how = approval.check_apply(self.namespace, digest, summary_path, approve, auto_approve, prompt)
        self.say(f"applying {len(chosen)} stacks of namespace '{self.namespace.name}' ({how})")
        results: dict[str, Outcome] = {}
        wave, pending = 1, chosen
        while True:
            outcomes = schedule.run(pending, self._apply_one, self.parallelism, on_event=self.event("apply"))
            results.update(outcomes)
            deferred = [u for u in pending if outcomes[u.key].status == DEFERRED]
            if not deferred or any(o.status in (FAILED, SKIPPED) for o in outcomes.values()):
                return results
            wave += 1
            self.say(f"wave {wave}: planning {len(deferred)} deferred stacks now that their upstream stacks "
                     f"are applied")
            planned, text, digest = self.plan(deferred)
            results.update(planned)
            if any(o.status in (FAILED, SKIPPED) for o in planned.values()):
                return results
            if self.namespace.approval == "manual":
                if prompt is None:
                    self.say(f"wave {wave} needs its own review: the plans of the deferred stacks are saved in "
                             f"{summary_path}\nsummary hash: {digest}\nreview it, then run "
                             f"`mlops apply -n {self.namespace.name} --approve {digest}`")
                    for unit in deferred:
                        if planned[unit.key].status == DONE:
                            results[unit.key] = Outcome(DEFERRED, f"planned, awaiting review (summary hash {digest})")
                    return results
                self.say(text)
                approval.check_apply(self.namespace, digest, summary_path, None, False, prompt)
            pending = deferred

    # --- destroy and drift ----------------------------------------------------------------------

    def _destroy_one(self, unit: Unit, seen: Mapping[str, Outcome]) -> Outcome:
        try:
            self.init(unit, "destroy")
            result = self.tf(unit, "destroy", "destroy", "-auto-approve", "-input=false", "-no-color", LOCK_TIMEOUT)
        except StackFailed as exc:
            return Outcome(FAILED, str(exc))
        count = re.search(r"Resources: (\d+) destroyed", result.stdout)
        return Outcome(DONE, f"{count.group(1)} resources" if count else "")

    def destroy(self, units: list[Unit], auto_approve: bool, prompt: approval.Prompt | None) -> dict[str, Outcome]:
        how = approval.check_destroy(self.namespace, auto_approve, prompt)
        self.say(f"destroying {len(units)} stacks of namespace '{self.namespace.name}' in reverse order ({how})")
        shutil.rmtree(plan_dir(self.workdir, self.namespace.name), ignore_errors=True)
        return schedule.run(units, self._destroy_one, self.parallelism, reverse=True,
                            on_event=self.event("destroy"))

    def _drift_one(self, unit: Unit, seen: Mapping[str, Outcome]) -> Outcome:
        planfile = self.workdir / "drift" / unit.namespace / unit.platform / f"{unit.template}.tfplan"
        planfile.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.init(unit, "drift")
            self.tf(unit, "drift", "plan", "-refresh-only", "-input=false", "-no-color", LOCK_TIMEOUT,
                    f"-out={planfile.resolve()}")
            drifted = drift_of(self.terraform.show_json(unit.path, self.log_name(unit, "drift"), planfile,
                                                        env=self.env()))
        except StackFailed as exc:
            return Outcome(FAILED, str(exc))
        finally:
            planfile.unlink(missing_ok=True)  # a refresh-only plan is for reading, never for applying
        if not drifted:
            return Outcome(DONE, "no drift", [])
        shown = ", ".join(drifted[:5]) + (f" and {len(drifted) - 5} more" if len(drifted) > 5 else "")
        return Outcome(DONE, f"drifted: {len(drifted)} resources ({shown})", drifted)

    def drift(self, units: list[Unit]) -> dict[str, Outcome]:
        """Refresh-only plans; stacks are independent here, so one failure stops nothing else."""
        independent = [replace(u, depends_on=()) for u in units]
        return schedule.run(independent, self._drift_one, self.parallelism, on_event=self.event("drift"))


def _save(workdir: Path, unit: Unit, record: StackPlan) -> None:
    path = record_file(workdir, unit.namespace, unit.platform, unit.template)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record.to_json(), encoding="utf-8")


def _disk_digest(directory: Path) -> str:
    """The digest of the generated files in a stack directory, as synth computes it."""
    if not directory.is_dir():
        return ""
    files = {p.name: p.read_text(encoding="utf-8") for p in directory.iterdir()
             if p.is_file() and is_generated(p)}
    return stack_digest(files)


DONE_WORDS = {"plan": "planned", "apply": "applied", "destroy": "destroyed", "drift": "checked"}


@dataclass
class Report:
    """The final table of a run and the command that resumes it."""

    command: str
    namespace: str
    units: list[Unit]
    outcomes: Mapping[str, Outcome]
    extra: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        width = max([len(u.name) for u in self.units] + [5])
        out = [f"{'stack':<{width}}  {'status':<9}  detail"]
        for unit in self.units:
            outcome = self.outcomes.get(unit.key)
            if outcome is None:
                continue
            detail = outcome.detail.splitlines()[0] if outcome.detail else ""
            status = DONE_WORDS.get(self.command, DONE) if outcome.status == DONE else outcome.status
            out.append(f"{unit.name:<{width}}  {status:<9}  {detail}")
        resume = self.resume()
        if resume:
            out.append("")
            out.append("To resume once the failure is fixed:")
            out += [f"  {line}" for line in resume]
        return out

    def resume(self) -> list[str]:
        left: dict[str, list[str]] = {}
        for unit in self.units:
            outcome = self.outcomes.get(unit.key)
            if outcome is not None and outcome.status in (FAILED, SKIPPED):
                left.setdefault(unit.platform, []).append(unit.template)
        return [f"mlops {self.command} -n {self.namespace} --platform {p} " + " ".join(f"--template {t}" for t in ts)
                for p, ts in left.items()]

    @property
    def failed(self) -> bool:
        return any(o.status in (FAILED, SKIPPED) for o in self.outcomes.values())
