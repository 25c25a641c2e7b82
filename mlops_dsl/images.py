"""Content-hash tags for the images built from this repository (training/, serving/).

The tag is a hash of exactly the files Docker would send as the build context (`.dockerignore`
honoured, with Docker's rules), their paths and executable bits. The same code always yields the
same tag, and any change to it yields a new one: a one-line diff in the generated Terraform.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

TAG_LENGTH = 12
ALWAYS_SENT = ("Dockerfile", ".dockerignore")  # Docker sends these even when ignored


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    exclude: bool


def _translate(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over /-separated paths."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                i += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                if body[:1] in ("!", "^"):  # Go negates a class with ^, Docker users often write !
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    # A pattern that names a directory excludes everything below it as well.
    return re.compile("".join(out) + "(?:/.*)?")


def parse_dockerignore(text: str) -> list[_Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).replace(os.sep, "/").lstrip("/")
        if pattern in (".", ""):
            continue
        rules.append(_Rule(_translate(pattern), exclude))
    return rules


def _ignored(rel: str, rules: list[_Rule]) -> bool:
    ignored = False
    for rule in rules:  # the last matching rule wins
        if rule.regex.fullmatch(rel):
            ignored = rule.exclude
    return ignored


def context_files(context: Path) -> list[str]:
    """The files Docker would send, as sorted /-separated paths relative to the context."""
    ignore = context / ".dockerignore"
    rules = parse_dockerignore(ignore.read_text(encoding="utf-8")) if ignore.is_file() else []
    files = []
    for root, dirs, names in os.walk(context):
        dirs.sort()
        for name in names:
            rel = (Path(root) / name).relative_to(context).as_posix()
            if rel in ALWAYS_SENT or not _ignored(rel, rules):
                files.append(rel)
    return sorted(files)


_STAGE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*\S+\s+AS\s+(\S+)\s*$", re.IGNORECASE | re.MULTILINE)


def dockerfile_stages(context: Path) -> list[str]:
    """The named stages (`FROM image AS name`) of a context's Dockerfile, lowercased as Docker
    compares them."""
    dockerfile = context / "Dockerfile"
    text = dockerfile.read_text(encoding="utf-8") if dockerfile.is_file() else ""
    return [name.lower() for name in _STAGE.findall(text)]


def content_tag(context: Path, target: str | None = None) -> str:
    """The image tag for a build context (and stage): the first hex digits of a hash of what Docker
    would send, and of the stage's name, so two stages of one context never share a tag. Without
    a stage the hash is that of the files alone, as it always was."""
    if not context.is_dir():
        raise FileNotFoundError(f"{context}/: no such build context")
    digest = hashlib.sha256()
    if target is not None:
        digest.update(f"--target\0{target}\0".encode())
    for rel in context_files(context):
        path = context / rel
        executable = os.access(path, os.X_OK)
        digest.update(f"{rel}\0{'x' if executable else '-'}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:TAG_LENGTH]
