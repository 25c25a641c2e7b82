"""Inference server vs `mlflow models serve`, on the same 100-tree random-forest pipeline.

Both run with one worker on 127.0.0.1 only. For each: seconds from process start to a healthy
`/ping`, then `wrk` (Debian package) with 8 connections for a bounded 10 s sending a 1-row JSON
request; requests/s, p50 and p99 are printed with the ratio. Predictions of both servers on the
same 200 rows must be identical. Needs the ml extra and wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.config import load  # noqa: E402
from training.data import generate_churn, validate  # noqa: E402
from training.model import build_pipeline  # noqa: E402
from training.train import trusted_types  # noqa: E402

HOST = "127.0.0.1"  # never anything else
CONNECTIONS, THREADS, SECONDS = 8, 2, 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_model(directory: Path) -> list[dict]:
    import mlflow
    from mlflow.models import infer_signature

    config = replace(load(), family="random_forest")
    frame = validate(generate_churn(5000), config, "sample")
    x = frame[config.features]
    model = build_pipeline(config, {"n_estimators": 100}).fit(x, frame[config.target])
    mlflow.sklearn.save_model(model, directory, signature=infer_signature(x.head(5), model.predict(x.head(5))),
                              input_example=x.head(5), skops_trusted_types=trusted_types(model))
    return json.loads(x.head(200).to_json(orient="records"))


def post(port: int, body: dict) -> dict:
    request = urllib.request.Request(f"http://{HOST}:{port}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def start(command: list[str], port: int, log: Path,
          extra_env: dict[str, str]) -> tuple[subprocess.Popen, float, float]:
    """The process, seconds to a healthy /ping, and when it was started."""
    began = time.perf_counter()
    # mlflow execs `uvicorn` from PATH: the venv's bin comes first.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           **extra_env}
    proc = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = began + 120
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/ping", timeout=1) as answer:
                if answer.status == 200:
                    return proc, time.perf_counter() - began, began
        except OSError:
            time.sleep(0.02)
        if proc.poll() is not None:
            raise SystemExit(f"{command[0]} exited: {log.read_text()[-2000:]}")
    proc.kill()
    raise SystemExit(f"{' '.join(command)} did not become healthy in 120 s")


def settle(port: int, began: float) -> tuple[str, float]:
    """Wait until a server that compiles in the background is done: its /ping names the final engine."""
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        with urllib.request.urlopen(f"http://{HOST}:{port}/ping", timeout=5) as answer:
            try:
                state = json.loads(answer.read())
            except ValueError:  # mlflow's /ping answers a bare newline: nothing compiles there
                state = {}
        if not state.get("compiling"):
            return state.get("engine") or "-", time.perf_counter() - began
        time.sleep(0.1)
    return "scikit-learn", time.perf_counter() - began


def wrk(port: int, body: str, script_dir: Path) -> dict[str, float]:
    script = script_dir / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(body)}\n")
    out = subprocess.run(["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "-s", str(script),
                          f"http://{HOST}:{port}/invocations"], capture_output=True, text=True, timeout=SECONDS + 30,
                         check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": ms("50%"), "p99": ms("99%"), "errors": float(errors.group(1)) if errors else 0.0}


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        rows = make_model(model_dir)
        body = json.dumps({"dataframe_records": rows[:1]})
        results, starts, answers, engines = {}, {}, {}, {}
        servers = {
            "mlflow models serve": lambda p: [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
                                              str(model_dir), "-h", HOST, "-p", str(p), "-w", "1",
                                              "--env-manager", "local"],
            "serving (this repo)": lambda p: [sys.executable, "-m", "serving", "serve", "--model", str(model_dir),
                                              "--host", HOST, "--port", str(p)],
        }
        servers["serving, sklearn only"] = servers["serving (this repo)"]  # the fallback engine
        envs = {"serving, sklearn only": {"SERVING_ENGINE": "sklearn"}}
        for name, command in servers.items():
            port = free_port()
            proc, starts[name], began = start(command(port), port, Path(tmp) / f"{port}.log", envs.get(name, {}))
            try:
                engines[name] = settle(port, began)
                answers[name] = post(port, {"dataframe_records": rows})["predictions"]
                post(port, {"dataframe_records": rows[:1]})  # warm
                results[name] = wrk(port, body, Path(tmp))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    ours, theirs = results["serving (this repo)"], results["mlflow models serve"]
    print(f"1-row JSON, {CONNECTIONS} connections, {SECONDS} s each, 1 worker, 100-tree random forest pipeline")
    print(f"{'server':<22} {'healthy':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  engine (ready at)")
    for name, r in results.items():
        engine, ready = engines[name]
        print(f"{name:<22} {starts[name]:>7.2f}s {r['rps']:>9.1f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>8.0f}"
              f"  {engine} ({ready:.1f} s)")
    print(f"ratio req/s: {ours['rps'] / theirs['rps']:.1f}x (scikit-learn fallback alone: "
          f"{results['serving, sklearn only']['rps'] / theirs['rps']:.1f}x); predictions on 200 rows identical: "
          f"{answers['serving (this repo)'] == answers['mlflow models serve'] == answers['serving, sklearn only']}")
    print("targets: >= 10x req/s, p99 < 20 ms, healthy < 2 s, identical predictions")


if __name__ == "__main__":
    main()
