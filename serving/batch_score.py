"""Score every file of a folder with the model, as a batch job: `python -m serving score`.

Where a platform cannot run SageMaker Batch Transform (Azure: batch deployments are not supported
in workspaces encrypted with a customer-managed key, README: Inference modes), a scheduled job runs
this over the folder Azure ML mounts as its input, writing to the folder it uploads as its output.
It answers exactly as the server does: the same parsing and checks (serving/formats.py), the same
model and engines (serving/model.py), the same answer formats.

Each input file is read in chunks of whole lines up to `max_payload` bytes (a CSV header, when the
file has one, is carried into every chunk), so memory stays bounded whatever the file's size. The
answers go to `<output>/<the file's relative path>.out`, line-aligned with the input for CSV and
JSON Lines answers, one JSON document per chunk for JSON, as Batch Transform's `AssembleWith=Line`
writes them. A file that cannot be scored (a bad row, an unreadable encoding) gets
`<relative path>.error` naming the problem instead, the other files are still scored, and the run
ends with exit code 1, so the job fails and its alert fires; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import formats
from .model import LoadedModel

SPLITTABLE = ("text/csv", "application/jsonlines")


@dataclass
class Report:
    files: int = 0
    rows: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # relative path -> the problem


def _header(line: bytes, loaded: LoadedModel) -> bool:
    """The server's rule (formats.names_a_column) on a file's first line."""
    try:
        cells = next(csv.reader(io.StringIO(line.decode("utf-8-sig"))), [])
    except (UnicodeDecodeError, csv.Error):
        return False
    return formats.names_a_column(cells, loaded.columns)


def chunks(path: Path, content_type: str, loaded: LoadedModel, max_payload: int) -> Iterator[bytes]:
    """Bodies of whole lines, each at most max_payload bytes (a longer line alone); JSON whole."""
    if content_type not in SPLITTABLE:
        body = path.read_bytes()
        if len(body) > max_payload:
            raise formats.ClientError(413, f"the file is {len(body)} bytes; a JSON document is scored whole, and "
                                           f"the limit is {max_payload} bytes (send CSV or JSON Lines to split it)")
        yield body
        return
    header = b""
    part: list[bytes] = []
    size = 0
    with path.open("rb") as handle:
        for n, line in enumerate(handle):
            if n == 0 and content_type == "text/csv" and _header(line, loaded):
                header = line if line.endswith(b"\n") else line + b"\n"
                continue
            if not line.strip():
                continue
            if part and size + len(line) > max_payload - len(header):
                yield header + b"".join(part)
                part, size = [], 0
            part.append(line if line.endswith(b"\n") else line + b"\n")
            size += len(part[-1])
    if part:
        yield header + b"".join(part)


def score_file(path: Path, out: Path, loaded: LoadedModel, content_type: str, accept: str,
               max_payload: int) -> int:
    """The file's answers to `out` (written whole or not at all); the number of rows scored."""
    rows = 0
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as sink:
        for body in chunks(path, content_type, loaded, max_payload):
            checked = formats.parse(body, content_type, loaded.columns)
            try:
                labels, probabilities = loaded.predict(checked)
            except (ValueError, TypeError) as exc:  # as the server answers it: the input's problem, 400
                raise formats.ClientError(400, f"the model could not score the input: {exc}") from None
            payload, _kind = formats.answer(labels, probabilities, accept)
            sink.write(payload if accept != "application/json" else payload + b"\n")
            rows += len(checked)
    partial.replace(out)
    return rows


def score_directory(loaded: LoadedModel, source: Path, target: Path, content_type: str, accept: str,
                    max_payload: int, say: Callable[[str], None] = print) -> Report:
    report = Report()
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    started = time.monotonic()
    for i, path in enumerate(files, 1):
        relative = path.relative_to(source).as_posix()
        out = target / f"{relative}.out"
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            rows = score_file(path, out, loaded, content_type, accept, max_payload)
        except (formats.ClientError, UnicodeDecodeError, OSError) as exc:
            message = exc.message if isinstance(exc, formats.ClientError) else f"{type(exc).__name__}: {exc}"
            out.with_name(out.name + ".partial").unlink(missing_ok=True)
            (target / f"{relative}.error").write_text(message + "\n")
            report.failed[relative] = message
            say(f"[{i}/{len(files)}] {relative}: not scored: {message}")
            continue
        report.files += 1
        report.rows += rows
        say(f"[{i}/{len(files)}] {relative}: {rows} rows ({time.monotonic() - started:.1f} s)")
    return report


def run(model_uri: str, source: str, target: str, content_type: str, accept: str, max_payload_mb: int) -> int:
    """The CLI's work: exit 0 when every file was scored, 1 when one was not, 2 for a bad argument."""
    from .model import load

    src, dst = Path(source), Path(target)
    if not src.is_dir():
        print(f"Error: --input {source}: not a directory", file=sys.stderr)
        return 2
    for flag, kind in (("--content-type", content_type), ("--accept", accept)):
        if kind not in formats.OUTPUTS:  # the three types the server reads and writes
            print(f"Error: {flag} {kind!r}: give one of {', '.join(formats.OUTPUTS)}", file=sys.stderr)
            return 2
    try:
        loaded = load(model_uri)
    except (FileNotFoundError, ValueError) as exc:
        print(f"Error: --model {model_uri}: {exc}", file=sys.stderr)
        return 2
    dst.mkdir(parents=True, exist_ok=True)
    report = score_directory(loaded, src, dst, content_type, accept, max_payload_mb * 1024 * 1024)
    print(f"scored {report.rows} rows in {report.files} files; {len(report.failed)} not scored"
          + (f" (see {dst}/*.error)" if report.failed else ""))
    return 1 if report.failed else 0


__all__ = ["Report", "chunks", "run", "score_directory", "score_file"]
