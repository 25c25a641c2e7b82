"""SageMaker's multi-model contract over real HTTP: load, list, describe, invoke by model, unload,
reload, the bound (507 past it, as the contract asks), malformed load requests (4xx, the server
keeps serving), and invocations that keep being answered while another model loads."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow", reason="the ml extra is not installed")
pytest.importorskip("onnxruntime", reason="the ml extra is not installed")

hypothesis = pytest.importorskip("hypothesis", reason="the dev extra is not installed")

from hypothesis import HealthCheck, event, given  # noqa: E402
from hypothesis import settings as settings_  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from serving import formats, settings  # noqa: E402
from serving.multi_model import NAME, load_request, within  # noqa: E402
from training.data import generate_churn, validate  # noqa: E402
from training.model import build_pipeline  # noqa: E402
from training.train import trusted_types  # noqa: E402

from .conftest import ROOT  # noqa: E402
from .test_serving import CONFIG, FEATURES, _free_port, _records  # noqa: E402
from .test_serving_fuzz import BODIES, HEADERS  # noqa: E402

BOUND = 2
HERE = Path(__file__).resolve().parent


def _save(directory: Path, family: str, rows: int, seed: int, params: dict | None = None):
    """A small pipeline of `family` saved as MLflow saves it (requirements given: inferring them
    costs a subprocess of seconds), and the rows it was trained on."""
    from mlflow.models import infer_signature

    config = replace(CONFIG, family=family)
    frame = validate(generate_churn(rows, seed=seed), config, "sample")
    x = frame[FEATURES]
    model = build_pipeline(config, params).fit(x, frame[config.target])
    mlflow.sklearn.save_model(model, directory, signature=infer_signature(x.head(5), model.predict(x.head(5))),
                              input_example=x.head(5), skops_trusted_types=trusted_types(model),
                              pip_requirements=["scikit-learn"])
    return model, x


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    """Model directories laid out as SageMaker extracts `<name>.tar.gz`: <root>/<name>/model."""
    root = tmp_path_factory.mktemp("models")
    forest, x = _save(root / "forest" / "model", "random_forest", 1500, 8, {"n_estimators": 20})
    # a linear model on other rows: its answers differ, so a request scored by the wrong model shows
    linear, _ = _save(root / "linear" / "model", "logistic_regression", 800, 3)
    shutil.copytree(root / "forest" / "model", root / "spare" / "model")
    (root / "empty").mkdir()
    return root, {"forest": forest, "linear": linear}, x


class Client:
    def __init__(self, base: str, root: Path, log: Path):
        self.base, self.root, self.log = base, root, log

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(self.base + path, body, headers or {"Content-Type": "application/json"},
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def load(self, name: str, directory: str | None = None) -> tuple[int, dict]:
        url = str(self.root / (directory or name) / "model")
        return self.call("POST", "/models", json.dumps({"model_name": name, "url": url}).encode())

    def invoke(self, name: str, records: list[dict], **headers: str) -> tuple[int, dict]:
        return self.call("POST", f"/models/{name}/invoke", json.dumps({"dataframe_records": records}).encode(),
                         {"Content-Type": "application/json", **headers})

    def loaded(self) -> list[str]:
        status, page = self.call("GET", "/models")
        assert status == 200
        return [m["modelName"] for m in page["models"]]


@pytest.fixture(scope="module")
def server(models, tmp_path_factory: pytest.TempPathFactory):
    """`python -m serving serve` as SageMaker starts it for a multi-model variant."""
    root = models[0]
    port = _free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port), "HOST": "127.0.0.1", "SAGEMAKER_MULTI_MODEL": "true",
           "MLOPS_MULTI_MODEL_MAX_LOADED": str(BOUND), "MLOPS_MULTI_MODEL_ROOT": str(root),
           "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}  # ignored in multi-model mode: one process
    env.pop("MODEL_URI", None)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "serving", "serve"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    client = Client(f"http://127.0.0.1:{port}", root, log)
    try:
        deadline = time.monotonic() + 60
        while "multi-model server ready" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield client
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def mms(server: Client):
    """The server with no model loaded before and after each test."""
    yield server
    for name in server.loaded():
        assert server.call("DELETE", f"/models/{name}")[0] == 200


def test_load_list_invoke_unload_and_reload(mms: Client, models) -> None:
    _, trained, x = models
    rows = _records(x, 20)
    assert mms.call("GET", "/ping") == (200, {"status": "healthy", "models": 0, "max_loaded": BOUND})
    assert mms.invoke("forest", rows)[0] == 404  # not loaded yet

    status, body = mms.load("forest")
    assert status == 200 and body["modelName"] == "forest" and body["modelUrl"] == str(mms.root / "forest" / "model")
    assert mms.load("forest")[0] == 409
    assert mms.load("linear")[0] == 200
    assert mms.loaded() == ["forest", "linear"]

    for name, model in trained.items():  # each request is scored by the model it names
        status, answer = mms.invoke(name, rows, **{"X-Amzn-SageMaker-Target-Model": f"{name}.tar.gz"})
        assert status == 200 and answer["predictions"] == model.predict(x.head(20)).tolist(), name
    assert trained["forest"].predict(x.head(20)).tolist() != trained["linear"].predict(x.head(20)).tolist()

    status, described = mms.call("GET", "/models/forest")
    assert status == 200 and described["modelName"] == "forest" and described["engine"] in ("scikit-learn",
                                                                                             "onnxruntime")
    status, unloaded = mms.call("DELETE", "/models/forest")
    assert status == 200 and unloaded["modelName"] == "forest"
    assert mms.loaded() == ["linear"]
    assert mms.invoke("forest", rows)[0] == 404
    assert mms.call("GET", "/models/forest")[0] == 404
    assert mms.call("DELETE", "/models/forest")[0] == 404
    assert mms.invoke("linear", rows)[0] == 200  # the other model is untouched

    assert mms.load("forest")[0] == 200  # reload
    status, answer = mms.invoke("forest", rows)
    assert status == 200 and answer["predictions"] == trained["forest"].predict(x.head(20)).tolist()
    time.sleep(0.2)  # the access log is written in batches
    log = mms.log.read_text()
    assert re.search(r"serving\.access INFO \w+ POST /models/linear/invoke 200 [\d.]+ms target=linear\.tar\.gz", log)


def test_past_the_bound_a_load_is_507_until_the_platform_unloads_one(mms: Client, models) -> None:
    """The contract: 507 when a model cannot be held, and SageMaker then unloads unused models and
    loads again. Nothing is evicted behind the platform's back."""
    _, trained, x = models
    assert mms.load("forest")[0] == 200 and mms.load("linear")[0] == 200
    status, error = mms.load("spare")
    assert status == 507 and error["error_code"] == "RESOURCE_EXHAUSTED"
    assert "MLOPS_MULTI_MODEL_MAX_LOADED=2" in error["message"]
    assert mms.loaded() == ["forest", "linear"]  # both still served
    assert mms.invoke("forest", _records(x, 3))[0] == 200
    assert mms.call("DELETE", "/models/forest")[0] == 200  # what SageMaker does on a 507
    assert mms.load("spare")[0] == 200
    status, answer = mms.invoke("spare", _records(x, 3))
    assert status == 200 and answer["predictions"] == trained["forest"].predict(x.head(3)).tolist()
    assert mms.load("forest")[0] == 507


