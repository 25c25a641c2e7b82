"""What a saved plan changes, and the Markdown summary reviewers approve.

`terraform show -json` of a saved plan is read into plain `PlanChanges`. The summary lists, per
stack, the resources to destroy and replace first (the dangerous part), then change and add. It
stays under GitHub's 65,535-character comment limit by shortening the lists (with counts of what
was left out) rather than cutting text mid-line. Its hash is what a manual namespace's approval
names: it covers the summary's text, which includes each stack's configuration digest, so an
approval holds for exactly the configuration and changes that were reviewed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..pins import TAG_PACKAGE, TAG_VARIANT

GITHUB_COMMENT_LIMIT = 65_535
# Room for what a workflow wraps around the summary (a heading, the hash, a details tag).
SUMMARY_BUDGET = GITHUB_COMMENT_LIMIT - 2_000
KINDS = ("destroy", "replace", "change", "add")  # the order reviewers read them in


@dataclass
class PlanChanges:
    """Resource addresses by kind of change, and the outputs whose value changes."""

    add: list[str] = field(default_factory=list)
    change: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)
    destroy: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # Per served variant whose model changes: "champion: version 4 (image 5d41402abc4b) -> version 7 (...)".
    models: list[str] = field(default_factory=list)
    # Addresses a `moved` block changes, "old -> new" (README: Renames); the object is kept.
    moved: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.replace or self.destroy or self.outputs or self.moved)

    def counts(self) -> str:
        text = ", ".join(f"{len(getattr(self, k))} to {k}" for k in ("add", "change", "replace", "destroy"))
        return f"{text}, {len(self.moved)} moved" if self.moved else text


def changes_of(plan: Mapping[str, Any]) -> PlanChanges:
    """Read `terraform show -json <plan>`: resource_changes and output_changes."""
    out = PlanChanges()
    for rc in plan.get("resource_changes") or []:
        actions = rc.get("change", {}).get("actions", [])
        address = rc.get("address", "?")
        if rc.get("previous_address"):
            out.moved.append(f"{rc['previous_address']} -> {address}")
        if actions == ["create"]:
            out.add.append(address)
        elif actions == ["update"]:
            out.change.append(address)
        elif actions == ["delete"]:
            out.destroy.append(address)
        elif sorted(actions) == ["create", "delete"]:
            out.replace.append(address)
    for name, change in (plan.get("output_changes") or {}).items():
        if change.get("actions", ["no-op"]) != ["no-op"]:
            out.outputs.append(name)
    out.models = model_versions(plan)
    return out




def _served(state: Mapping[str, Any] | None) -> str | None:
    if not state:
        return None
    tags = state.get("tags") or {}
    version = str(tags.get(TAG_PACKAGE, "")).rsplit("/", 1)[-1] or "?"
    containers = state.get("primary_container") or [{}]
    image = str((containers[0] or {}).get("image") or "").rsplit(":", 1)[-1] or "?"
    return f"version {version} (image {image})"


def model_versions(plan: Mapping[str, Any]) -> list[str]:
    """The served model version of each variant whose SageMaker model the plan creates or removes."""
    lines = []
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change", {})
        if rc.get("type") != "aws_sagemaker_model" or change.get("actions", ["no-op"]) in (["no-op"], ["update"]):
            continue
        before, after = change.get("before"), change.get("after")
        variant = ((after or {}).get("tags") or (before or {}).get("tags") or {}).get(TAG_VARIANT) or rc.get("name")
        lines.append(f"{variant}: {_served(before) or 'nothing'} -> {_served(after) or 'nothing (removed)'}")
    return lines


def drift_of(plan: Mapping[str, Any]) -> list[str]:
    """Each resource whose real state differs from the recorded state (a refresh-only plan's
    `resource_drift`), as `address` or `address (attribute, ...)` naming the top-level attributes
    that differ, so a reviewer sees at once whether it matters."""
    found = []
    for d in plan.get("resource_drift") or []:
        change = d.get("change", {})
        if change.get("actions", ["no-op"]) == ["no-op"]:
            continue
        before, after = change.get("before") or {}, change.get("after") or {}
        keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        address = d.get("address", "?")
        found.append(f"{address} ({', '.join(keys)})" if keys else address)
    return found


# --- what a plan run leaves on disk -------------------------------------------------------------


@dataclass
class StackPlan:
    """One stack's plan as recorded next to its `.tfplan`."""

    platform: str
    template: str
    digest: str  # the rendered stack's sha256 when it was planned
    status: str  # "planned", "deferred", "failed", "skipped"
    changes: PlanChanges = field(default_factory=PlanChanges)
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    cost: str = ""  # the monthly cost before -> after this plan (mlops_dsl/cost.py plan_cost_line)

    @property
    def name(self) -> str:
        return f"{self.platform}/{self.template}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> StackPlan:
        data = json.loads(text)
        data["changes"] = PlanChanges(**data["changes"])
        return cls(**data)


