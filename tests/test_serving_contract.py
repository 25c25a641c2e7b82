"""The container contract around scoring: health, Batch Transform, answer formats, timeouts,
SageMaker's environment variables, request ids, and what the serving image can and cannot load."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("mlflow", reason="the ml extra is not installed")
pytest.importorskip("onnxruntime", reason="the ml extra is not installed")

from serving import formats, settings
from serving.app import Server
from serving.model import RegistryUnavailable, load

from .conftest import ROOT
from .test_serving import FEATURES, _call, _ready, _records, _run, save_trained


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return save_trained(tmp_path_factory.mktemp("model") / "model")


async def _raw(server: Server, method: str, path: str, body: bytes = b"",
               headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await server({"type": "http", "method": method, "path": path, "headers": headers or []}, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def test_head_ping_and_execution_parameters_for_batch_transform(trained, monkeypatch) -> None:
    _, directory, _ = trained
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "3")
    monkeypatch.setenv("SAGEMAKER_MAX_PAYLOAD_IN_MB", "20")
    monkeypatch.setenv("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD")

    async def scenario():
        server = await _ready(directory)
        return (await _raw(server, "HEAD", "/ping"), await _raw(server, "GET", "/execution-parameters"),
                await _raw(server, "DELETE", "/ping"), server.settings.max_body)

    head, params, delete, limit = _run(scenario())
    assert head[0] == 200
    assert json.loads(params[2]) == {"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD",
                                     "MaxPayloadInMB": 20}
    assert delete[0] == 405 and json.loads(delete[2])["error_code"] == "BAD_REQUEST"
    assert limit == 20 * 1024 * 1024


def test_settings_follow_sagemaker_variables_and_name_a_bad_one(monkeypatch) -> None:
    for name in ("SAGEMAKER_MODEL_SERVER_WORKERS", "SAGEMAKER_MODEL_SERVER_TIMEOUT", "MAX_BODY_BYTES",
                 "SAGEMAKER_MAX_PAYLOAD_IN_MB"):
        monkeypatch.delenv(name, raising=False)
    default = settings.load()
    assert default.workers == settings.cores() and default.timeout == 60 and default.max_body == 6 * 1024 * 1024
    monkeypatch.setenv("SAGEMAKER_MAX_PAYLOAD_IN_MB", "0")  # chunked, any size: Batch Transform's largest
    assert settings.load().max_body == 100 * 1024 * 1024
    monkeypatch.setenv("MAX_BODY_BYTES", "1000")  # the explicit limit wins
    assert settings.load().max_body == 1000
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "two")
    with pytest.raises(settings.SettingsError, match="SAGEMAKER_MODEL_SERVER_WORKERS='two': expected a int"):
        settings.load()


def test_json_lines_in_and_out_line_aligned(trained) -> None:
    model, directory, x = trained
    records = _records(x, 3)
    body = "\n".join(json.dumps(r) for r in records).encode() + b"\n\n"
    lists = "\n".join(json.dumps([r[c] for c in FEATURES]) for r in records).encode()

    async def scenario():
        server = await _ready(directory)
        return (await _call(server, "POST", "/invocations", body, "application/jsonlines", accept=""),
                await _call(server, "POST", "/invocations", lists, "application/jsonlines", accept="*/*"),
                await _call(server, "POST", "/invocations", body, "application/jsonlines",
                            accept="application/json"))

    lines, from_lists, as_json = _run(scenario())
    expected = model.predict(x.head(3)).tolist()
    for status, answer, content in (lines, from_lists):
        assert status == 200 and content == "application/jsonlines"
        out = [json.loads(line) for line in answer.decode().splitlines()]
        assert [o["prediction"] for o in out] == expected and len(out[0]["probabilities"]) == 2
    assert as_json[0] == 200 and json.loads(as_json[1])["predictions"] == expected


def test_accept_honours_q_values_and_refuses_what_it_cannot_write(trained) -> None:
    _, directory, x = trained
    body = json.dumps({"dataframe_records": _records(x, 2)}).encode()

    async def scenario():
        server = await _ready(directory)
        return [await _call(server, "POST", "/invocations", body, accept=accept)
                for accept in ("text/csv, application/json;q=0.1", "application/json, text/csv;q=0.5",
                               "image/png")]

    csv, json_, png = _run(scenario())
    assert csv[2] == "text/csv" and json_[2] == "application/json"
    assert png[0] == 406 and "cannot answer in 'image/png'" in json.loads(png[1])["message"]


def test_a_stuck_model_answers_504_and_turns_ping_unhealthy_until_it_returns(trained, monkeypatch) -> None:
    _, directory, x = trained
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0.3")
    release = threading.Event()

    async def scenario():
        # scikit-learn runs in the model thread (the compiled path's few-row calls run on the loop)
        server = await _ready(directory, SERVING_ENGINE="sklearn")
        predict = server.batcher.predict
        server.batcher.predict = lambda rows: (release.wait(10), predict(rows))[1]
        body = json.dumps({"dataframe_records": _records(x, 1)}).encode()
        started = time.monotonic()
        late = await _call(server, "POST", "/invocations", body)
        took = time.monotonic() - started
        await asyncio.sleep(0.1)
        stuck = await _call(server, "GET", "/ping")
        release.set()
        server.batcher.predict = predict
        await asyncio.sleep(0.2)
        return late, took, stuck, await _call(server, "GET", "/ping"), await _call(server, "POST", "/invocations",
                                                                                    body)

    late, took, stuck, healthy, again = _run(scenario())
    assert late[0] == 504 and json.loads(late[1])["error_code"] == "DEADLINE_EXCEEDED" and took < 2
    assert stuck[0] == 503 and json.loads(stuck[1])["status"] == "stuck"
    assert healthy[0] == 200 and again[0] == 200


def test_a_body_that_does_not_arrive_in_time_is_408(trained, monkeypatch) -> None:
    _, directory, _ = trained
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0.2")

    async def scenario():
        server = await _ready(directory)
        sent: list[dict] = []

        async def receive():  # a client that never finishes its body
            await asyncio.sleep(5)
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await server({"type": "http", "method": "POST", "path": "/invocations", "headers": []}, receive, send)
        return sent[0]["status"], json.loads(sent[1]["body"])

    status, body = _run(scenario())
    assert status == 408 and "did not arrive" in body["message"]


def test_large_bodies_are_parsed_off_the_event_loop(trained, monkeypatch) -> None:
    _, directory, x = trained
    threads: list[str] = []
    parse = formats.parse

    def recording(*args):
        threads.append(threading.current_thread().name)
        return parse(*args)

    monkeypatch.setattr(formats, "parse", recording)
    small = json.dumps({"dataframe_records": _records(x, 1)}).encode()
    large = json.dumps({"dataframe_records": _records(x, 1) * 800}).encode()
    assert len(large) > 64 * 1024

    async def scenario():
        server = await _ready(directory)
        return [(await _call(server, "POST", "/invocations", body))[0] for body in (small, large)]

    assert _run(scenario()) == [200, 200]
    assert threads[0] == "MainThread" and threads[1] != "MainThread"


def test_request_ids_are_answered_and_logged(trained) -> None:
    _, directory, x = trained
    body = json.dumps({"dataframe_records": _records(x, 1)}).encode()
    log = io.StringIO()

    async def scenario():
        server = await _ready(directory)
        server.access.stream = log
        answers = (await _raw(server, "POST", "/invocations", body, [(b"x-request-id", b"abc-123")]),
                   await _raw(server, "POST", "/invocations", b"{", []))
        await asyncio.sleep(0.1)  # lines are written in batches
        return answers

    given, generated = _run(scenario())
    assert given[1][b"x-request-id"] == b"abc-123"
    new_id = generated[1][b"x-request-id"].decode()
    assert len(new_id) == 32
    lines = log.getvalue().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ serving.access INFO abc-123 POST /invocations 200 "
                        r"[\d.]+ms", lines[0]), lines
    assert f"INFO {new_id} POST /invocations 400 " in lines[1]


def test_a_registry_uri_without_mlflow_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as in the serving image: not installed
    with pytest.raises(RegistryUnavailable, match=r"mlflow is not installed.*give it the model directory"):
        load("models:/customer-churn@production")


def test_the_serving_code_imports_neither_mlflow_nor_training_and_the_image_has_neither() -> None:
    code = ("import sys, serving.app, serving.__main__, serving.compiled; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('mlflow', 'training')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
    requirements = (ROOT / "serving" / "requirements.txt").read_text().lower()
    assert "mlflow" not in requirements
    dockerfile = (ROOT / "serving" / "Dockerfile").read_text()
    copies = [line for line in dockerfile.splitlines() if line.startswith(("COPY", "ADD"))]
    assert copies and all("training" not in line and ".." not in line for line in copies)


def test_the_image_runs_as_root_as_sagemaker_expects() -> None:
    dockerfile = (ROOT / "serving" / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users[-1] == "root"
    ignore = dockerfile[:dockerfile.rindex("USER root")].splitlines()
    assert any("hadolint ignore=DL3002" in line for line in ignore[-3:])
    assert "SageMaker AI expects all containers to run with root users" in dockerfile


def test_a_large_batch_is_scored_in_chunks_and_answered_in_pieces_exactly(trained) -> None:
    """3,000 rows: predicted 2,048 at a time and encoded 1,000 at a time (so the event loop is
    never stalled), answered exactly as one call and one json.dumps would."""
    model, directory, x = trained
    rows = _records(x, 1500) * 2
    body = json.dumps({"dataframe_records": rows}).encode()
    expected = np.concatenate([model.predict(x.head(1500))] * 2).tolist()
    proba = np.concatenate([model.predict_proba(x.head(1500))] * 2)

    async def scenario():
        server = await _ready(directory)
        return (await _call(server, "POST", "/invocations", body),
                await _call(server, "POST", "/invocations", body, accept="text/csv"))

    (status, answer, content), (csv_status, csv_answer, csv_content) = _run(scenario())
    assert status == 200 and content == "application/json"
    doc = json.loads(answer)
    assert doc["predictions"] == expected and np.abs(np.array(doc["probabilities"]) - proba).max() < 1e-5
    assert answer == json.dumps({"predictions": doc["predictions"], "probabilities": doc["probabilities"]}).encode()
    lines = csv_answer.decode().splitlines()
    assert csv_status == 200 and csv_content == "text/csv" and [int(line.split(",")[0]) for line in lines] == expected


def test_unseen_categories_are_counted_in_the_access_log_and_on_ping(trained) -> None:
    """The one-hot encoder scores a category training never saw as "none of them", silently: the
    server says so, per request in the access log and in total on /ping."""
    _, directory, x = trained
    record = _records(x, 1)[0]
    odd = [{**record, "contract": "Ten years", "payment_method": "Gold"}, {**record, "contract": "Forever"}]
    log = io.StringIO()

    async def scenario():
        server = await _ready(directory)
        server.access.stream = log
        await _call(server, "POST", "/invocations", json.dumps({"dataframe_records": [record]}).encode())
        scored = await _call(server, "POST", "/invocations", json.dumps({"dataframe_records": odd}).encode())
        await asyncio.sleep(0.1)
        return scored, await _call(server, "GET", "/ping")

    scored, ping = _run(scenario())
    assert scored[0] == 200
    first, second = log.getvalue().splitlines()
    assert first.endswith("ms") and second.endswith(" unseen=contract,payment_method")
    assert json.loads(ping[1])["unseen_categories"] == {"contract": 2, "payment_method": 1}