def test_list_pages_with_next_page_token(mms: Client) -> None:
    assert mms.load("linear")[0] == 200 and mms.load("forest")[0] == 200
    status, first = mms.call("GET", "/models?limit=1")
    assert status == 200 and [m["modelName"] for m in first["models"]] == ["forest"]
    token = first["nextPageToken"]
    status, second = mms.call("GET", f"/models?limit=1&next_page_token={token}")
    assert status == 200 and [m["modelName"] for m in second["models"]] == ["linear"]
    assert "nextPageToken" not in second
    for query, field in (("limit=0", "limit"), ("limit=abc", "limit"), ("limit=5000", "limit"),
                         ("next_page_token=x", "next_page_token")):
        status, error = mms.call("GET", f"/models?{query}")
        assert status == 400 and error["message"].startswith(field), query


def test_a_name_with_slashes_is_served_under_its_path(mms: Client, models) -> None:
    """model_name is SageMaker's opaque key; a relative path such as a TargetModel works too."""
    _, trained, x = models
    name = "group/forest.tar.gz"
    assert mms.load(name, "forest")[0] == 200
    status, answer = mms.invoke(name, _records(x, 3))
    assert status == 200 and answer["predictions"] == trained["forest"].predict(x.head(3)).tolist()
    assert mms.call("GET", f"/models/{name}")[1]["modelName"] == name
    assert mms.call("DELETE", f"/models/{name}")[0] == 200


