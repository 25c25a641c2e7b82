"""Native writers vs the cdktn engine (CDK Terrain): wall time and peak memory of synthesizing every stack.

Both run as fresh `mlops synth` processes over the example blueprints in every namespace, in one
run of this script, alternating, each into a fresh output directory. Memory is the peak of the
whole process tree's resident set, sampled every 10 ms (the cdktn engine's Node process, which
jsii starts, included). Prints medians and the ratio.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3


def _tree_rss_mb(pid: int) -> float:
    """Resident set of a process and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total / 1024


def one_run(engine: str, out: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mlops_dsl.cli", "synth", "--engine", engine, "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{engine} synth failed:\n{err}")
    return elapsed, peak


def main() -> None:
    results: dict[str, list[tuple[float, float]]] = {"native": [], "cdktn": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(RUNS):
            for engine in results:
                results[engine].append(one_run(engine, Path(tmp) / f"{engine}{i}"))
        stacks = len(list((Path(tmp) / "cdktn0").glob("*/*/*/cdk.tf.json")))
    print(f"mlops synth, every namespace: {stacks} stacks, {RUNS} runs of each engine, alternating")
    print(f"{'engine':<8} {'wall median':>12} {'min':>8} {'max':>8} {'peak RSS median':>16} {'max':>8}")
    medians = {}
    for engine, runs in results.items():
        times, rss = [t for t, _ in runs], [m for _, m in runs]
        medians[engine] = (statistics.median(times), statistics.median(rss))
        print(f"{engine:<8} {medians[engine][0]:>11.2f}s {min(times):>7.2f}s {max(times):>7.2f}s "
              f"{medians[engine][1]:>14.0f}MB {max(rss):>6.0f}MB")
    print(f"cdktn / native: {medians['cdktn'][0] / medians['native'][0]:.0f}x the time, "
          f"{medians['cdktn'][1] / medians['native'][1]:.0f}x the memory")


if __name__ == "__main__":
    main()
