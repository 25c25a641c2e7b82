"""Inference server vs `mlflow models serve`, on the same 100-tree random-forest pipeline, in one run.

Everything listens on 127.0.0.1 only, and every load is bounded in time. For each server: seconds
from process start to a healthy `/ping`, then `wrk` (Debian package) with 8 connections for 10 s
sending a 1-row JSON request; requests/s, p50 and p99. The servers:

* `mlflow models serve` with one worker;
* this server with one worker, with two (SAGEMAKER_MODEL_SERVER_WORKERS), and with scikit-learn only;
* the ceiling: a bare ASGI app on uvicorn with its own protocol (httptools, uvloop, one worker, no
  access log) that reads the body and answers a constant one. This server runs on the same uvicorn
  with serving/protocol.py in place of uvicorn's, which answers a scoring request without ASGI.

Then `/ping`'s latency (one worker) while 6 MB JSON bodies are parsed and scored. Predictions of
the servers on the same 200 rows must be identical. For the one-worker server and the ceiling, the
CPU each request cost (the process's user + system time over the `wrk` run, from /proc), and of
this server's, what its model calls took (their thread CPU time, counted on /ping): what is left of
the ceiling's 0.7 budget for everything else a request needs. Needs the ml extra and wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # never anything else
CONNECTIONS, THREADS, SECONDS = 8, 2, 10
PING_SECONDS = 8
CEILING_BODY = b'{"predictions": [0], "probabilities": [[0.75, 0.25]]}'


async def ceiling(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The bare ASGI app: read the request, answer a constant body of the same size as ours."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(CEILING_BODY))]})
    await send({"type": "http.response.body", "body": CEILING_BODY})


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def make_model(directory: Path) -> list[dict]:
    import mlflow
    from mlflow.models import infer_signature

    sys.path.insert(0, str(ROOT))
    from training.config import load
    from training.data import generate_churn, validate
    from training.model import build_pipeline
    from training.train import trusted_types

    config = replace(load(), family="random_forest")
    frame = validate(generate_churn(5000), config, "sample")
    x = frame[config.features]
    model = build_pipeline(config, {"n_estimators": 100}).fit(x, frame[config.target])
    mlflow.sklearn.save_model(model, directory, signature=infer_signature(x.head(5), model.predict(x.head(5))),
                              input_example=x.head(5), skops_trusted_types=trusted_types(model))
    return json.loads(x.head(200).to_json(orient="records"))


def post(port: int, body: bytes, timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://{HOST}:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def start(command: list[str], port: int, log: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen, float, float]:
    """The process, seconds to a healthy /ping, and when it was started."""
    began = time.perf_counter()
    # mlflow execs `uvicorn` from PATH: the venv's bin comes first.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           **extra_env}
    proc = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
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


def settle(port: int, began: float, log: Path, workers: int) -> tuple[str, float]:
    """Wait until every worker is healthy and done compiling in the background."""
    deadline = time.perf_counter() + 90
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/ping", timeout=5) as answer:
                try:
                    state = json.loads(answer.read())
                except ValueError:  # mlflow's /ping answers a bare newline: nothing compiles there
                    return "-", time.perf_counter() - began
        except urllib.error.HTTPError:  # another worker still loading: 503
            time.sleep(0.1)
            continue
        done = len(re.findall(r"compiled path verified|serving with scikit-learn \(", log.read_text()))
        if not state.get("compiling") and (done >= workers or state.get("engine") == "scikit-learn"):
            return state.get("engine") or "-", time.perf_counter() - began
        time.sleep(0.1)
    return "unsettled", time.perf_counter() - began


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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def model_usage(port: int) -> dict[str, float]:
    """The model calls' counters on this server's /ping (absent on others: zeros)."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/ping", timeout=5) as answer:
        try:
            state = json.loads(answer.read())
        except ValueError:
            state = {}
    return {key: float(state.get(key, 0)) for key in ("model_calls", "model_rows", "model_cpu_seconds")}


def measured(port: int, pid: int, body: str, script_dir: Path) -> dict[str, float]:
    """wrk's figures, plus the server process's CPU microseconds per request and its model calls'."""
    cpu, usage = cpu_seconds(pid), model_usage(port)
    result = wrk(port, body, script_dir)
    cpu_after, usage_after = cpu_seconds(pid), model_usage(port)
    requests = result["rps"] * SECONDS
    if cpu is not None and cpu_after is not None and requests:
        result["cpu_us"] = (cpu_after - cpu) / requests * 1e6
    calls = usage_after["model_calls"] - usage["model_calls"]
    if calls and requests:
        result["model_us"] = (usage_after["model_cpu_seconds"] - usage["model_cpu_seconds"]) / requests * 1e6
        result["rows_per_call"] = (usage_after["model_rows"] - usage["model_rows"]) / calls
    return result