def _bad_loads(root: Path) -> list[tuple[bytes, int, str]]:
    def body(**fields: object) -> bytes:
        return json.dumps(fields).encode()

    model = str(root / "forest" / "model")
    return [
        (b'{"model_name": "a", "url": ', 400, "not JSON"),
        (b"", 400, "not JSON"),
        (b"[" * 60_000, 400, "not JSON"),  # deeper than the parser goes
        (b'["a", "b"]', 400, "JSON object"),
        (body(url=model), 400, "model_name:"),
        (body(model_name=3, url=model), 400, "model_name:"),
        (body(model_name="", url=model), 400, "model_name:"),
        (body(model_name="a\tb", url=model), 400, "model_name:"),
        (body(model_name="x" * 513, url=model), 400, "model_name:"),
        (body(model_name="a b", url=model), 400, "model_name:"),
        (body(model_name="a"), 400, "url:"),
        (body(model_name="a", url=["x"]), 400, "url:"),
        (body(model_name="a", url="forest/model"), 400, "absolute path"),
        (body(model_name="a", url="/etc"), 403, "outside"),
        (body(model_name="a", url=str(root / "forest" / ".." / ".." / "elsewhere")), 403, "outside"),
        (body(model_name="a", url=str(root / "missing" / "model")), 404, "no directory"),
        (body(model_name="a", url=str(root / "forest" / "model" / "MLmodel")), 404, "no directory"),
        (body(model_name="a", url=str(root / "empty")), 400, "no MLmodel file"),
        (body(model_name="a", url=model, padding="x" * 70_000), 413, "over the limit"),
    ]


def test_malformed_load_requests_are_4xx_and_the_server_keeps_serving(mms: Client, models) -> None:
    root, _, x = models
    for body, status, message in _bad_loads(root):
        got, error = mms.call("POST", "/models", body)
        assert (got, message in error["message"]) == (status, True), (body[:80], got, error)
        assert set(error) == {"error_code", "message"}
    assert mms.loaded() == []
    assert mms.call("GET", "/ping")[0] == 200
    for method, path, status in (("PUT", "/models", 405), ("POST", "/models/a", 405), ("GET", "/models/a/invoke", 405),
                                 ("POST", "/invocations", 404), ("GET", "/nothing", 404)):
        assert mms.call(method, path, b"{}" if method != "GET" else None)[0] == status, (method, path)
    assert mms.load("forest")[0] == 200
    assert mms.invoke("forest", _records(x, 2))[0] == 200


def test_invocations_keep_the_single_model_checks_and_count_unseen_categories_per_model(mms: Client, models) -> None:
    _, _, x = models
    assert mms.load("forest")[0] == 200 and mms.load("linear")[0] == 200
    status, error = mms.invoke("forest", [{"tenure_months": 3}])
    assert status == 400 and "missing column 'monthly_charges'" in error["message"]
    assert error["error_code"] == "BAD_REQUEST"
    status, error = mms.call("POST", "/models/forest/invoke", b"<xml/>", {"Content-Type": "application/xml"})
    assert status == 415 and "unsupported content type" in error["message"]
    unseen = {**_records(x, 1)[0], "contract": "Decade-to-decade"}
    rows_before = {name: mms.call("GET", f"/models/{name}")[1]["model_rows"] for name in ("linear", "forest")}
    assert mms.invoke("linear", [unseen, unseen])[0] == 200
    linear, forest = mms.call("GET", "/models/linear")[1], mms.call("GET", "/models/forest")[1]
    assert linear["unseen_categories"] == {"contract": 2} and forest["unseen_categories"] == {}
    # the model calls are counted per model, too
    assert (linear["model_rows"], forest["model_rows"]) == (rows_before["linear"] + 2, rows_before["forest"])


def test_invocations_are_answered_while_another_model_loads(mms: Client, models) -> None:
    _, trained, x = models
    rows = _records(x, 5)
    expected = trained["forest"].predict(x.head(5)).tolist()
    assert mms.load("forest")[0] == 200
    answers: list[tuple[int, list]] = []
    stop = threading.Event()

    def keep_invoking() -> None:
        while not stop.is_set():
            status, body = mms.invoke("forest", rows)
            answers.append((status, body.get("predictions", body)))

    threads = [threading.Thread(target=keep_invoking) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.2)
        before = len(answers)
        assert mms.load("linear")[0] == 200
        during = len(answers) - before
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert during > 0 and answers and all(a == (200, expected) for a in answers), answers[:3]
    assert mms.invoke("linear", rows)[0] == 200


