"""Wall time and peak memory of `mlops synth --all` on the example blueprints.

Each run is a fresh process (as a user or CI runs it) writing into a fresh output directory, so
start-up, blueprint loading, rendering and writing are all counted. Prints the median of N runs.
Target: under 0.3 s and 100 MB for 3 namespaces x 4 templates.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15


def one_run(out: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mlops_dsl.cli", "synth", "--all", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, _, usage = os.wait4(proc.pid, 0)  # the child's own peak RSS
    elapsed = time.perf_counter() - start
    if proc.stderr and (err := proc.stderr.read()):
        raise SystemExit(err.decode())
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def main() -> None:
    times, rss = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(RUNS):
            t, m = one_run(Path(tmp) / f"run{i}")
            times.append(t)
            rss.append(m)
        stacks = sum(len(json.loads(p.read_text())["stacks"]) for p in (Path(tmp) / "run0").glob("*/*/stacks.json"))
        namespaces = len(list((Path(tmp) / "run0").iterdir()))
    print(f"mlops synth --all: {stacks} stacks in {namespaces} namespaces, {RUNS} runs")
    print(f"  wall time  median {statistics.median(times) * 1000:.0f} ms  (min {min(times) * 1000:.0f}, "
          f"max {max(times) * 1000:.0f})")
    print(f"  peak RSS   median {statistics.median(rss):.1f} MB  (max {max(rss):.1f})")
    print("  target     < 300 ms and < 100 MB for 3 namespaces x 4 templates")


if __name__ == "__main__":
    main()
