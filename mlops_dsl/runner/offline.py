"""The plan shown where no terraform binary exists: a configuration diff against git.

It compares the resources of each freshly rendered stack with those committed at a ref (HEAD by
default), block by block. It knows nothing of state: a resource that exists in the cloud but was
never committed, or one changed by hand, is invisible here, so the CLI prints a banner saying so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .git import NoHistory, files_in, read_blobs, tree_at
from .units import Unit

# Top-level blocks as the HCL writer emits them: a header line at column 0, the body, then `}`.
_BLOCK = re.compile(r'^(resource|data) "([^"]+)" "([^"]+)" \{\n(.*?)^\}\n', re.MULTILINE | re.DOTALL)


def resource_blocks(files: Mapping[str, str]) -> dict[str, str]:
    """Address (`aws_s3_bucket.raw`, `data.aws_iam_policy_document.x`) -> canonical text of its body."""
    blocks: dict[str, str] = {}
    for name, text in files.items():
        if name.endswith(".tf.json"):
            doc = json.loads(text)
            for kind in ("resource", "data"):
                for rtype, items in (doc.get(kind) or {}).items():
                    for rname, body in items.items():
                        prefix = "data." if kind == "data" else ""
                        blocks[f"{prefix}{rtype}.{rname}"] = json.dumps(body, sort_keys=True)
        elif name.endswith(".tf"):
            for kind, rtype, rname, body in _BLOCK.findall(text):
                prefix = "data." if kind == "data" else ""
                blocks[f"{prefix}{rtype}.{rname}"] = body
    return blocks


@dataclass
class ConfigDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    new_stack: bool = False

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def config_diff(units: list[Unit], out: Path, ref: str = "HEAD") -> tuple[dict[str, ConfigDiff], bool]:
    """Per unit key, the resources added, removed and changed against `out` as committed at `ref`,
    and whether there was a history to compare with (outside git, every stack is new)."""
    try:
        tree = tree_at(ref, out)
    except NoHistory:
        tree = {}
    wanted: dict[str, dict[str, str]] = {}
    for unit in units:
        wanted[unit.key] = files_in(tree, unit.path.relative_to(out).as_posix())
    blobs = read_blobs(out, sorted({oid for files in wanted.values() for oid in files.values()}))
    diffs = {}
    for unit in units:
        committed = {name: blobs[oid] for name, oid in wanted[unit.key].items()}
        before, after = resource_blocks(committed), resource_blocks(unit.files)
        diffs[unit.key] = ConfigDiff(
            added=sorted(set(after) - set(before)),
            removed=sorted(set(before) - set(after)),
            changed=sorted(a for a in set(after) & set(before) if after[a] != before[a]),
            new_stack=not committed,
        )
    return diffs, bool(tree)