def ping_while_parsing(port: int, rows: list[dict]) -> dict[str, float]:
    """/ping latencies (ms) while one client keeps posting bodies just under 6 MB."""
    record = json.dumps(rows[0]).encode()
    count = (6 * 1024 * 1024 - 100) // (len(record) + 2)
    body = b'{"dataframe_records": [' + b", ".join([record] * count) + b"]}"
    stop, statuses = threading.Event(), []

    def load() -> None:
        while not stop.is_set():
            statuses.append(post(port, body, timeout=60)[0])

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(0.3)
    latencies = []
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    deadline = time.perf_counter() + PING_SECONDS
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        conn.request("GET", "/ping")
        conn.getresponse().read()
        latencies.append((time.perf_counter() - began) * 1000)
        time.sleep(0.005)
    conn.close()
    stop.set()
    thread.join()
    latencies.sort()
    return {"bytes": len(body), "bodies": len(statuses), "ok": statuses.count(200), "pings": len(latencies),
            "p50": statistics.median(latencies), "p99": latencies[int(len(latencies) * 0.99) - 1],
            "max": latencies[-1]}


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed, so nothing was measured: apt-get install wrk")
    ours = [sys.executable, "-m", "serving", "serve"]
    load_before = os.getloadavg()  # the machine is shared: the figures are only read with its load
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        rows = make_model(model_dir)
        body = json.dumps({"dataframe_records": rows[:1]})
        servers: dict[str, tuple[Any, dict[str, str], int]] = {
            "mlflow models serve": (lambda p: [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
                                               str(model_dir), "-h", HOST, "-p", str(p), "-w", "1",
                                               "--env-manager", "local"], {}, 1),
            "this server": (lambda p: [*ours, "--model", str(model_dir), "--host", HOST, "--port", str(p)],
                            {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, 1),
            "this server, 2 workers": (lambda p: [*ours, "--model", str(model_dir), "--host", HOST, "--port", str(p)],
                                       {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}, 2),
            "this server, sklearn only": (lambda p: [*ours, "--model", str(model_dir), "--host", HOST, "--port",
                                                     str(p)],
                                          {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "SERVING_ENGINE": "sklearn"}, 1),
            "ceiling: bare ASGI app": (lambda p: [sys.executable, "-m", "uvicorn", "benchmarks.serve:ceiling",
                                                  "--host", HOST, "--port", str(p), "--no-access-log",
                                                  "--log-level", "warning", "--lifespan", "off"], {}, 1),
        }
        results, starts, answers, engines = {}, {}, {}, {}
        ping: dict[str, float] = {}
        for name, (command, env, workers) in servers.items():
            port = free_port()
            log = Path(tmp) / f"{port}.log"
            proc, starts[name], began = start(command(port), port, log, env)
            try:
                engines[name] = settle(port, began, log, workers) if "ceiling" not in name else ("-", starts[name])
                if "ceiling" not in name:
                    answers[name] = json.loads(post(port, json.dumps({"dataframe_records": rows}).encode())[1]
                                               )["predictions"]
                    post(port, body.encode())  # warm
                results[name] = (measured(port, proc.pid, body, Path(tmp)) if workers == 1 and "mlflow" not in name
                                 else wrk(port, body, Path(tmp)))  # mlflow's CLI and uvicorn's supervisor fork
                if name == "this server":
                    ping = ping_while_parsing(port, rows)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    report(results, starts, engines, answers, ping)
    print(f"load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; after: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")


def report(results: dict[str, dict[str, float]], starts: dict[str, float], engines: dict[str, tuple[str, float]],
           answers: dict[str, list], ping: dict[str, float]) -> None:
    one, two = results["this server"], results["this server, 2 workers"]
    mlflow_, bare = results["mlflow models serve"], results["ceiling: bare ASGI app"]
    print(f"1-row JSON, wrk {CONNECTIONS} connections x {SECONDS} s, 100-tree random-forest pipeline, "
          f"{os.cpu_count()} cores (shared: figures are noisy)")
    print(f"{'server':<27} {'healthy':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  engine (ready at)")
    for name, r in results.items():
        engine, ready = engines[name]
        print(f"{name:<27} {starts[name]:>7.2f}s {r['rps']:>9.1f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
              f"{r['errors']:>8.0f}  {engine} ({ready:.1f} s)")
    same = len({json.dumps(a) for a in answers.values()}) == 1
    print(f"req/s vs mlflow: {one['rps'] / mlflow_['rps']:.1f}x (goal >= 100x), p99 {one['p99']:.2f} ms (goal < 5 ms); "
          f"scikit-learn only: {results['this server, sklearn only']['rps'] / mlflow_['rps']:.1f}x")
    print(f"2 workers over 1: {two['rps'] / one['rps']:.2f}x")
    print(f"share of the ceiling (bare ASGI app, 1 worker): {one['rps'] / bare['rps']:.2f} (goal >= 0.7)")
    if "cpu_us" in one and "cpu_us" in bare and "model_us" in one:
        budget = bare["cpu_us"] / 0.7
        print(f"CPU per request: this server {one['cpu_us']:.1f} us, of which its model calls "
              f"{one['model_us']:.1f} us ({one['rows_per_call']:.1f} rows per call); "
              f"the ceiling {bare['cpu_us']:.1f} us. "
              f"At 0.7 of the ceiling a request may cost {budget:.1f} us: the model's calls leave "
              f"{budget - one['model_us']:.1f} us to read, check, answer and log it, where the ceiling takes "
              f"{bare['cpu_us']:.1f} us to answer a constant")
    if ping:
        print(f"/ping while {ping['bytes'] / 1e6:.1f} MB JSON bodies are parsed ({ping['bodies']:.0f} bodies, "
              f"{ping['ok']:.0f} answered 200; {ping['pings']:.0f} pings): p50 {ping['p50']:.1f} ms, "
              f"p99 {ping['p99']:.1f} ms, max {ping['max']:.1f} ms (goal < 50 ms)")
    print(f"predictions on 200 rows identical across servers: {same}")


if __name__ == "__main__":
    main()
