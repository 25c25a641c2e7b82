"""Regenerate mlops_dsl/vendor/azapi/types.json from a checkout of Azure/terraform-provider-azapi.

`mlops validate --schema` checks every azapi body against the types azapi itself embeds (the
bicep-types-az format under `internal/azure/generated/<group>/<namespace>/<apiVersion>/types.json`),
so a body is judged exactly as `terraform validate` would judge it. The full set is ~1 GB; we keep
only the `type@apiVersion`s the project renders (and the types they reach), without descriptions,
plus the list of API versions azapi knows for each resource type, so a pinned version that does not
exist is named as such.

Usage (from the repository root):

    python tools/vendor_azapi_types.py /path/to/terraform-provider-azapi [--commit REV] \
        [--also Microsoft.X/y@2025-01-01 ...]

The source may be a working tree or a git directory without one (`fetch` gives the latter). With no
`--only`, the types used are read from the current renders of every blueprint in every namespace.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "mlops_dsl" / "vendor" / "azapi" / "types.json"
GENERATED = "internal/azure/generated"
REPO = "Azure/terraform-provider-azapi"
# Documentation fields of a bicep type node or property, not needed to check a body.
_DROP = {"description"}


class Source:
    """Files of the azapi repository at one commit, from a work tree or a bare git directory."""

    def __init__(self, path: Path, commit: str) -> None:
        self.path = path
        self.worktree = (path / GENERATED).is_dir()
        self.commit = self._git("rev-parse", commit).strip()
        self.describe = self._git("describe", "--tags", self.commit).strip()

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True,
                              text=True).stdout

    def list(self, namespace: str) -> list[str]:
        """Every types.json of one resource provider namespace (lowercase directory names)."""
        names = self._git("ls-tree", "-r", "--name-only", self.commit, GENERATED).splitlines()
        return sorted(n for n in names if n.endswith("/types.json") and n.split("/")[-3] == namespace.lower())

    def read(self, name: str) -> list[dict[str, Any]]:
        if self.worktree:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        return json.loads(self._git("show", f"{self.commit}:{name}"))


def used_types() -> set[str]:
    """Every `type@apiVersion` an azapi resource declares in the renders of all namespaces."""
    sys.path.insert(0, str(ROOT))
    from mlops_dsl import blueprints, namespaces, synth

    spaces = namespaces.load(ROOT / "namespaces.yaml")
    rendered = synth.render_tree(blueprints.load(None), list(spaces.values()), root=ROOT)
    return {r.body["type"] for _, stack in rendered.stacks() for r in stack.resources
            if r.type.startswith("azapi_") and isinstance(r.body.get("type"), str)}


def _refs(node: Any, remap: dict[int, int], visit: list[int]) -> Any:
    """A copy of `node` without descriptions, each {"$ref": "#/N"} replaced by its new index."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            old = int(node["$ref"].removeprefix("#/"))
            if old not in remap:
                remap[old] = -1  # placeholder, filled in by the caller's walk
                visit.append(old)
            return {"$ref": old}
        # a "description" text is documentation; a property *named* description maps to an object
        return {k: _refs(v, remap, visit) for k, v in node.items() if not (k in _DROP and isinstance(v, str))}
    if isinstance(node, list):
        return [_refs(v, remap, visit) for v in node]
    return node


def _renumber(node: Any, remap: dict[int, int]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            return remap[node["$ref"]]
        return {k: _renumber(v, remap) for k, v in node.items()}
    if isinstance(node, list):
        return [_renumber(v, remap) for v in node]
    return node


def extract(source: Source, wanted: Iterable[str]) -> dict[str, Any]:
    out_types: list[Any] = []
    leaves: dict[str, int] = {}  # identical nodes without references are stored once
    resources: dict[str, dict[str, Any]] = {}
    versions: dict[str, list[str]] = {}
    files: dict[str, list[dict[str, Any]]] = {}
    by_name: dict[str, tuple[str, int]] = {}
    for full in sorted(set(wanted)):
        resource_type = full.split("@", 1)[0]
        namespace = resource_type.split("/", 1)[0]
        if resource_type in versions:
            continue
        found: set[str] = set()
        for name in source.list(namespace):
            nodes = files.setdefault(name, source.read(name))
            for i, node in enumerate(nodes):
                if node.get("$type") == "ResourceType" and node["name"].split("@")[0].lower() == resource_type.lower():
                    found.add(node["name"].split("@", 1)[1])
                    by_name.setdefault(node["name"].lower(), (name, i))
        versions[resource_type] = sorted(found)
    for full in sorted(set(wanted)):
        if full.lower() not in by_name:
            print(f"note: {full} is not a type azapi embeds at {source.describe}; validate will say so",
                  file=sys.stderr)
            continue
        name, index = by_name[full.lower()]
        nodes = files[name]
        remap: dict[int, int] = {}
        copies: dict[int, Any] = {}
        visit = [index]
        remap[index] = -1
        while visit:
            old = visit.pop()
            copies[old] = _refs(nodes[old], remap, visit)
        for old in sorted(copies):
            node = copies[old]
            has_refs = json.dumps(node).find('"$ref"') >= 0
            key = json.dumps(node, sort_keys=True)
            if not has_refs and key in leaves:
                remap[old] = leaves[key]
                continue
            remap[old] = len(out_types)
            out_types.append(None)
            if not has_refs:
                leaves[key] = remap[old]
        for old in sorted(copies):
            if out_types[remap[old]] is None:
                out_types[remap[old]] = _renumber(copies[old], remap)
        resource = nodes[index]
        resources[resource["name"]] = {"type": remap[index], "file": name}
    return {
        "source": {"repo": REPO, "commit": source.commit, "describe": source.describe, "path": GENERATED},
        "versions": versions,
        "resources": resources,
        "types": out_types,
    }


def write(data: dict[str, Any], path: Path) -> None:
    """One type per line: small, and a regeneration shows as a readable diff."""
    lines = ["{"]
    for key in ("source", "versions", "resources"):
        lines.append(f"{json.dumps(key)}: {json.dumps(data[key], sort_keys=True)},")
    lines.append('"types": [')
    lines.append(",\n".join(json.dumps(t, sort_keys=True, separators=(",", ":")) for t in data["types"]))
    lines.append("]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a checkout (or git directory) of " + REPO)
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--also", nargs="*", default=[], help="more type@apiVersion to vendor")
    parser.add_argument("--only", nargs="*", help="vendor exactly these type@apiVersion (skip the renders)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    wanted = set(args.only) if args.only is not None else used_types()
    wanted |= set(args.also)
    data = extract(Source(args.source, args.commit), wanted)
    write(data, args.out)
    print(f"{args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}: "
          f"{len(data['resources'])} resource types, {len(data['types'])} type nodes, "
          f"{args.out.stat().st_size // 1024} KiB, from {REPO}@{data['source']['commit']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