def plan_dir(root: Path, namespace: str) -> Path:
    return root / "plans" / namespace


def summary_file(root: Path, namespace: str) -> Path:
    return plan_dir(root, namespace) / "summary.md"


def plan_file(root: Path, namespace: str, platform: str, template: str) -> Path:
    return plan_dir(root, namespace) / platform / f"{template}.tfplan"


def record_file(root: Path, namespace: str, platform: str, template: str) -> Path:
    return plan_dir(root, namespace) / platform / f"{template}.json"


def summary_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _listing(title: str, addresses: list[str], cap: int | None) -> list[str]:
    if not addresses:
        return []
    shown = addresses if cap is None else addresses[:cap]
    lines = [f"**{title}** ({len(addresses)}):", ""] + [f"- `{a}`" for a in shown]
    if len(shown) < len(addresses):
        lines.append(f"- ... and {len(addresses) - len(shown)} more (see `terraform show` of the saved plan)")
    return [*lines, ""]


def _render(namespace: str, binary: str, plans: list[StackPlan], cap: int | None) -> str:
    lines = [f"## mlops plan: namespace `{namespace}`", "",
             f"State-aware plan by {binary}, one saved plan per stack, in deploy order.", "",
             "| stack | add | change | replace | destroy | config |", "|---|---:|---:|---:|---:|---|"]
    for p in plans:
        c = p.changes
        if p.status == "planned":
            counts = " | ".join(str(len(getattr(c, k))) for k in ("add", "change", "replace", "destroy"))
        elif p.status == "deferred":
            counts = f"deferred until {p.detail} is applied | | | "
        else:
            reason = (p.detail.splitlines() or [""])[0].replace("|", "\\|")[:200]
            counts = f"{p.status}: {reason} | | | "
        lines.append(f"| {p.name} | {counts} | `{p.digest[:12]}` |")
    lines.append("")
    for p in plans:
        if p.status != "planned":
            continue
        lines.append(f"### {p.name}")
        lines.append("")
        if p.changes.models:
            lines += ["**Model versions**:", "", *[f"- {m}" for m in p.changes.models], ""]
        if p.notes:
            lines += [*[f"- {n}" for n in p.notes], ""]
        if p.cost:
            lines += [p.cost, ""]
        if p.changes.empty:
            lines += ["No changes.", ""]
            continue
        titles = {"destroy": "Destroy", "replace": "Replace", "change": "Change in place", "add": "Add"}
        for kind in KINDS:
            lines += _listing(titles[kind], getattr(p.changes, kind), cap)
        lines += _listing("Moved (the same object, at a new address)", p.changes.moved, cap)
        if p.changes.outputs:
            lines += [f"Outputs that change: {', '.join(f'`{o}`' for o in p.changes.outputs)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def summary(namespace: str, binary: str, plans: list[StackPlan], budget: int = SUMMARY_BUDGET) -> str:
    """The Markdown summary, its lists shortened as far as needed to fit `budget` characters."""
    for cap in (None, 100, 25, 5, 0):
        text = _render(namespace, binary, plans, cap)
        if len(text) <= budget:
            return text
    note = "\n\n(summary cut to fit a GitHub comment; the full plans are saved per stack)\n"
    return text[:budget - len(note)] + note
