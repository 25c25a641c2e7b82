"""The inference server: formats, strict input, health, the compiled path, and real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow", reason="the ml extra is not installed")
pytest.importorskip("onnxruntime", reason="the ml extra is not installed")

from serving.app import Server  # noqa: E402
from serving.compiled import CompiledPipeline, Unsupported, compile_verified  # noqa: E402
from serving.model import load  # noqa: E402
from training.config import load as load_config  # noqa: E402
from training.data import generate_churn, validate  # noqa: E402
from training.model import build_pipeline  # noqa: E402
from training.train import trusted_types  # noqa: E402

from .conftest import ROOT, check_image  # noqa: E402

CONFIG = replace(load_config(), family="random_forest")
FEATURES = CONFIG.features


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return save_trained(tmp_path_factory.mktemp("model") / "model")


def save_trained(directory: Path):
    """A small random-forest pipeline saved as MLflow saves it, and the rows it was trained on."""
    from mlflow.models import infer_signature

    frame = validate(generate_churn(1500, seed=8), CONFIG, "sample")
    x = frame[FEATURES]
    model = build_pipeline(CONFIG, {"n_estimators": 20}).fit(x, frame[CONFIG.target])
    mlflow.sklearn.save_model(model, directory, signature=infer_signature(x.head(5), model.predict(x.head(5))),
                              input_example=x.head(5), skops_trusted_types=trusted_types(model))
    return model, directory, x


def _run(coro):
    return asyncio.run(coro)


async def _call(server: Server, method: str, path: str, body: bytes = b"", content_type: str = "application/json",
                accept: str = "application/json") -> tuple[int, bytes, str]:
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    headers = [(b"content-type", content_type.encode()), (b"accept", accept.encode()),
               (b"content-length", str(len(body)).encode())]
    await server({"type": "http", "method": method, "path": path, "headers": headers}, receive, send)
    content = dict(sent[0]["headers"])[b"content-type"].decode()
    return sent[0]["status"], sent[1]["body"], content


async def _ready(directory: Path, **env: str) -> Server:
    for key, value in env.items():
        os.environ[key] = value
    try:
        server = Server(str(directory))
    finally:
        for key in env:
            del os.environ[key]
    await server.startup()
    return server


def _records(x, n: int) -> list[dict]:
    return json.loads(x.head(n).to_json(orient="records"))


def test_ping_is_healthy_only_after_the_warm_up_prediction(trained) -> None:
    _, directory, _ = trained

    async def scenario():
        server = Server(str(directory))
        before = await _call(server, "GET", "/ping")
        scoring = await _call(server, "POST", "/invocations", b'{"inputs": []}')
        await server.startup()
        after = await _call(server, "GET", "/ping")
        return before, scoring, after

    before, scoring, after = _run(scenario())
    assert before[0] == 503 and json.loads(before[1]) == {"status": "loading"}
    assert scoring[0] == 503
    assert after[0] == 200 and json.loads(after[1]) == {
        "status": "healthy", "engine": "onnxruntime", "compiling": False, "unseen_categories": {},
        "model_calls": 0, "model_rows": 0, "model_cpu_seconds": 0.0}  # the warm-up is not a request's call


def test_ping_counts_the_model_calls_and_the_rows_they_scored(trained) -> None:
    """Requests that arrive together share a model call: /ping's counts show how well they batch,
    and the calls' CPU seconds the model's share of the server's CPU (benchmarks/serve.py reads them)."""
    _, directory, x = trained

    async def scenario():
        server = await _ready(directory)
        bodies = [json.dumps({"dataframe_records": _records(x, n)}).encode() for n in (1, 2, 3, 4)]
        answers = await asyncio.gather(*(_call(server, "POST", "/invocations", body) for body in bodies))
        alone = await _call(server, "POST", "/invocations", bodies[0])
        return answers, alone, json.loads((await _call(server, "GET", "/ping"))[1])

    answers, alone, ping = _run(scenario())
    assert [a[0] for a in answers] == [200] * 4 and alone[0] == 200
    assert ping["model_rows"] == 1 + 2 + 3 + 4 + 1
    assert 2 <= ping["model_calls"] < 5  # the four concurrent requests joined; the lone one is a call of its own
    assert ping["model_cpu_seconds"] > 0