def test_an_unload_during_invocations_answers_each_200_or_404(mms: Client, models) -> None:
    """Requests already routed to a model finish before its model thread stops; later ones are 404.
    None gets a 5xx, or a 400 from a stopped batcher."""
    _, trained, x = models
    rows = _records(x, 5)
    expected = trained["forest"].predict(x.head(5)).tolist()
    assert mms.load("forest")[0] == 200
    answers: list[tuple[int, object]] = []
    stop = threading.Event()

    def keep_invoking() -> None:
        while not stop.is_set():
            status, body = mms.invoke("forest", rows)
            answers.append((status, body.get("predictions", body.get("error_code"))))

    threads = [threading.Thread(target=keep_invoking) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        assert mms.call("DELETE", "/models/forest")[0] == 200
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert all(a in ((200, expected), (404, "RESOURCE_DOES_NOT_EXIST")) for a in answers), answers
    assert (200, expected) in answers and answers[-1][0] == 404


def test_each_model_switches_to_the_verified_compiled_path(mms: Client, models) -> None:
    """As the single-model server: scikit-learn serves at once, ONNX Runtime once it is verified."""
    _, trained, x = models
    assert mms.load("forest")[0] == 200 and mms.load("linear")[0] == 200
    deadline = time.monotonic() + 60
    while {mms.call("GET", f"/models/{n}")[1]["engine"] for n in trained} != {"onnxruntime"}:
        assert time.monotonic() < deadline, [mms.call("GET", f"/models/{n}")[1] for n in trained]
        time.sleep(0.2)
    for name, model in trained.items():
        status, answer = mms.invoke(name, _records(x, 50))
        assert status == 200 and answer["predictions"] == model.predict(x.head(50)).tolist(), name


URLS = st.one_of(st.text(max_size=40), st.text(max_size=40).map(lambda t: "/" + t), st.sampled_from(
    ["/", "/..", "//etc", "/a\x00b", "/" + "a" * 5000, "/tmp/../..", "\ud800",
     str(HERE / "reference"), str(HERE / "nothing")]))
LOAD_BODIES = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(["model_name", "url", "other"]), st.one_of(
        st.none(), st.integers(), st.text(max_size=20), URLS, st.lists(st.text(max_size=3), max_size=2)),
        max_size=3).map(lambda d: json.dumps(d).encode()),
)


