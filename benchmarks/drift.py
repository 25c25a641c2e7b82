"""Drift job throughput: 10M captured rows x 20 features in SageMaker data-capture files.

Writes 100 capture files of 1,000 records, each record carrying 100 rows (half CSV bodies, a
quarter of them base64, half MLflow `dataframe_split` JSON bodies), under SageMaker's
`<endpoint>/<variant>/yyyy/mm/dd/hh/` layout, then times `python -m serving.drift` on them in a
fresh process: wall time, rows/s and peak RSS of that process (the goal: < 60 s, < 500 MB), then
with `--workers 2` (this machine's cores), whose memory is the PSS of the job and its workers summed. Then
the same data as 8 shards (`--shard i/8 --partial`) run one after the other and merged
(`--merge`), and checks that the merged report equals the one-pass report.

The records are drawn from a pool of 2,000 distinct ones (200,000 fresh rows) to keep the
generation short; decoding costs the same whether records repeat or not. 15 numeric features (12
continuous, 3 discrete) and 5 categorical; the training baseline comes from 50,000 rows.
`BENCH_DRIFT_ROWS` scales the run down (e.g. 1000000 for a quick look). The load average is
printed before and after the timed runs: on a shared machine it says how far to trust them.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.baseline import baseline  # noqa: E402

ROWS = int(os.environ.get("BENCH_DRIFT_ROWS", 10_000_000))
PER_RECORD, PER_FILE, POOL = 100, 1000, 2000
CONTINUOUS, DISCRETE, CATEGORICAL = 12, 3, 5
SHARDS = 8
GOAL_S, GOAL_MB = 60, 500


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {f"x{i}": np.round(rng.normal(0, 1 + i / 10, rows), 4) for i in range(CONTINUOUS)}
    data |= {f"d{i}": rng.integers(0, 3 + 2 * i, rows).astype(float) for i in range(DISCRETE)}
    data |= {f"c{j}": rng.choice(np.array([f"v{k}" for k in range(8)], dtype=object), rows)
             for j in range(CATEGORICAL)}
    out = pd.DataFrame(data)
    out.loc[rng.random(rows) < 0.01, "x0"] = np.nan
    return out


def record(part: pd.DataFrame, i: int) -> str:
    if i % 2:
        body = json.dumps({"dataframe_split": {"columns": list(part.columns),
                                               "data": part.astype(object).where(part.notna(), None).values.tolist()}})
        payload = {"observedContentType": "application/json", "mode": "INPUT", "data": body, "encoding": "JSON"}
    else:
        body = part.to_csv(header=False, index=False)
        encoded = i % 4 == 0
        payload = {"observedContentType": "text/csv", "mode": "INPUT", "encoding": "BASE64" if encoded else "CSV",
                   "data": base64.b64encode(body.encode()).decode() if encoded else body}
    return json.dumps({"captureData": {"endpointInput": payload}, "eventMetadata": {"eventId": str(i)},
                       "eventVersion": "0"})


def write_capture(root: Path) -> int:
    pool_rows = frame(POOL * PER_RECORD, seed=2)
    pool = [record(pool_rows.iloc[i * PER_RECORD:(i + 1) * PER_RECORD], i) for i in range(POOL)]
    records = ROWS // PER_RECORD
    written = 0
    for f in range(0, records, PER_FILE):
        hour = root / "churn" / "AllTraffic" / "2026" / "12" / "01" / f"{f // PER_FILE // 10:02d}"
        hour.mkdir(parents=True, exist_ok=True)
        lines = [pool[(f + k) % POOL] for k in range(min(PER_FILE, records - f))]
        (hour / f"capture-{f // PER_FILE:04d}.jsonl").write_text("\n".join(lines) + "\n")
        written += len(lines)
    return written * PER_RECORD


def _tree(pid: int) -> list[int]:
    """A process and its descendants (Linux /proc)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid] + [p for child in children for p in _tree(int(child))]


def _pss_mb(pid: int) -> float:
    """Proportional set size: pages shared after `fork` are split between the processes holding them,
    so the sum over a pool of workers is what they take together (RSS would count them twice)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(args: list[str]) -> tuple[float, float, int, float]:
    """Wall seconds and peak RSS (MB) of one `python -m serving.drift` process, its exit code, and
    the peak of its and its workers' PSS summed (MB, sampled every 50 ms; 0 without /proc)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "serving.drift", *args], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err)
        together = 0.0
        while proc.poll() is None:
            together = max(together, sum(_pss_mb(p) for p in _tree(proc.pid)))
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            err.seek(0)
            raise SystemExit(f"the drift job failed ({proc.returncode}): {err.read().decode(errors='replace')}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    return elapsed, peak, proc.returncode, together


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        numeric = [f"x{i}" for i in range(CONTINUOUS)] + [f"d{i}" for i in range(DISCRETE)]
        base = baseline(frame(50_000, 1), numeric, [f"c{j}" for j in range(CATEGORICAL)])
        (work / "baseline.json").write_text(json.dumps(base))
        start = time.perf_counter()
        rows = write_capture(work / "capture")
        size = sum(p.stat().st_size for p in (work / "capture").rglob("*.jsonl")) / 1e9
        print(f"wrote {rows:,} rows x 20 features in {rows // PER_RECORD:,} records ({size:.2f} GB) "
              f"in {time.perf_counter() - start:.0f} s")
        common = ["--baseline", str(work / "baseline.json")]
        print("load average before the timed runs (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        elapsed, peak, code, _ = timed([*common, "--data", str(work / "capture"), "--out", str(work / "one")])
        print(f"one pass: {elapsed:.1f} s, {rows / elapsed:,.0f} rows/s, peak RSS {peak:.0f} MB, exit {code} "
              f"(goal < {GOAL_S} s, < {GOAL_MB} MB)")
        elapsed2, _, _, together = timed([*common, "--data", str(work / "capture"), "--workers", "2",
                                          "--out", str(work / "two")])
        print(f"one pass, --workers 2: {elapsed2:.1f} s, {rows / elapsed2:,.0f} rows/s, peak PSS of the job and "
              f"its 2 workers together {together:.0f} MB (goal < {GOAL_S} s, < {GOAL_MB} MB)")
        shard_times = []
        for i in range(SHARDS):
            t, _, _, _ = timed([*common, "--data", str(work / "capture"), "--shard", f"{i}/{SHARDS}",
                             "--partial", str(work / f"part-{i}.json")])
            shard_times.append(t)
        merge_time, peak_all, merged_code, _ = timed(
            [*common, "--merge", *(str(work / f"part-{i}.json") for i in range(SHARDS)), "--out", str(work / "merged")])
        one = json.loads((work / "one" / "drift.json").read_text())
        merged = json.loads((work / "merged" / "drift.json").read_text())
        means = max(abs(one["features"][n].pop("mean", 0.0) - merged["features"][n].pop("mean", 0.0))
                    for n in one["features"])
        same = one["features"] == merged["features"] and one["rows"] == merged["rows"] and code == merged_code
        print(f"{SHARDS} shards: slowest {max(shard_times):.1f} s, sum {sum(shard_times):.1f} s; "
              f"merge {merge_time:.1f} s; "
              f"peak RSS of any process {peak_all:.0f} MB")
        print(f"merged report == one-pass report: {same} (means differ by at most {means:.1e}, float rounding)")
        print("load average after (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        if not same:
            raise SystemExit("the merge of the shards differs from the single pass")


if __name__ == "__main__":
    main()