def test_an_unloadable_model_is_reported_on_ping(tmp_path: Path) -> None:
    async def scenario():
        server = Server(str(tmp_path))
        await server.startup()
        return await _call(server, "GET", "/ping")

    status, body, _ = _run(scenario())
    assert status == 503 and "no MLmodel file" in json.loads(body)["error"]


def _bodies(x) -> dict[str, tuple[bytes, str]]:
    rows = _records(x, 3)
    lists = [[r[c] for c in FEATURES] for r in rows]
    csv_rows = "\n".join(",".join(str(v) for v in row) for row in lists)
    return {
        "dataframe_split": (json.dumps({"dataframe_split": {"columns": FEATURES, "data": lists}}).encode(),
                            "application/json"),
        "dataframe_records": (json.dumps({"dataframe_records": rows}).encode(), "application/json"),
        "instances": (json.dumps({"instances": rows}).encode(), "application/json"),
        "instances as lists": (json.dumps({"instances": lists}).encode(), "application/json"),
        "inputs (columnar)": (json.dumps({"inputs": {c: [r[c] for r in rows] for c in FEATURES}}).encode(),
                              "application/json; charset=utf-8"),
        "csv": (csv_rows.encode(), "text/csv"),
        "csv with header": ((",".join(FEATURES) + "\n" + csv_rows).encode(), "text/csv"),
    }


def test_every_format_gives_the_in_process_predictions(trained) -> None:
    model, directory, x = trained
    expected = model.predict(x.head(3)).tolist()
    proba = model.predict_proba(x.head(3))

    async def scenario():
        server = await _ready(directory)
        return {name: await _call(server, "POST", "/invocations", body, kind)
                for name, (body, kind) in _bodies(x).items()}

    for name, (status, body, content) in _run(scenario()).items():
        assert status == 200, (name, body)
        answer = json.loads(body)
        assert content == "application/json" and answer["predictions"] == expected, name
        assert np.allclose(answer["probabilities"], proba, atol=1e-5), name


def test_csv_answers_when_accept_asks_for_it(trained) -> None:
    model, directory, x = trained
    body, kind = _bodies(x)["csv"]

    async def scenario():
        server = await _ready(directory)
        return await _call(server, "POST", "/invocations", body, kind, accept="text/csv")

    status, answer, content = _run(scenario())
    assert status == 200 and content == "text/csv"
    lines = answer.decode().splitlines()
    assert [int(line.split(",")[0]) for line in lines] == model.predict(x.head(3)).tolist()
    assert len(lines[0].split(",")) == 3  # label, then one probability per class


BAD = [
    (b'{"dataframe_records": [', "application/json", 400, "malformed JSON"),
    (b"", "application/json", 400, "the request body is empty"),
    (b'{"columns": []}', "application/json", 400, "exactly one of dataframe_split, dataframe_records"),
    (b'{"dataframe_records": [{"tenure_months": 3}]}', "application/json", 400, "missing column 'monthly_charges'"),
    (b"1,2,3\n", "text/csv", 400, "CSV row 1 has 3 fields; the model takes 9"),
    (b"<xml/>", "application/xml", 415, "unsupported content type 'application/xml'"),
]


@pytest.mark.parametrize(("body", "kind", "status", "message"), BAD)
def test_bad_requests_are_4xx_naming_the_problem(trained, body: bytes, kind: str, status: int, message: str) -> None:
    _, directory, x = trained

    async def scenario():
        server = await _ready(directory)
        bad = await _call(server, "POST", "/invocations", body, kind)
        good = await _call(server, "POST", "/invocations", *_bodies(x)["dataframe_records"])
        return bad, good

    (got, answer, _), good = _run(scenario())
    error = json.loads(answer)
    assert got == status and message in error["message"] and error["error_code"] == "BAD_REQUEST"
    assert good[0] == 200  # and the server keeps serving


