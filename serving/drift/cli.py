"""The drift job's command line: one pass, one shard of a pass, or the merge of shards.

    python -m serving.drift --baseline B (--data SRC [SRC ...] | --merge PARTIAL [PARTIAL ...])
        [--since-hours N [--until YYYY-MM-DDTHH]] [--shard I/N] [--workers N] [--partial FILE] [--out DIR]
        [--config YAML] [--alpha A] [--min-effect E] [--exit-zero-on-drift]
        [--metrics json|cloudwatch|azure-monitor] [--namespace NS] [--dimension NAME=VALUE ...]

`--baseline` is a baseline.json or the model.tar.gz of the served package, whose baseline.json
member training wrote next to the model. `--since-hours N` reads only the capture objects of the N
whole UTC hours before `--until` (default: the current hour), by the yyyy/mm/dd/hh in their keys,
so an hourly job reads each hour once; an empty window is not an error (exit 0, no report; the
metrics, when asked for, say no drift over 0 rows).

Exit codes: 0 no drift (or a partial result written, or an empty window), 1 drift (0 with
--exit-zero-on-drift, for a scheduled job whose verdict is the metrics, not its status), 2 bad
input or a failed metrics sink (the message names the file, line or service). 3 is not used.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .capture import Reader
from .metrics import SinkError, send
from .report import write
from .sketch import BaselineError, Profile
from .sources import SourceError, in_window, list_blobs, open_stream, read_bytes, shard
from .stats import Thresholds, compare

DEFAULT_CONFIG = Path(__file__).resolve().parent / "drift.yaml"
# What an empty window reports to the metrics sink: no drift, no rows.
EMPTY_REPORT: dict[str, Any] = {"drifted": False, "drifted_features": [], "rows": 0, "unreadable_records": 0,
                                "features": {}}


class DriftInputError(ValueError):
    """Unreadable baseline, configuration, input or partial result; the message names it."""


PACKAGE_SUFFIXES = (".tar.gz", ".tgz")
BASELINE_MEMBER = "baseline.json"


def _package_baseline(uri: str) -> bytes:
    """The baseline.json member of a model package (model.tar.gz), streamed: the model beside it
    may be large, and the archive is read only up to that member."""
    stream = open_stream(uri)
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as archive:
            seen = []
            for member in archive:
                if member.isfile() and member.name.removeprefix("./") == BASELINE_MEMBER:
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    return extracted.read()
                seen.append(member.name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DriftInputError(f"{uri}: not a readable model.tar.gz ({exc})") from None
    finally:
        stream.close()
    listed = ", ".join(seen[:5]) + (", ..." if len(seen) > 5 else "")
    raise DriftInputError(f"{uri}: the package has no {BASELINE_MEMBER} (members: {listed or 'none'}); "
                          "it was registered by a pipeline that did not write the baseline (retrain)")


def read_baseline(uri: str) -> dict[str, Any]:
    try:
        raw = _package_baseline(uri) if uri.lower().endswith(PACKAGE_SUFFIXES) else read_bytes(uri)
        baseline = json.loads(raw)
        if not isinstance(baseline, dict) or not isinstance(baseline.get("features"), dict):
            raise KeyError("features")
    except DriftInputError:
        raise
    except SourceError as exc:
        raise DriftInputError(str(exc)) from None
    except (ValueError, KeyError) as exc:
        raise DriftInputError(f"{uri}: not a training baseline ({exc})") from None
    if baseline.get("version") != 2:
        raise DriftInputError(f"{uri}: baseline version {baseline.get('version')!r}; this job reads version 2 "
                              "(retrain to write one)")
    return baseline


def read_thresholds(path: Path) -> Thresholds:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise DriftInputError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise DriftInputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict) or set(doc) - {"alpha", "min_effect"}:
        raise DriftInputError(f"{path}: expected the keys alpha and min_effect; got {doc!r}")
    values = {key: _fraction(f"{path}: {key}", doc.get(key, getattr(Thresholds, key)))
              for key in ("alpha", "min_effect")}
    return Thresholds(**values)


def _fraction(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise DriftInputError(f"{what}: expected a number from 0 to 1; got {value!r}")
    return float(value)


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 0/8); got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected 0 <= I < N; got {text!r}")
    return index, count


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1; got {text!r}")
    return int(text)


def _hour(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an hour YYYY-MM-DDTHH (UTC), e.g. 2026-12-01T09; "
                                         f"got {text!r}") from None


def current_hour() -> datetime:
    """The start of the current UTC hour (naive, like the hours in capture keys)."""
    return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)


def _dimension(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE; got {text!r}")
    return name, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m serving.drift", description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", required=True,
                   help="baseline.json of the training run, or the served package's model.tar.gz holding it "
                        "(path, s3://, azure://)")
    inputs = p.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--data", nargs="+", metavar="SRC",
                        help="capture files or prefixes: a file, a directory, s3://bucket/prefix, azure://container/prefix")
    inputs.add_argument("--merge", nargs="+", metavar="PARTIAL", help="partial results written by --partial")
    p.add_argument("--since-hours", type=_positive, metavar="N",
                   help="only capture objects of the N whole UTC hours before --until, by the "
                        "yyyy/mm/dd/hh in their keys (objects without one are left out)")
    p.add_argument("--until", type=_hour, metavar="YYYY-MM-DDTHH",
                   help="end of the --since-hours window, exclusive (default: the current UTC hour)")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N",
                   help="read only every N-th input object from the I-th (default 0/1: all)")
    p.add_argument("--workers", type=_positive, default=1, metavar="N",
                   help="decode with N processes (e.g. the instance's vCPUs); their counts merge exactly")
    p.add_argument("--partial", type=Path, metavar="FILE",
                   help="write the counts to FILE for a later --merge, instead of a report (exit 0)")
    p.add_argument("--out", type=Path, default=Path("drift-report"), help="directory for drift.json/png/html")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="thresholds (serving/drift/drift.yaml)")
    p.add_argument("--alpha", "--p-value", type=float, dest="alpha", help="overrides alpha in the config")
    p.add_argument("--min-effect", type=float, help="overrides min_effect in the config")
    p.add_argument("--metrics", choices=("json", "cloudwatch", "azure-monitor"),
                   help="also send machine-readable metrics (json: on stdout)")
    p.add_argument("--namespace", default="MLOps/Drift", help="metrics namespace (default MLOps/Drift)")
    p.add_argument("--dimension", type=_dimension, action="append", default=[], metavar="NAME=VALUE",
                   help="a dimension on every metric, e.g. Endpoint=churn (repeatable)")
    p.add_argument("--exit-zero-on-drift", action="store_true",
                   help="exit 0 when drift is found (a scheduled job: the metrics carry the verdict, and a "
                        "drifted run must not look like a failed job); bad input still exits 2")
    return p


Window = tuple[int, datetime] | None
"""(hours, until): keep the capture objects of hours H with until - hours <= H < until."""


class EmptyWindow(Exception):
    """No capture object in the --since-hours window: nothing to compare, and not an error."""


def count(baseline: dict[str, Any], sources: list[str], index: int, total: int, workers: int = 1,
          window: Window = None) -> Profile:
    """Stream every input object of this shard into a Profile; with workers > 1, the shard's objects
    are split among that many processes whose counts merge exactly (decoding is CPU-bound)."""
    if workers > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(workers) as pool:
            states = pool.starmap(_count_state, [(baseline, sources, index, total, w, workers, window)
                                                 for w in range(workers)])
        profile = Profile(baseline)
        for state in states:
            profile.merge(Profile.load(baseline, state))
        return profile
    return _count(baseline, sources, index, total, 0, 1, window)


def _count_state(*args: Any) -> dict[str, Any]:
    return _count(*args).state()


def _count(baseline: dict[str, Any], sources: list[str], index: int, total: int, worker: int,
           workers: int, window: Window = None) -> Profile:
    blobs = []
    for uri in sources:
        try:
            blobs += list_blobs(uri)
        except SourceError as exc:
            raise DriftInputError(str(exc)) from None
    if not blobs:
        raise DriftInputError(f"{', '.join(sources)}: no .jsonl, .json or .csv files")
    if window is not None:
        hours, until = window
        listed = len(blobs)
        blobs, undated = in_window(blobs, hours, until)
        if not blobs:
            raise EmptyWindow(f"no capture object of the {hours} hour(s) before {until:%Y-%m-%dT%H}:00 UTC "
                              f"among {listed} listed ({undated} without a yyyy/mm/dd/hh key)")
    profile = Profile(baseline)
    reader = Reader(profile)
    for blob in shard(blobs, index, total)[worker::workers]:
        try:
            if blob.is_capture:
                reader.capture(blob.uri, blob.lines())
            else:
                reader.table(blob.uri, blob.lines())
        except SourceError as exc:  # an object that cannot be fetched: counted and skipped like a bad record
            profile.records += 1
            profile.skip(str(exc))
    reader.flush()
    return profile


def merged(baseline: dict[str, Any], partials: list[str]) -> Profile:
    profile = Profile(baseline)
    for uri in partials:
        try:
            profile.merge(Profile.load(baseline, json.loads(read_bytes(uri))))
        except SourceError as exc:
            raise DriftInputError(str(exc)) from None
        except (BaselineError, ValueError, KeyError, TypeError) as exc:
            raise DriftInputError(f"{uri}: not a partial result for this baseline ({exc})") from None
    return profile


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise DriftInputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        configured = read_thresholds(args.config)
        thresholds = Thresholds(
            configured.alpha if args.alpha is None else _fraction("--alpha", args.alpha),
            configured.min_effect if args.min_effect is None else _fraction("--min-effect", args.min_effect))
        if args.until is not None and args.since_hours is None:
            raise DriftInputError("--until ends a --since-hours window: give --since-hours N too")
        if args.since_hours is not None and args.merge:
            raise DriftInputError("--since-hours selects capture objects of --data; --merge reads partial results")
        baseline = read_baseline(args.baseline)
        window = None if args.since_hours is None else (args.since_hours, args.until or current_hour())
        try:
            profile = (merged(baseline, args.merge) if args.merge
                       else count(baseline, args.data, *args.shard, args.workers, window))
        except BaselineError as exc:
            raise DriftInputError(f"{args.baseline}: {exc}") from None
        except EmptyWindow as empty:
            # The metrics still say "no drift" (0 rows): CloudWatch evaluates the latest datapoints that
            # exist, so a run that sent nothing would not break a run of drifted hours for the alarm
            # that counts N of them in a row (alarms-and-missing-data).
            text = send(EMPTY_REPORT, args.metrics, args.namespace, dict(args.dimension)) if args.metrics else None
            if text is not None:
                print(text)
            print(f"{empty}: nothing to compare" + (", metrics say no drift over 0 rows" if args.metrics else ""),
                  file=sys.stderr)
            return 0
        if args.partial:
            _write(args.partial, json.dumps(profile.state()))
            print(f"partial: {profile.rows} rows, {profile.unreadable} unreadable records -> {args.partial}")
            return 0
        if profile.rows == 0:
            reasons = "; ".join(profile.errors[:3])
            raise DriftInputError(f"no readable rows in {profile.records} records"
                                  + (f" ({reasons})" if reasons else ""))
        report = compare(profile, thresholds)
        try:
            paths = write(report, args.out)
        except OSError as exc:
            raise DriftInputError(f"{args.out}: cannot write the report ({exc.strerror or exc})") from None
        text = send(report, args.metrics, args.namespace, dict(args.dimension)) if args.metrics else None
    except (DriftInputError, SinkError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if text is not None:
        print(text)
    verdict = f"DRIFT in {', '.join(report['drifted_features'])}" if report["drifted"] else "no drift"
    print(f"{verdict} over {report['rows']} rows ({report['unreadable_records']} unreadable records skipped); "
          "reports: " + ", ".join(str(p) for p in paths), file=sys.stderr if text is not None else sys.stdout)
    return 1 if report["drifted"] and not args.exit_zero_on_drift else 0
