"""The stacks a run works on: one unit per rendered stack, and how a command narrows them.

Units come from the in-memory render (the manifests synth writes as `stacks.json`), so a run
always works on what the blueprints say now, never on a stale tree.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MlopsError
from ..synth import MANIFEST, Rendered

# How a stack reads an upstream output: `data.terraform_remote_state.<template>.outputs.<name>`
# (the same text in HCL and in .tf.json).
_READ = re.compile(r"data\.terraform_remote_state\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class Unit:
    """One stack: a template of a platform in a namespace."""

    namespace: str
    platform: str
    template: str
    path: Path  # the stack's directory
    depends_on: tuple[str, ...]  # templates of the same platform, in deploy order
    digest: str  # sha256 of the rendered files (stacks.json's `sha256`)
    reads: Mapping[str, frozenset[str]] = field(default_factory=dict)  # upstream template -> outputs read
    files: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    notes: tuple[str, ...] = ()  # from the render, for the plan summary ("champion: no model version pinned")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.platform}/{self.template}"

    @property
    def name(self) -> str:
        """How reports name it: namespaces are shown once per report."""
        return f"{self.platform}/{self.template}"

    @property
    def dependency_keys(self) -> tuple[str, ...]:
        return tuple(f"{self.namespace}/{self.platform}/{d}" for d in self.depends_on)


def units_of(rendered: Rendered, out: Path) -> list[Unit]:
    """Every stack of the render, in each platform's deploy order."""
    units = []
    for rel, text in rendered.files.items():
        if not rel.endswith(f"/{MANIFEST}"):
            continue
        manifest = json.loads(text)
        for template in manifest["order"]:
            entry = manifest["stacks"][template]
            prefix = entry["path"] + "/"
            files = {r[len(prefix):]: t for r, t in rendered.files.items() if r.startswith(prefix)}
            reads: dict[str, set[str]] = {}
            for body in files.values():
                for upstream, output in _READ.findall(body):
                    reads.setdefault(upstream, set()).add(output)
            units.append(Unit(
                namespace=manifest["namespace"], platform=manifest["platform"], template=template,
                path=out / entry["path"], depends_on=tuple(entry["depends_on"]), digest=entry["sha256"],
                reads={k: frozenset(v) for k, v in sorted(reads.items())}, files=files,
                notes=tuple(entry.get("notes", ())),
            ))
    return units


def _unknown(kind: str, wanted: Iterable[str], known: list[str]) -> list[str]:
    problems = []
    for name in wanted:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append(f"--{kind} {name}: no such {kind} in the selected namespaces "
                            f"({kind}s: {', '.join(sorted(set(known)))}).{hint}")
    return problems


def select(units: list[Unit], platforms: tuple[str, ...] = (), templates: tuple[str, ...] = ()) -> list[Unit]:
    """The units of the named platforms and templates (all where none is named)."""
    problems = _unknown("platform", platforms, [u.platform for u in units])
    chosen = [u for u in units if not platforms or u.platform in platforms]
    problems += _unknown("template", templates, [u.template for u in chosen])
    if problems:
        raise MlopsError(problems)
    return [u for u in chosen if not templates or u.template in templates]


def with_dependents(units: list[Unit], seeds: set[str]) -> list[Unit]:
    """`seeds` (unit keys) and every unit that depends on one of them, directly or not."""
    keep = set(seeds)
    for unit in units:  # deploy order: a unit's dependencies come before it
        if any(dep in keep for dep in unit.dependency_keys):
            keep.add(unit.key)
    return [u for u in units if u.key in keep]