def test_type_errors_name_column_and_row_and_unexpected_columns_are_refused(trained) -> None:
    _, directory, x = trained
    rows = _records(x, 2)
    wrong = [dict(rows[0]), {**rows[1], "monthly_charges": "lots"}]
    extra = [{**rows[0], "favourite_colour": "blue"}]
    boolean = [{**rows[0], "senior_citizen": True}]
    object_for_text = [{**rows[0], "contract": {"a": 1}}]

    async def scenario():
        server = await _ready(directory)
        return [await _call(server, "POST", "/invocations", json.dumps({"dataframe_records": b}).encode())
                for b in (wrong, extra, boolean, object_for_text)]

    answers = [(status, json.loads(body)["message"]) for status, body, _ in _run(scenario())]
    assert answers[0] == (400, "column 'monthly_charges', row 2: expected a number; got 'lots'")
    assert answers[1][0] == 400 and "unexpected column 'favourite_colour'" in answers[1][1]
    assert answers[2] == (400, "column 'senior_citizen', row 1: expected a number; got True")
    assert answers[3] == (400, "column 'contract', row 1: expected a string; got {'a': 1}")


def test_missing_values_are_imputed_not_refused(trained) -> None:
    _, directory, x = trained
    row = {**_records(x, 1)[0], "monthly_charges": None, "contract": None}

    async def scenario():
        server = await _ready(directory)
        return await _call(server, "POST", "/invocations", json.dumps({"dataframe_records": [row]}).encode())

    status, body, _ = _run(scenario())
    assert status == 200 and len(json.loads(body)["predictions"]) == 1


def test_routes_methods_and_azure_ml_routes(trained) -> None:
    _, directory, x = trained

    async def scenario():
        server = await _ready(directory, LIVENESS_ROUTE="/live", READINESS_ROUTE="/ready", SCORING_ROUTE="/score")
        return (await _call(server, "GET", "/live"), await _call(server, "GET", "/ready"),
                await _call(server, "POST", "/score", *_bodies(x)["instances"]),
                await _call(server, "GET", "/score"), await _call(server, "POST", "/invocations", b"{}"))

    live, ready, score, wrong_method, old_route = _run(scenario())
    assert live[0] == ready[0] == score[0] == 200
    assert wrong_method[0] == 405 and old_route[0] == 404


