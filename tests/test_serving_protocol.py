"""The HTTP/1.1 connection (serving/protocol.py) over real sockets: the quick scoring path answers
exactly as the ASGI app does, and the protocol keeps HTTP's promises (order, framing, limits,
timeouts, keep-alive, shutdown) with MLflow's error body for everything it refuses itself."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

pytest.importorskip("mlflow", reason="the ml extra is not installed")
pytest.importorskip("onnxruntime", reason="the ml extra is not installed")
hypothesis = pytest.importorskip("hypothesis", reason="the dev extra is not installed")
httptools = pytest.importorskip("httptools", reason="the serving extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serving extra is not installed")

from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from uvicorn.server import ServerState  # noqa: E402

from serving.protocol import Connection  # noqa: E402

from .test_serving import _ready, _records, save_trained  # noqa: E402
from .test_serving_contract import _raw  # noqa: E402
from .test_serving_fuzz import BODIES, CONTENT_TYPES  # noqa: E402

Answer = tuple[int, dict[bytes, bytes], bytes]


class Listening:
    """One Server behind serving.protocol.Connection on 127.0.0.1, on its own event loop; every
    error the loop sees (an exception in a callback) is kept, and each test asserts there is none."""

    def __init__(self, directory: Any, keep_alive: float = 5.0, **env: str):
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context))
        self.server = self.loop.run_until_complete(_ready(directory, **env))
        self.config = uvicorn.Config(self.server, interface="asgi3", proxy_headers=False, lifespan="off",
                                     timeout_keep_alive=keep_alive)
        self.config.load()
        self.state = ServerState()
        self.listener = self.loop.run_until_complete(self.loop.create_server(
            lambda: Connection(self.config, self.state, {}, _loop=self.loop), "127.0.0.1", 0))
        self.port = self.listener.sockets[0].getsockname()[1]

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.listener.close()
        assert self.server.batcher is not None
        self.run(self.server.batcher.stop())
        self.loop.close()

    async def exchange(self, data: bytes | list[bytes], count: int = 1, pause: float = 0.0,
                       bodiless: frozenset[int] = frozenset(), wait_close: float = 0.2) -> tuple[list[Answer], bool]:
        """Sends the bytes (a list: parts with `pause` seconds between), reads `count` responses (those
        numbered in `bodiless` answer HEAD: no body), and says whether the server then closed the connection."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        for part in ([data] if isinstance(data, bytes) else data):
            writer.write(part)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        answers = await read_answers(reader, count, bodiless=bodiless)
        try:
            closed = wait_close > 0 and await asyncio.wait_for(reader.read(1), wait_close) == b""
        except TimeoutError:
            closed = False
        writer.close()
        return answers, closed