@given(LOAD_BODIES)
@settings_(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_load_body_is_a_name_and_a_directory_under_the_root_or_a_4xx(body: bytes) -> None:
    """No body a caller sends makes the load's checks fail with anything but a 4xx naming the field."""
    try:
        name, url = load_request(body)
        directory = within(url, str(HERE))
    except formats.ClientError as exc:
        assert 400 <= exc.status < 500 and exc.message
        return
    assert NAME.fullmatch(name) and directory.is_dir() and directory.is_relative_to(HERE)


@pytest.fixture(scope="module")
def in_process(models):
    """One multi-model server on one event loop, with `forest` loaded, for every generated request."""
    from serving.multi_model import MultiModelServer

    root, _, x = models
    loop = asyncio.new_event_loop()
    server = MultiModelServer(replace(settings.load(), multi_model=True, max_loaded=BOUND, models_root=str(root)))
    load = json.dumps({"model_name": "forest", "url": str(root / "forest" / "model")}).encode()
    assert loop.run_until_complete(_asgi(server, "POST", "/models", load))[0] == 200
    good = json.dumps({"dataframe_records": _records(x, 1)}).encode()
    yield loop, server, good
    for hosted in server.hosted.values():
        loop.run_until_complete(hosted.server.batcher.stop())
    loop.close()


async def _asgi(server, method: str, path: str, body: bytes = b"", headers: list | None = None,
                query: bytes = b"") -> tuple[int, dict[bytes, bytes], bytes]:
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await server({"type": "http", "method": method, "path": path, "query_string": query, "headers": headers or []},
                 receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


PATHS = st.one_of(st.sampled_from(["/models", "/models/forest/invoke", "/models/linear/invoke", "/models/forest",
                                   "/models/", "/models//invoke", "/models/forest/invoke/", "/ping", "/invocations",
                                   "/execution-parameters"]),
                  st.text(max_size=20).map(lambda t: "/models/" + t),
                  st.text(max_size=20).map(lambda t: f"/models/{t}/invoke"))


ROUTES = st.one_of(st.just(("POST", "/models")), st.just(("POST", "/models/forest/invoke")),
                   st.just(("GET", "/models")),
                   st.tuples(st.sampled_from(["GET", "POST", "DELETE", "PUT", "HEAD", "PATCH"]), PATHS))


@settings_(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(route=ROUTES,
       body=st.one_of(BODIES, LOAD_BODIES), headers=HEADERS,
       query=st.one_of(st.just(b""), st.binary(max_size=30), st.sampled_from([b"limit=1", b"limit=-1", b"limit=1e3",
                                                                              b"next_page_token=99999999999999"])))
def test_no_request_to_the_multi_model_routes_is_a_5xx(in_process, route: tuple[str, str], body: bytes,
                                                        headers: dict[bytes, str], query: bytes) -> None:
    """Whatever reaches the new routes is answered below 500, every 4xx is MLflow's error body, and
    the loaded model still answers 200 after it."""
    loop, server, good = in_process
    method, path = route
    if method == "DELETE" and path == "/models/forest":
        method = "GET"  # the one request that may change what the next example meets
    sent = [(b"content-type", b"application/json")] + [(k, v.encode("latin-1")) for k, v in headers.items()]
    status, answer_headers, answer = loop.run_until_complete(_asgi(server, method, path, body, sent, query))
    event(f"status {status}")
    assert status < 500, (status, answer[:300])
    for name, value in answer_headers.items():  # what uvicorn would refuse to send (and answer 500 for)
        assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value), (name, value)
    if status >= 400:
        error = json.loads(answer)
        assert set(error) == {"error_code", "message"} and error["message"], error
    for name in [n for n in server.hosted if n != "forest"]:  # a generated body that loaded a model
        assert loop.run_until_complete(_asgi(server, "DELETE", f"/models/{name}"))[0] == 200
    after = loop.run_until_complete(_asgi(server, "POST", "/models/forest/invoke", good,
                                          [(b"content-type", b"application/json")]))
    assert after[0] == 200


def test_an_invocation_of_a_model_being_loaded_waits_for_its_load(in_process, models) -> None:
    root, trained, x = models
    loop, server, _ = in_process
    body = json.dumps({"model_name": "linear", "url": str(root / "linear" / "model")}).encode()
    rows = json.dumps({"dataframe_records": _records(x, 4)}).encode()

    async def scenario():
        loading = asyncio.get_running_loop().create_task(_asgi(server, "POST", "/models", body))
        while "linear" not in server.loading:
            await asyncio.sleep(0)
        invoked = await _asgi(server, "POST", "/models/linear/invoke", rows, [(b"content-type", b"application/json")])
        return await loading, invoked

    loaded, invoked = loop.run_until_complete(scenario())
    try:
        assert loaded[0] == 200 and invoked[0] == 200, (loaded, invoked)
        assert json.loads(invoked[2])["predictions"] == trained["linear"].predict(x.head(4)).tolist()
    finally:
        assert loop.run_until_complete(_asgi(server, "DELETE", "/models/linear"))[0] == 200


@pytest.mark.parametrize("when", ["before its compile", "during its compile", "once compiled"])
def test_an_unloaded_model_is_freed_without_a_full_collection(in_process, models, monkeypatch, when: str) -> None:
    """Its objects are frozen out of the garbage collector: the unload must leave them to reference
    counting (a full collection stalls every other model's requests), whenever it comes."""
    import gc
    import weakref

    from serving import multi_model

    root, _, _ = models
    loop, server, _ = in_process
    collections: list[int] = []
    monkeypatch.setattr(multi_model, "_reclaim", lambda: collections.append(1))
    body = json.dumps({"model_name": "linear", "url": str(root / "linear" / "model")}).encode()

    async def scenario():
        assert (await _asgi(server, "POST", "/models", body))[0] == 200
        hosted = server.hosted["linear"]
        if when == "during its compile":
            while not hosted.server.compiling:
                await asyncio.sleep(0)
        elif when == "once compiled":
            while hosted.server.model.fast is None:
                await asyncio.sleep(0.05)
        watched = [weakref.ref(hosted.server.model), weakref.ref(hosted.server.model.model)]
        assert (await _asgi(server, "DELETE", "/models/linear"))[0] == 200
        while server.background:  # the compile task, if it still runs
            await asyncio.sleep(0.05)
        return watched

    enabled = gc.isenabled()
    gc.disable()  # nothing but reference counting frees them here
    try:
        watched = loop.run_until_complete(scenario())
        assert [ref() is None for ref in watched] == [True, True] and collections == [], when
    finally:
        if enabled:
            gc.enable()


def test_the_same_load_twice_at_once_is_one_load_and_a_409(in_process, models) -> None:
    root, _, _ = models
    loop, server, _ = in_process
    body = json.dumps({"model_name": "linear", "url": str(root / "linear" / "model")}).encode()

    async def scenario():
        return await asyncio.gather(_asgi(server, "POST", "/models", body), _asgi(server, "POST", "/models", body))

    try:
        assert sorted(answer[0] for answer in loop.run_until_complete(scenario())) == [200, 409]
        assert sorted(server.hosted) == ["forest", "linear"]
    finally:
        assert loop.run_until_complete(_asgi(server, "DELETE", "/models/linear"))[0] == 200


def test_ping_is_503_naming_a_model_stuck_past_the_timeout(in_process) -> None:
    loop, server, _ = in_process
    batcher = server.hosted["forest"].server.batcher
    batcher.busy_since = time.monotonic() - server.settings.timeout - 5  # a model call running that long
    try:
        status, _, body = loop.run_until_complete(_asgi(server, "GET", "/ping"))
    finally:
        batcher.busy_since = None
    assert status == 503 and json.loads(body)["status"] == "stuck" and json.loads(body)["model"] == "forest"
    assert loop.run_until_complete(_asgi(server, "GET", "/ping"))[0] == 200


def test_a_load_body_that_does_not_arrive_is_408(models) -> None:
    from serving.multi_model import MultiModelServer

    root = models[0]
    server = MultiModelServer(replace(settings.load(), multi_model=True, timeout=0.2, models_root=str(root)))

    async def scenario():
        sent: list[dict] = []

        async def receive():
            await asyncio.sleep(10)  # the client never sends its body

        async def send(message):
            sent.append(message)

        await server({"type": "http", "method": "POST", "path": "/models", "headers": []}, receive, send)
        return sent[0]["status"], json.loads(sent[1]["body"])

    status, error = asyncio.run(scenario())
    assert status == 408 and "did not arrive within 0.2 s" in error["message"]


def test_the_mode_and_the_bound_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SAGEMAKER_MULTI_MODEL", "MLOPS_MULTI_MODEL_MAX_LOADED", "MLOPS_MULTI_MODEL_ROOT",
                 "SAGEMAKER_MODEL_SERVER_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    single = settings.load()
    assert not single.multi_model and single.workers == settings.cores()
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "3")
    for value in ("true", "True", "1"):
        monkeypatch.setenv("SAGEMAKER_MULTI_MODEL", value)
        multi = settings.load()
        assert multi.multi_model and multi.workers == 1, value
        assert (multi.max_loaded, multi.models_root) == (settings.DEFAULT_MAX_LOADED, "/opt/ml/models")
    monkeypatch.setenv("SAGEMAKER_MULTI_MODEL", "false")
    monkeypatch.setenv("MLOPS_MULTI_MODEL_MAX_LOADED", "5")
    assert not settings.load().multi_model  # said false: the bound alone does not switch it on
    monkeypatch.delenv("SAGEMAKER_MULTI_MODEL")
    bound = settings.load()
    assert bound.multi_model and bound.max_loaded == 5
    for name, value in (("MLOPS_MULTI_MODEL_MAX_LOADED", "0"), ("MLOPS_MULTI_MODEL_MAX_LOADED", "many"),
                        ("SAGEMAKER_MULTI_MODEL", "yes please")):
        monkeypatch.setenv(name, value)
        with pytest.raises(settings.SettingsError, match=name):
            settings.load()
        monkeypatch.setenv("MLOPS_MULTI_MODEL_MAX_LOADED", "5")
        monkeypatch.delenv("SAGEMAKER_MULTI_MODEL", raising=False)


def test_a_bad_bound_is_a_user_error_at_start() -> None:
    env = {**os.environ, "MLOPS_MULTI_MODEL_MAX_LOADED": "0"}
    result = subprocess.run([sys.executable, "-m", "serving", "serve"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "MLOPS_MULTI_MODEL_MAX_LOADED='0': must be at least 1" in result.stderr