def test_the_compiled_path_matches_scikit_learn_and_declines_other_shapes(trained) -> None:
    model, directory, x = trained
    loaded = load(str(directory))
    rows = [list(r) for r in x.head(300).itertuples(index=False)]
    rows.append([np.nan] * len(FEATURES))
    compiled = compile_verified(model, loaded.columns, loaded.predict_sklearn, loaded.example)
    labels, proba = compiled.predict(rows)
    ref_labels, ref_proba = loaded.predict_sklearn(rows)
    assert np.array_equal(labels, ref_labels) and np.abs(proba - ref_proba).max() < 1e-5
    with pytest.raises(Unsupported):
        CompiledPipeline(model.named_steps["classifier"], loaded.columns)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raw_http(port: int, request: bytes) -> bytes:
    """The status line the server answers to bytes no HTTP library would send."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n")[0]


def test_over_real_http_as_sagemaker_starts_it(trained, tmp_path: Path) -> None:
    """Two worker processes (SAGEMAKER_MODEL_SERVER_WORKERS), each loading the model; request ids
    in the access log; bodies no client library would send are 4xx and the server keeps serving."""
    model, directory, x = trained
    port = _free_port()
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port), "MODEL_URI": str(directory), "HOST": "127.0.0.1",
           "SAGEMAKER_MODEL_SERVER_WORKERS": "2", "MAX_BODY_BYTES": str(1024 * 1024)}
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "serving", "serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(re.findall(r"compiled path verified", log.read_text())) < 2:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        ready = re.findall(r"ready in [\d.]+ s \(pid (\d+)\)", log.read_text())
        assert len(set(ready)) == 2, log.read_text()  # two processes, each with the model
        rows = _records(x, 200)
        request = urllib.request.Request(f"{base}/invocations", json.dumps({"dataframe_records": rows}).encode(),
                                         {"Content-Type": "application/json", "X-Request-Id": "real-http-1"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.headers["X-Request-Id"] == "real-http-1"
            assert json.loads(answer.read())["predictions"] == model.predict(x.head(200)).tolist()
        big = urllib.request.Request(f"{base}/invocations", b"x" * (1024 * 1024 + 1), {"Content-Type": "text/csv"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(big, timeout=10)
        assert err.value.code == 413 and json.loads(err.value.read())["error_code"] == "BAD_REQUEST"
        chunk = b"1,2,3\n" * 30000
        chunked = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 7
                   + b"0\r\n\r\n")
        assert _raw_http(port, chunked) == b"HTTP/1.1 413 Request Entity Too Large"
        assert _raw_http(port, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n") \
            .startswith(b"HTTP/1.1 400")
        assert _raw_http(port, b"\x00\xffGARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
        head = urllib.request.Request(f"{base}/ping", method="HEAD")
        with urllib.request.urlopen(head, timeout=10) as answer:
            assert answer.status == 200 and answer.read() == b""
        with urllib.request.urlopen(request, timeout=10) as answer:  # still serving
            assert answer.status == 200
        time.sleep(0.2)
        assert re.search(r"serving\.access INFO real-http-1 POST /invocations 200 [\d.]+ms", log.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_image_is_pinned_and_hadolint_clean() -> None:
    check_image("serving", "EXPOSE 8080")


def test_the_model_is_found_where_azure_ml_mounts_it(trained, tmp_path: Path, monkeypatch) -> None:
    """Azure ML mounts a registry version at AZUREML_MODEL_DIR=<mount>/<model>/<version>, with the
    registered MLflow directory inside it under its own name."""
    import shutil

    from serving.model import default_uri, model_directory

    _, directory, x = trained
    mount = tmp_path / "azureml-models" / "churn" / "3"
    shutil.copytree(directory, mount / "model")
    monkeypatch.delenv("MODEL_URI", raising=False)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(mount))
    assert default_uri() == str(mount)
    assert model_directory(mount) == mount / "model"
    loaded = load(default_uri())
    assert len(loaded.predict(x.head(3).values.tolist())[0]) == 3
    monkeypatch.setenv("MODEL_URI", str(directory))  # MODEL_URI still wins
    assert default_uri() == str(directory)
    monkeypatch.delenv("MODEL_URI")
    monkeypatch.delenv("AZUREML_MODEL_DIR")
    assert default_uri() == "/opt/ml/model"
    shutil.copytree(directory, mount / "other")
    with pytest.raises(FileNotFoundError, match="several MLflow model directories"):
        model_directory(mount)


def test_the_azure_rollouts_smoke_request_is_answered_by_the_server(trained) -> None:
    """The request the Azure rollout step sends each new deployment (every feature missing) gets a
    prediction from this server, not a 4xx: the smoke test checks the deployment, not the data."""
    from types import SimpleNamespace

    from mlops_dsl import Dataset
    from mlops_dsl.azure.rollout import smoke_request

    dataset = Dataset(target=CONFIG.target, id_column="id", numeric=list(CONFIG.numeric),
                      categorical=list(CONFIG.categorical))
    body = json.dumps(smoke_request(SimpleNamespace(training=SimpleNamespace(dataset=dataset)))).encode()
    async def smoke():
        server = await _ready(trained[1])
        return await _call(server, "POST", "/invocations", body)

    status, answer, _ = _run(smoke())
    assert status == 200, answer
    assert len(json.loads(answer)["predictions"]) == 1
