"""`moved` blocks: a renamed resource shows in a plan as a move, not as a destroy and a create.

Three sources, merged per stack in this order (the first one to move an address wins):

1. the library's rename table (renames.py), for the stacks of that template on that cloud;
2. renames in the blueprint, detected against `terraform/` as committed at git HEAD: a resource
   address HEAD declares and the new rendering does not, matched to one the new rendering
   declares and HEAD does not, of the same type, whose block is equal once the part of the name
   that changed is replaced (`variant_challenger` -> `variant_candidate`: `challenger` ->
   `candidate`, hyphenated forms too, and the addresses of resources matched before). Only
   one-to-one matches count: a removed address that could be either of two added ones gets no
   block (conservative: a wrong move is worse than a destroy and a create the reviewer can see);
3. the `moved` blocks HEAD's `moved.tf` holds, carried over while their target is still declared
   and their source is not, so `synth --check` stays stable after the rename is committed.
   `mlops synth --drop-moves` leaves them out, once every namespace has applied them.

The reason written beside each block depends only on its source, never on whether it was
detected or carried, so the text does not change when the rename is committed.

A whole template renamed changes its state key (`<platform>/<namespace>/<template>.tfstate`),
which no `moved` block can follow: `check_template_renames` makes that an error with the
migration to run, unless the template says `.renamed_from("<old name>")`.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .context import state_key
from .errors import BlueprintError
from .renames import RENAMES, Rename
from .templates.base import Template, location
from .terraform import Moved, Stack
from .terraform.hcl import resource_block
from .terraform.tfjson import resource_json

COMMITTED = Path("terraform")  # where the committed tree lives, relative to the project root
BLUEPRINT_REASON = "renamed in the blueprint; kept while the target exists (README: Renames)"
_WANTED = ("main.tf", "main.tf.json", "moved.tf", "moved.tf.json")
_HCL_RESOURCE = re.compile(r'^resource "([^"]+)" "([^"]+)" \{(\}?)$')


@dataclass
class Committed:
    """The generated files of the committed tree that moves need: `<ns>/<platform>/<template>/<file>` -> text."""

    files: dict[str, str] = field(default_factory=dict)
    stacks: set[str] = field(default_factory=set)  # every `<ns>/<platform>/<template>` the tree holds

    def stack(self, base: str) -> dict[str, str]:
        prefix = base + "/"
        return {rel[len(prefix):]: text for rel, text in self.files.items() if rel.startswith(prefix)}


def read_head(root: Path = Path("."), tree: Path = COMMITTED) -> Committed:
    """`tree` as committed at git HEAD (two git processes in all); empty outside a git work tree,
    before the first commit, or where the tree was never committed."""
    try:
        listed = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", "HEAD", "--", f"./{tree.as_posix()}"],
                                cwd=root, capture_output=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return Committed()
    if listed.returncode != 0:
        return Committed()
    prefix = tree.as_posix().rstrip("/") + "/"
    paths = [p for p in listed.stdout.decode().split("\0") if p.startswith(prefix)]
    # `<ns>/<platform>/<template>/<file>`: the stacks (stacks.json sits one level up)
    committed = Committed(stacks={p[len(prefix):].rsplit("/", 1)[0] for p in paths if p[len(prefix):].count("/") == 3})
    wanted = [p for p in paths if p.rsplit("/", 1)[-1] in _WANTED]
    if not wanted:
        return committed
    request = "".join(f"HEAD:./{p}\n" for p in wanted).encode()
    try:
        batch = subprocess.run(["git", "cat-file", "--batch"], cwd=root, input=request, capture_output=True,
                               check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return committed
    data, offset = batch.stdout, 0
    for path in wanted:
        end = data.index(b"\n", offset)
        header = data[offset:end].split()
        offset = end + 1
        if len(header) != 3 or header[1] != b"blob":
            continue
        size = int(header[2])
        committed.files[path[len(prefix):]] = data[offset:offset + size].decode()
        offset += size + 1
    return committed


# --- reading a committed stack (always written by our own writers) ---------------------------------

def committed_resources(files: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
    """(format, resource address -> its block as text) of a committed stack, or None."""
    if "main.tf" in files:
        blocks: dict[str, str] = {}
        lines = files["main.tf"].splitlines()
        i = 0
        while i < len(lines):
            match = _HCL_RESOURCE.match(lines[i])
            if match is None:
                i += 1
                continue
            start = i
            if not match.group(3):
                while i < len(lines) and lines[i] != "}":
                    i += 1
            blocks[f"{match.group(1)}.{match.group(2)}"] = "\n".join(lines[start + 1:i + 1])
            i += 1
        return "hcl", blocks
    if "main.tf.json" in files:
        doc = json.loads(files["main.tf.json"])
        return "json", {f"{t}.{n}": json.dumps(body, sort_keys=True)
                        for t, named in doc.get("resource", {}).items() for n, body in named.items()}
    return None


def committed_moves(files: Mapping[str, str]) -> list[Moved]:
    """The `moved` blocks of a committed stack, with the reason written beside each."""
    if "moved.tf.json" in files:
        return [Moved(m["from"], m["to"], m.get("//", "")) for m in json.loads(files["moved.tf.json"]).get("moved", [])]
    text = files.get("moved.tf")
    if text is None:
        return []
    out = []
    for block in re.findall(r"^moved \{\n(.*?)^\}$", text, re.M | re.S):
        found = dict(re.findall(r"^\s+(from|to)\s+= (\S+)$", block, re.M))
        reason = re.search(r"^\s+# (.*)$", block, re.M)
        if "from" in found and "to" in found:
            out.append(Moved(found["from"], found["to"], reason.group(1) if reason else ""))
    return out


def current_resources(stack: Stack, fmt: str) -> dict[str, str]:
    """Resource address -> its block as text, written the way the committed stack was."""
    if fmt == "json":
        return {r.address: json.dumps(resource_json(r), sort_keys=True) for r in stack.resources}
    return {r.address: "\n".join(resource_block(r)[1:]) for r in stack.resources}


# --- detection -----------------------------------------------------------------------------------

def _changed_part(old: str, new: str) -> tuple[str, str]:
    """The part of two resource names that differs, by `_`-separated words: `latency_champion`,
    `latency_blue` -> (`champion`, `blue`); the whole names where one holds the other."""
    a, b = old.split("_"), new.split("_")
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    core_a, core_b = "_".join(a[head:len(a) - tail]), "_".join(b[head:len(b) - tail])
    return (core_a, core_b) if core_a and core_b else (old, new)


def _substitute(text: str, pairs: Iterable[tuple[str, str]]) -> str:
    for old, new in pairs:
        for a, b in {(old, new), (old.replace("_", "-"), new.replace("_", "-"))}:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(a)}(?![A-Za-z0-9])", lambda _m, b=b: b, text)
    return text


def detect(old: Mapping[str, str], new: Mapping[str, str]) -> list[tuple[str, str]]:
    """(from, to) for every resource renamed between two renderings of a stack (address -> block text).

    Deterministic: candidates are tried in sorted order, and matching repeats with the addresses of
    the moves found so far substituted too, until nothing new matches.
    """
    removed = sorted(set(old) - set(new))
    added = sorted(set(new) - set(old))
    found: dict[str, str] = {}
    while True:
        known = [(a.split(".", 1)[1], b.split(".", 1)[1]) for a, b in found.items()]
        matches: dict[str, list[str]] = {}
        for source in (r for r in removed if r not in found):
            kind, name = source.split(".", 1)
            for target in (a for a in added if a not in found.values() and a.split(".", 1)[0] == kind):
                pairs = [_changed_part(name, target.split(".", 1)[1]), *known]
                if _substitute(old[source], pairs) == new[target]:
                    matches.setdefault(source, []).append(target)
        targets = [t for ts in matches.values() for t in ts]
        fresh = {s: ts[0] for s, ts in matches.items() if len(ts) == 1 and targets.count(ts[0]) == 1}
        if not fresh:
            return sorted(found.items())
        found.update(fresh)


# --- per stack -----------------------------------------------------------------------------------

def table_moves(stack: Stack, cloud: str, kind: str, table: Iterable[Rename] = RENAMES) -> list[Moved]:
    declared = {r.address for r in stack.resources}
    return [Moved(r.source, r.target, r.reason) for r in table
            if r.cloud == cloud and r.template == kind and r.target in declared and r.source not in declared]


def moves_for(stack: Stack, cloud: str, kind: str, committed: Mapping[str, str], carry: bool = True,
              table: Iterable[Rename] = RENAMES) -> list[Moved]:
    """Every `moved` block `stack` carries, sorted by source address."""
    declared = {r.address for r in stack.resources}
    chosen: dict[str, Moved] = {}
    candidates = table_moves(stack, cloud, kind, table)
    parsed = committed_resources(committed)
    if parsed is not None:
        fmt, before = parsed
        candidates += [Moved(a, b, BLUEPRINT_REASON) for a, b in detect(before, current_resources(stack, fmt))]
    if carry:
        candidates += _still_needed(committed_moves(committed), declared, {m.source for m in candidates})
    targets: set[str] = set()
    for move in candidates:
        if move.source not in chosen and move.target not in targets:
            chosen[move.source] = move
            targets.add(move.target)
    return [chosen[s] for s in sorted(chosen)]


def _still_needed(moves: list[Moved], declared: set[str], sources: set[str]) -> list[Moved]:
    """Committed moves whose target is declared, or is the source of another kept move (a chain:
    `a -> b` committed, then `b -> c`; a state still at `a` needs both, and Terraform follows them)."""
    kept: list[Moved] = []
    ends = declared | sources
    while True:
        more = [m for m in moves if m not in kept and m.target in ends and m.source not in declared]
        if not more:
            return [m for m in moves if m in kept]
        kept += more
        ends |= {m.source for m in more}


# --- whole templates ------------------------------------------------------------------------------

def check_template_renames(platform: str, namespace: str, stacks: Mapping[str, Stack],
                           templates: Mapping[str, Template], committed: Committed, cloud_tree: str) -> list[str]:
    """Notes for templates renamed with `.renamed_from(...)`; a BlueprintError with the migration for a
    renamed template that does not say so: a new stack declaring the same resources as a stack HEAD
    holds and this rendering no longer does, each block equal once the old template name is replaced
    by the new one (so a template removed while another is added is not taken for a rename)."""
    base = f"{namespace}/{platform}"
    before = {s.rsplit("/", 1)[1] for s in committed.stacks if s.rsplit("/", 1)[0] == base}
    gone = sorted(before - set(stacks))
    problems, notes = [], []
    for name in (n for n in stacks if n not in before):
        template = templates[name]
        if template.renamed_from_name is not None:
            notes.append(f"{name}: renamed from {template.renamed_from_name}; its state must already be at "
                         f"{state_key(platform, namespace, name)}")
            continue
        for old in gone:
            if not _same_resources(committed.stack(f"{base}/{old}"), stacks[name], old, name):
                continue
            old_key, new_key = state_key(platform, namespace, old), state_key(platform, namespace, name)
            problems.append(
                f"{location(template)}{template.kind} '{name}' (namespace '{namespace}') looks renamed from '{old}': "
                f"{cloud_tree}/{base}/{old} at git HEAD declares the same resources. Its state key changes from "
                f"{old_key} to {new_key}, which a moved block cannot follow (Terraform would create everything "
                f"again and orphan the old state). Migrate the state first, with the committed tree: "
                f"`terraform -chdir={cloud_tree}/{base}/{old} init -migrate-state -backend-config=key={new_key}` "
                f"(copies the state to the new key; delete {old_key} once `mlops plan` shows no changes), then "
                f"declare `.renamed_from({old!r})` on the template and run `mlops synth` again; or keep "
                f"name={old!r}.")
    if problems:
        raise BlueprintError(problems)
    return notes


def _same_resources(committed: Mapping[str, str], stack: Stack, old: str, new: str) -> bool:
    parsed = committed_resources(committed)
    if parsed is None or not stack.resources:
        return False
    fmt, before = parsed
    now = current_resources(stack, fmt)
    if set(before) != set(now):
        return False
    pairs = [(old.replace("-", "_"), new.replace("-", "_"))]
    return all(_substitute(before[address], pairs) == text for address, text in now.items())
