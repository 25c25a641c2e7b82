"""Training at scale on one machine: `python -m training train` on generated data of 20 features.

Runs, in one go and each in a fresh process as a user would run it: the old training code
(`git show OLD:training/...` copied into a temporary directory; OLD is a268046 by default, the
last commit before the training code was made to scale; `--old-ref HEAD` compares with the last
commit) at 100,000 rows, and the working tree's code at 100,000 and 1,000,000 rows. Each trains with its
own shipped search settings (family, space, n_iter, cv_folds) and only the data section replaced,
records to a throw-away MLflow store, and is measured for wall time, rows per second and peak RSS
of its whole process tree (worker processes included), sampled from /proc.

Goal for 1,000,000 rows on the 2-core development machine: < 10 minutes and < 4 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
NUMERIC, CATEGORICAL = 15, 5
GOAL_SECONDS, GOAL_BYTES = 600, 4 * 1024 ** 3
OLD_REF = "a268046"  # RandomizedSearchCV over processes, gradient_boosting, text columns


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """An id, 15 numeric and 5 categorical features (8 levels), a few missing values, and a binary
    target from a logistic model with one interaction."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"id": np.char.add("R", np.arange(rows).astype(str))}
    logit = np.full(rows, -1.0)
    for i in range(NUMERIC):
        x = rng.normal(0, 1, rows)
        logit += x * 0.6 / (1 + i)
        data[f"x{i}"] = np.where(rng.random(rows) < 0.01, np.nan, np.round(x, 4))
    levels = np.array([f"v{k}" for k in range(8)], dtype=object)
    for j in range(CATEGORICAL):
        codes = rng.integers(0, 8, rows)
        logit += 0.3 * (codes == j)
        data[f"c{j}"] = levels[codes]
    logit += 0.3 * np.nan_to_num(data["x0"]) * np.nan_to_num(data["x1"])  # type: ignore[arg-type]
    data["y"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(data)


def config_for(code: Path, directory: Path) -> Path:
    """The code's own config.yaml with the data section of the generated data and no latency gate
    (the gates are not what is measured)."""
    doc = yaml.safe_load((code / "training" / "config.yaml").read_text())
    doc["data"] = {"target": "y", "id_column": "id", "numeric": [f"x{i}" for i in range(NUMERIC)],
                   "categorical": [f"c{j}" for j in range(CATEGORICAL)]}
    doc["gates"] = {"min_roc_auc": 0.5}
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def old_code(ref: str, directory: Path) -> Path:
    """The training package as of `ref`, file by file from git, in `directory`/training."""
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{ref}:training"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    (directory / "training").mkdir(parents=True)
    for name in names:
        blob = subprocess.run(["git", "show", f"{ref}:training/{name}"], cwd=ROOT, check=True,
                              capture_output=True).stdout
        (directory / "training" / name).write_bytes(blob)
    return directory


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (loky workers, for one)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(children.get(current, []))
    return total


def _stop_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (the search's worker processes)."""
    import signal

    found = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=False).stdout.split()
    parents = dict(zip(map(int, found[::2]), map(int, found[1::2]), strict=True))
    tree, changed = {pid}, True
    while changed:
        new = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= new
        changed = bool(new)
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def run(label: str, code: Path, data: Path, rows: int, work: Path, timeout: float) -> dict[str, float | str]:
    """One `train` process, measured; stopped after `timeout` seconds, which is a result too."""
    work.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(code), "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    env.pop("SM_ROOT", None)
    command = [sys.executable, "-m", "training", "train", "--data", str(data), "--config",
               str(config_for(code, work))]
    start = time.perf_counter()
    with (work / "stderr.txt").open("w") as errors:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        peak = 0
        while process.poll() is None and time.perf_counter() - start < timeout:
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.2)
        stopped = process.poll() is None
        if stopped:
            _stop_tree(process.pid)
            process.wait()
        output = process.stdout.read() if process.stdout else ""
    seconds = time.perf_counter() - start
    if stopped:
        fits = (output + (work / "stderr.txt").read_text()).count("[CV] END")  # RandomizedSearchCV's verbose lines
        return {"label": label, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
                "peak_mb": peak / 2 ** 20, "roc_auc": f"stopped after {seconds / 60:.0f} min, {fits} fits done"}
    if process.returncode != 0:
        tail = (work / "stderr.txt").read_text()[-2000:]
        raise SystemExit(f"{label}: exit {process.returncode}\n{output}\n{tail}")
    auc = next((part.split()[1] for line in output.splitlines() for part in line.split(", ")
                if part.startswith("roc_auc ")), "?")
    return {"label": label, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "peak_mb": peak / 2 ** 20,
            "roc_auc": auc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-ref", default=OLD_REF, help="git revision of the code to compare with")
    parser.add_argument("--sizes", default="100000,1000000", help="row counts for the new code")
    parser.add_argument("--old-rows", type=int, default=100_000, help="row count for the old code (0: skip)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds after which a run is stopped")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        data: dict[int, Path] = {}
        for rows in sorted({*sizes, *([args.old_rows] if args.old_rows else [])}):
            data[rows] = base / f"train-{rows}.csv"
            frame(rows).to_csv(data[rows], index=False)
            size = data[rows].stat().st_size / 2 ** 20
            print(f"generated {rows} rows x {NUMERIC + CATEGORICAL} features: {size:.0f} MB CSV", file=sys.stderr,
                  flush=True)
        for rows in sizes:  # the new code first: the old one takes longest
            results.append(run("working tree (new)", ROOT, data[rows], rows, base / f"run-new-{rows}", args.timeout))
            print(results[-1], file=sys.stderr, flush=True)
        if args.old_rows:
            old = old_code(args.old_ref, base / "old")
            results.insert(0, run(f"{args.old_ref[:12]} (old)", old, data[args.old_rows], args.old_rows,
                                  base / "run-old", args.timeout))
            print(results[0], file=sys.stderr, flush=True)
    print(f"{'code':<22} {'rows':>9} {'seconds':>9} {'rows/s':>9} {'peak RSS':>10} {'ROC AUC':>8}")
    for r in results:
        print(f"{r['label']:<22} {r['rows']:>9} {r['seconds']:>9.1f} {r['rows_per_s']:>9.0f} "
              f"{r['peak_mb']:>7.0f} MB {r['roc_auc']:>8}")
    biggest = [r for r in results if r["label"].startswith("working") and r["rows"] == 1_000_000]
    for r in biggest:
        ok = r["seconds"] < GOAL_SECONDS and r["peak_mb"] * 2 ** 20 < GOAL_BYTES
        print(f"goal for 1,000,000 rows (< {GOAL_SECONDS / 60:.0f} min, < {GOAL_BYTES / 2**30:.0f} GB): "
              f"{'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
