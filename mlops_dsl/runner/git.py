"""The committed `terraform/` tree at a git ref, without checking anything out.

Change detection compares git's blob hashes with the hashes of the freshly rendered text, so it
reads no file contents; the offline diff reads only the blobs of stacks that changed.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from ..errors import MlopsError


class NoHistory(MlopsError):
    """The directory is not inside a git repository."""


def blob_hash(text: str) -> str:
    """git's object id of a file with this text."""
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _git(directory: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        result = subprocess.run(["git", "-C", str(directory), *args], input=stdin, capture_output=True,
                                check=False)
    except FileNotFoundError:
        raise MlopsError("git is not installed; --changed and the offline plan compare with git history") from None
    if result.returncode != 0:
        raise MlopsError(f"git {' '.join(args[:3])}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def tree_at(ref: str, directory: Path) -> dict[str, str]:
    """Relative path (under `directory`) -> blob id of every file committed there at `ref`."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        _git(directory, "rev-parse", "--is-inside-work-tree")
    except MlopsError:
        raise NoHistory(f"{directory}: not inside a git repository, so there is no history to compare with") from None
    try:
        _git(directory, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except MlopsError:
        raise MlopsError(f"--base {ref}: not a commit in this repository (try HEAD, main or origin/main)") from None
    out = _git(directory, "ls-tree", "-r", "-z", ref, ".")
    tree = {}
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        tree[path.decode()] = meta.split()[2].decode()
    return tree


def files_in(tree: dict[str, str], directory: str) -> dict[str, str]:
    """File name -> blob id of the files directly in `directory` (relative, as in `tree`)."""
    prefix = directory.rstrip("/") + "/"
    return {rel[len(prefix):]: oid for rel, oid in tree.items()
            if rel.startswith(prefix) and "/" not in rel[len(prefix):]}


def read_blobs(directory: Path, ids: list[str]) -> dict[str, str]:
    """The text of each blob id, in one git process."""
    if not ids:
        return {}
    out = _git(directory, "cat-file", "--batch", stdin="".join(f"{i}\n" for i in ids).encode())
    blobs, pos = {}, 0
    for oid in ids:
        header_end = out.index(b"\n", pos)
        _, _, size = out[pos:header_end].split()
        start = header_end + 1
        blobs[oid] = out[start:start + int(size)].decode()
        pos = start + int(size) + 1
    return blobs


def changed_since(ref: str, out: Path, stacks: dict[str, tuple[str, dict[str, str]]]) -> set[str]:
    """Keys of the stacks whose rendered files differ from those committed under `out` at `ref`.

    `stacks` maps a key to the stack's directory relative to `out` and its rendered files.
    """
    tree = tree_at(ref, out)
    changed = set()
    for key, (rel_dir, files) in stacks.items():
        committed = files_in(tree, rel_dir)
        if committed != {name: blob_hash(text) for name, text in files.items()}:
            changed.add(key)
    return changed