async def read_answers(reader: asyncio.StreamReader, count: int, timeout: float = 10,
                       bodiless: frozenset[int] = frozenset()) -> list[Answer]:
    answers: list[Answer] = []
    while len(answers) < count:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, value = line.split(b": ", 1)
                headers[name.lower()] = value
        if status == 100:
            continue
        length = 0 if len(answers) in bodiless else int(headers.get(b"content-length", b"0"))
        body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
        answers.append((status, headers, body))
    return answers


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
            version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: test"]
    given = {k.lower() for k in (headers or {})}
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if not given & {"transfer-encoding", "content-length"} and (body or method == "POST"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return save_trained(tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="module")
def listening(trained):
    _, directory, x = trained
    served = Listening(directory)
    yield served, x
    served.close()


@pytest.fixture(autouse=True)
def _no_loop_errors(request: pytest.FixtureRequest):
    yield
    if "listening" in request.fixturenames:
        served = request.getfixturevalue("listening")[0]
        assert not served.errors, served.errors
        served.errors.clear()


def _good(x, n: int = 1) -> bytes:
    return json.dumps({"dataframe_records": _records(x, n)}).encode()


def _slow_model(served: Listening, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Every model call takes `seconds` more, in the model thread, as a long call runs."""
    batcher = served.server.batcher
    assert batcher is not None
    predict = batcher.predict

    def slow(rows):
        time.sleep(seconds)
        return predict(rows)

    monkeypatch.setattr(batcher, "predict", slow)
    monkeypatch.setattr(batcher, "inline", None)


HEADER_VALUE = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30)


@settings(max_examples=150, deadline=3000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(body=BODIES, content_type=CONTENT_TYPES, accept=st.none() | HEADER_VALUE | st.sampled_from(
    ["text/csv", "application/jsonlines", "application/json", "*/*", "text/html"]))
def test_the_quick_path_answers_every_body_as_the_app_does(listening, body: bytes, content_type: str,
                                                           accept: str | None) -> None:
    served, _ = listening
    content_type = content_type.strip()
    if not content_type.isprintable() or not content_type.isascii():
        content_type = "application/json"  # header bytes HTTP forbids: the fuzz test sends those to the app
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    sent = [(b"content-type", content_type.encode())] + ([(b"accept", accept.encode())] if accept else [])
    over_http = served.run(served.exchange(request("POST", "/invocations", body, headers), wait_close=0))[0][0]
    through_app = served.run(_raw(served.server, "POST", "/invocations", body, sent))
    event(f"status {over_http[0]}")
    assert over_http[0] == through_app[0] and over_http[0] < 500, (over_http, through_app)
    assert over_http[1][b"content-type"] == through_app[1][b"content-type"]
    assert over_http[2] == through_app[2]


def test_a_scoring_request_takes_no_asgi_task_and_others_go_through_the_app(listening, monkeypatch) -> None:
    served, x = listening
    calls = []
    app_call = type(served.server).__call__

    async def counted(self, scope, receive, send):
        calls.append(scope["path"])
        await app_call(self, scope, receive, send)

    monkeypatch.setattr(type(served.server), "__call__", counted)
    answers, closed = served.run(served.exchange(
        request("POST", "/invocations", _good(x), {"Content-Type": "application/json", "X-Request-Id": "mine-1"})
        + request("GET", "/ping") + request("HEAD", "/ping"), count=3, bodiless=frozenset({2})))
    assert [a[0] for a in answers] == [200, 200, 200] and not closed
    assert answers[0][1][b"x-request-id"] == b"mine-1"
    assert calls == ["/ping", "/ping"]  # the scoring request never reached the ASGI app
    assert answers[2][2] == b"" and int(answers[2][1][b"content-length"]) == len(answers[1][2])  # HEAD: no body


def test_pipelined_requests_are_answered_in_order(listening) -> None:
    served, x = listening
    one, three = _good(x, 1), _good(x, 3)
    data = (request("POST", "/invocations", three, {"Content-Type": "application/json"}) + request("GET", "/nope")
            + request("POST", "/invocations", one, {"Content-Type": "application/json"})
            + request("POST", "/invocations", b"a,b", {"Content-Type": "text/csv"}))
    answers, _ = served.run(served.exchange(data, count=4))
    assert [a[0] for a in answers] == [200, 404, 200, 400]
    assert len(json.loads(answers[0][2])["predictions"]) == 3 and len(json.loads(answers[2][2])["predictions"]) == 1


def test_a_chunked_body_and_expect_100_continue_are_read(listening) -> None:
    served, x = listening
    body = _good(x, 2)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 50]), body[i:i + 50]) for i in range(0, len(body), 50))
    data = request("POST", "/invocations", b"", {"Content-Type": "application/json",
                                                   "Transfer-Encoding": "chunked"}) + chunked + b"0\r\n\r\n"
    answers, _ = served.run(served.exchange(data))
    expected = served.run(_raw(served.server, "POST", "/invocations", body, [(b"content-type", b"application/json")]))
    assert answers[0][0] == 200 and answers[0][2] == expected[2]

    async def expecting() -> tuple[bytes, list[Answer]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(request("POST", "/invocations", b"", {"Content-Type": "application/json", "Expect": "100-continue",
                                                           "Content-Length": str(len(body))}))
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # before any byte of the body
        writer.write(body)
        answered = await read_answers(reader, 1)
        writer.close()
        return interim, answered

    interim, answered = served.run(expecting())
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n" and answered[0][0] == 200


def test_malformed_http_is_a_json_400_then_close_and_the_server_keeps_serving(listening) -> None:
    served, x = listening
    for data in (b"NOT HTTP AT ALL\r\n\r\n", b"POST /invocations HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                 b"GET /ping HTTP/1.1\r\nBad Header\r\n\r\n", b"GET /p\x00ing HTTP/1.1\r\n\r\n"):
        answers, closed = served.run(served.exchange(data))
        assert answers[0][0] == 400 and closed, (data, answers)
        error = json.loads(answers[0][2])
        assert error["error_code"] == "BAD_REQUEST" and error["message"].startswith("malformed HTTP request")
    answers, _ = served.run(served.exchange(request("POST", "/invocations", _good(x),
                                                    {"Content-Type": "application/json"})))
    assert answers[0][0] == 200


def test_a_body_over_the_limit_is_413_read_up_to_four_times_the_limit_else_closed(trained) -> None:
    _, directory, x = trained
    served = Listening(directory, MAX_BODY_BYTES="1000")
    try:
        over = b"x" * 1001
        answers, closed = served.run(served.exchange(
            request("POST", "/invocations", over, {"Content-Type": "text/csv"})
            + request("POST", "/invocations", _good(x), {"Content-Type": "application/json"}), count=2))
        assert [a[0] for a in answers] == [413, 200] and not closed  # read and discarded: the connection goes on
        assert json.loads(answers[0][2])["message"] == "the body is over the limit of 1000 bytes"
        far = request("POST", "/invocations", b"", {"Content-Type": "text/csv", "Content-Length": "4001"})
        answers, closed = served.run(served.exchange(far))  # announced past 4x: answered at once, then closed
        assert answers[0][0] == 413 and closed
        chunk = b"%x\r\n%s\r\n" % (1000, b"y" * 1000)
        chunked = request("POST", "/invocations", b"", {"Transfer-Encoding": "chunked", "Content-Type": "text/csv"})
        answers, closed = served.run(served.exchange(chunked + chunk * 5))  # no length: counted as it comes
        assert answers[0][0] == 413 and closed
        expect = request("POST", "/invocations", b"", {"Content-Length": "2000", "Expect": "100-continue"})
        answers, closed = served.run(served.exchange(expect))  # refused before the client sends it
        assert answers[0][0] == 413 and closed
        assert not served.errors, served.errors
    finally:
        served.close()


def test_a_request_slower_than_the_timeout_is_408_and_a_stuck_model_504(trained, monkeypatch) -> None:
    _, directory, x = trained
    served = Listening(directory, SAGEMAKER_MODEL_SERVER_TIMEOUT="0.3")
    try:
        head = request("POST", "/invocations", b"", {"Content-Type": "application/json", "Content-Length": "50"})
        began = time.monotonic()
        answers, closed = served.run(served.exchange([head, b'{"dataframe'], pause=1.0))
        assert answers[0][0] == 408 and closed and time.monotonic() - began < 3
        assert "did not arrive within 0.3 s" in json.loads(answers[0][2])["message"]
        _slow_model(served, monkeypatch, 0.8)
        answers, closed = served.run(served.exchange(request("POST", "/invocations", _good(x),
                                                             {"Content-Type": "application/json"})))
        assert answers[0][0] == 504 and not closed
        assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" in json.loads(answers[0][2])["message"]
        served.run(asyncio.sleep(1.0))  # the stuck call ends; its late answer is dropped
        monkeypatch.undo()
        answers, _ = served.run(served.exchange(request("POST", "/invocations", _good(x),
                                                        {"Content-Type": "application/json"})))
        assert answers[0][0] == 200
        assert not served.errors, served.errors
    finally:
        served.close()


def test_keep_alive_http_1_0_connection_close_and_shutdown(trained) -> None:
    _, directory, x = trained
    served = Listening(directory, keep_alive=0.3)
    try:
        good = request("POST", "/invocations", _good(x), {"Content-Type": "application/json"})

        async def idle() -> tuple[float, bool]:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(good)
            await read_answers(reader, 1)
            began = time.monotonic()
            closed = await asyncio.wait_for(reader.read(1), 3) == b""
            writer.close()
            return time.monotonic() - began, closed

        waited, closed = served.run(idle())
        assert closed and 0.2 < waited < 1.5  # the keep-alive timeout
        answers, closed = served.run(served.exchange(request("POST", "/invocations", _good(x),
                                                             {"Content-Type": "application/json"}, version="1.0")))
        assert answers[0][0] == 200 and answers[0][1][b"connection"] == b"close" and closed
        answers, closed = served.run(served.exchange(good.replace(b"Host: test", b"Host: test\r\nConnection: close")))
        assert answers[0][0] == 200 and closed

        async def shutting_down() -> tuple[list[Answer], bool, bool]:
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", served.port)
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(good[:-5])  # a request in progress when the shutdown comes
            await asyncio.sleep(0.1)
            for connection in list(served.state.connections):
                connection.shutdown()  # what uvicorn does to each connection on SIGTERM
            idle_closed = await asyncio.wait_for(idle_reader.read(1), 2) == b""
            writer.write(good[-5:])
            answers = await read_answers(reader, 1)
            busy_closed = await asyncio.wait_for(reader.read(1), 2) == b""
            idle_writer.close()
            writer.close()
            return answers, idle_closed, busy_closed

        answers, idle_closed, busy_closed = served.run(shutting_down())
        assert idle_closed and busy_closed and answers[0][0] == 200  # answered, then closed
        assert answers[0][1][b"connection"] == b"close"
        assert not served.errors, served.errors
    finally:
        served.close()


def test_a_client_gone_mid_request_or_a_bug_of_ours_leaves_the_server_serving(listening, monkeypatch) -> None:
    served, x = listening
    good = request("POST", "/invocations", _good(x), {"Content-Type": "application/json"})

    async def vanish() -> None:
        for cut in (10, len(good) - 5, len(good)):
            _, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(good[:cut])
            await writer.drain()
            writer.close()
        await asyncio.sleep(0.2)

    served.run(vanish())
    assert served.run(served.exchange(good))[0][0][0] == 200

    def broken(body, content_type):
        raise RuntimeError("a bug")

    monkeypatch.setattr(served.server, "read_rows", broken)
    answers, closed = served.run(served.exchange(good))
    assert answers[0][0] == 500 and not closed
    assert json.loads(answers[0][2]) == {"error_code": "INTERNAL_ERROR",
                                         "message": "the server failed on this request; see its log"}
    monkeypatch.undo()
    assert served.run(served.exchange(good))[0][0][0] == 200


def test_a_long_pipeline_answered_at_once_is_answered_whole_and_in_order(listening) -> None:
    served, x = listening
    bad = request("POST", "/invocations", b"x", {"Content-Type": "application/json"})
    data = request("POST", "/invocations", _good(x), {"Content-Type": "application/json"}) + bad * 400
    answers, closed = served.run(served.exchange(data, count=401))
    assert [a[0] for a in answers] == [200] + [400] * 400 and not closed
    assert not served.server.deadlines.active  # every request's deadline ended with its answer


def test_100_continue_comes_after_the_responses_due_before_it(listening, monkeypatch) -> None:
    served, x = listening
    _slow_model(served, monkeypatch, 0.3)
    body = _good(x)

    async def scenario() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(request("POST", "/invocations", body, {"Content-Type": "application/json"})
                     + request("POST", "/invocations", b"", {"Content-Type": "application/json",
                                                             "Expect": "100-continue",
                                                             "Content-Length": str(len(body))}))
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        return first

    assert served.run(scenario()).startswith(b"HTTP/1.1 200 OK")  # not the second request's 100


def test_request_targets_and_headers_read_as_the_app_reads_them(listening) -> None:
    served, x = listening
    twice = request("GET", "/ping").replace(b"Host: test", b"Host: test\r\nX-Request-Id: first\r\nX-Request-Id: second")
    scoring = request("POST", "/invocations", _good(x), {"Content-Type": "application/json"}).replace(
        b"Host: test", b"Host: test\r\nX-Request-Id: first\r\nX-Request-Id: second")
    answers, _ = served.run(served.exchange(twice + scoring, count=2))
    assert [a[1][b"x-request-id"] for a in answers] == [b"first", b"first"]  # the app and the quick path agree
    answers, _ = served.run(served.exchange(request("POST", "/invocations#part", _good(x),
                                                    {"Content-Type": "application/json"})))
    assert answers[0][0] == 200  # a fragment is not part of the path
    answers, closed = served.run(served.exchange(b"GET http://host HTTP/1.1\r\nHost: host\r\n\r\n"))
    assert answers[0][0] == 400 and "not a valid URL" in json.loads(answers[0][2])["message"]
    h2c = {"Content-Type": "application/json", "Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c",
           "HTTP2-Settings": "AAMAAABkAAQAAP__"}
    for upgrade in (request("POST", "/invocations", _good(x), h2c),
                    b"CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n"):
        answers, closed = served.run(served.exchange(upgrade))
        assert answers[0][0] == 400 and closed and "upgrades" in json.loads(answers[0][2])["message"]
