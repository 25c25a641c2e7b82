"""The inference server as a plain ASGI app: no framework between the socket and the model.

In the image it runs under uvicorn with this package's own HTTP/1.1 protocol (serving/protocol.py),
which answers a small scoring request from the pieces below (`quick`, `output_for`, `read_rows`, the
batcher) without an ASGI task, and hands every other request to this app with its body read.

Routes follow the SageMaker contract (`GET`/`HEAD /ping`, `POST /invocations`, and Batch
Transform's `GET /execution-parameters`); on Azure ML set LIVENESS_ROUTE, READINESS_ROUTE and
SCORING_ROUTE. Readiness turns healthy only once the model is loaded and a warm-up prediction
succeeded, and unhealthy again while a model call runs past the timeout.

Errors are MLflow's body, `{"error_code": ..., "message": ...}`: 400 for input the server cannot
score, 413 for a body over the limit, 415 for another content type, 408 for a body that does not
arrive within the timeout, 503 while the model is unavailable, 504 for a request past the timeout.
A variant reading online features (serving/online_features.py) adds 404 for a record id the store
does not hold, 504 when the store does not answer in time and 503 when it fails.
A client's mistake is never a 5xx, and the server keeps serving. Each request gets an id (the
client's `X-Request-Id`, or a new one), answered in `X-Request-Id` and written to the access log.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import formats, online_features, settings
from .access import AccessLog
from .batching import Batcher
from .model import LoadedModel, compile_fast_path, default_uri, load, warm_up

log = logging.getLogger("serving")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
OFF_LOOP_BYTES = 64 * 1024  # bodies above this are parsed in a thread, so /ping stays responsive
OFF_LOOP_ROWS = 2000  # answers above this are serialised in a thread
FAILED = "the server failed on this request; see its log"  # the 500's message: a bug of ours
ERROR_CODES = {400: "BAD_REQUEST", 404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST", 408: "DEADLINE_EXCEEDED",
               413: "BAD_REQUEST", 415: "BAD_REQUEST", 500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE",
               504: "DEADLINE_EXCEEDED"}


class Server:
    """One worker process's ASGI app: it loads the model in the background (so the port answers
    /ping from the first second), then batches the requests of this process into model calls."""

    def __init__(self, model_uri: str, config: settings.Settings | None = None):
        self.model_uri = model_uri
        self.settings = config or settings.load()
        self.model: LoadedModel | None = None
        self.batcher: Batcher | None = None
        self.error: str | None = None
        self.compiling = False
        self.started = time.monotonic()
        self.liveness = os.environ.get("LIVENESS_ROUTE", "/ping")
        self.readiness = os.environ.get("READINESS_ROUTE", "/ping")
        self.scoring = os.environ.get("SCORING_ROUTE", "/invocations")
        self.compile = os.environ.get("SERVING_ENGINE", "auto") == "auto"  # `sklearn` keeps scikit-learn only
        self.access = AccessLog()
        self.deadlines = Deadlines(self.settings.timeout)
        # Request ids: 64 random bits per process, then a counter; as unique as os.urandom(16) per
        # request and a third of its cost. Same 32 hex digits.
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count(int.from_bytes(os.urandom(4), "big"))
        self.unseen: dict[str, int] = {}  # categories training never saw, per column, since start
        self.online = online_features.load()  # None unless the variant reads features from the online store

    async def startup(self) -> None:
        try:
            model = await asyncio.to_thread(load, self.model_uri)
            if self.online is not None:  # ONLINE_FEATURES against the model's columns: a misfit shows on /ping
                self.online.plan(model.columns)
            await asyncio.to_thread(warm_up, model)
        except Exception as exc:  # an unloadable model: report it on /ping rather than crash-loop silently
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model %s failed to load: %s", self.model_uri, self.error)
            return
        _freeze()
        self.batcher = Batcher(model.predict, inline=model.cheap)
        self.batcher.start()
        self.model = model
        log.info("model %s ready in %.2f s (pid %d)", self.model_uri, time.monotonic() - self.started, os.getpid())
        if self.compile:
            self.compiling = True
            try:
                log.info(await asyncio.to_thread(compile_fast_path, model))
                _freeze()
            finally:
                self.compiling = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        began = time.perf_counter()
        request_id = self.request_id(_header(scope, b"x-request-id"))
        reply = _Reply(send, request_id)
        try:
            await self.route(scope, receive, reply)
        except Exception:  # a bug of ours: say so as JSON, log it, keep serving
            log.exception("request %s failed", request_id)
            if not reply.started:
                await reply.error(500, FAILED)
        self.access.write(request_id, scope["method"], scope["path"], reply.status,
                          (time.perf_counter() - began) * 1000, reply.note)

    def new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids) & 0xFFFFFFFFFFFFFFFF:016x}"

    def request_id(self, given: str) -> str:
        """The client's X-Request-Id if it is one (it is echoed in a header and the log: no odd bytes),
        else a new one."""
        return given if given and REQUEST_ID.fullmatch(given) else self.new_id()

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                asyncio.get_running_loop().create_task(self.startup())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.batcher is not None:
                    await self.batcher.stop()
                self.access.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def route(self, scope: Scope, receive: Receive, reply: _Reply) -> None:
        path, method = scope["path"], scope["method"]
        if path in (self.liveness, self.readiness):
            if method not in ("GET", "HEAD"):
                await reply.error(405, f"{path} takes GET or HEAD")
                return
            status, body = self.health(path)
            await reply.send(status, json.dumps(body).encode(), "application/json")
            return
        if path == "/execution-parameters" and method == "GET":
            await reply.send(200, json.dumps(self.execution_parameters()).encode(), "application/json")
            return
        if path != self.scoring:
            await reply.error(404, f"no route {path}; score with POST {self.scoring}")
            return
        if method != "POST":
            await reply.error(405, f"{path} takes POST")
            return
        await self.invocations(scope, receive, reply)

    def health(self, path: str) -> tuple[int, dict[str, Any]]:
        if self.model is None:
            if path == self.liveness != self.readiness:  # alive while loading; not ready yet
                return 200, {"status": "alive"}
            return 503, ({"status": "failed", "error": self.error} if self.error else {"status": "loading"})
        busy = self.batcher.busy_for() if self.batcher else 0.0
        if busy > self.settings.timeout:
            return 503, {"status": "stuck", "error": f"a model call has run for {busy:.0f} s, past the timeout of "
                                                     f"{self.settings.timeout:g} s", "engine": self.model.engine}
        usage = {} if self.batcher is None else self.batcher.usage()  # how requests batch; the model's CPU
        return 200, {"status": "healthy", "engine": self.model.engine, "compiling": self.compiling,
                     "unseen_categories": self.unseen, **usage}

    def execution_parameters(self) -> dict[str, Any]:
        """What Batch Transform asks before sending: one request per worker, as many records per
        request as fit in the body limit."""
        return {"MaxConcurrentTransforms": self.settings.workers, "BatchStrategy": self.settings.batch_strategy,
                "MaxPayloadInMB": self.settings.max_payload_mb}

    def quick(self, method: str, path: str, size: int) -> bool:
        """Whether serving/protocol.py may score this request itself, from the parser's callback and
        without an ASGI task: a small POST to the scoring route of a loaded model that reads no online
        features. Its answers are the same as through __call__ (the same pieces below, tested)."""
        return (method == "POST" and path == self.scoring and size <= OFF_LOOP_BYTES and self.model is not None
                and self.batcher is not None and self.online is None)

    def output_for(self, content_type: str, accept: str) -> str:
        """The answer's media type: what Accept asks for, else the request's own kind (JSON Lines answer
        JSON Lines), else JSON. 406 when Accept names nothing the server writes."""
        if not accept and content_type == "application/json":  # the common request
            return "application/json"
        kind = formats.media_type(content_type)[0]
        output = formats.choose(accept, "application/jsonlines" if kind in formats.JSONLINES_TYPES
                                else "application/json")
        if output is None:
            raise formats.ClientError(406, f"cannot answer in {accept!r}; accept {', '.join(formats.OUTPUTS)}")
        return output

    def unavailable(self) -> str:
        """Why there is no model to score with (the 503's message)."""
        return "the model is not loaded yet" if self.error is None else f"the model failed to load: {self.error}"

    async def invocations(self, scope: Scope, receive: Receive, reply: _Reply) -> None:
        content_type, accept, length = "application/json", "", ""
        for key, value in scope["headers"]:  # the three headers used, in one pass (the last one wins)
            key = key.lower()
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"accept":
                accept = value.decode("latin-1")
            elif key == b"content-length":
                length = value.decode("latin-1")
        reading = True  # which deadline passed: the client's body (408) or our answer (504)
        task = asyncio.current_task()
        assert task is not None
        self.deadlines.start(task)
        expired = False
        try:
            try:
                body = await self.read_body(length, receive)
                reading = False
                if self.model is None or self.batcher is None:
                    await reply.error(503, self.unavailable())
                    return
                await self.score(body, content_type, self.output_for(content_type, accept), reply)
            finally:
                expired = self.deadlines.finish(task)
        except formats.ClientError as exc:
            await reply.error(exc.status, exc.message, exc.error_code)
        except online_features.StoreError as exc:  # 504/503: the online store did not answer in time, or failed
            await reply.error(exc.status, exc.message)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not expired:
                raise  # cancelled by someone else (shutdown): not ours to answer
            if reading:
                await reply.error(408, f"the body did not arrive within {self.settings.timeout:g} s")
            else:
                await reply.error(504, self.late())

    def late(self) -> str:
        """The 504's message."""
        return f"no answer within the timeout of {self.settings.timeout:g} s (SAGEMAKER_MODEL_SERVER_TIMEOUT)"

    async def read_body(self, content_length: str, receive: Receive) -> bytes:
        limit = self.settings.max_body
        try:
            length = int(content_length or 0)
        except ValueError:
            raise formats.ClientError(400, "the Content-Length header is not a number") from None
        if length > limit:
            if length <= 4 * limit:  # read it, so the client gets the answer rather than a reset
                await _drain(receive)
            raise formats.ClientError(413, f"the body is over the limit of {limit} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise formats.ClientError(413, f"the body is over the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def read_rows(self, body: bytes, content_type: str) -> tuple[formats.Rows, dict[str, int]]:
        """The checked rows, and the count of unseen categories per column (both per row: a thread's work
        for a large body)."""
        assert self.model is not None
        rows = formats.parse(body, content_type, self.model.columns)
        return rows, self.model.unseen(rows)

    def count_unseen(self, unseen: dict[str, int]) -> str:
        """Adds a request's unseen categories to the totals /ping reports; the access log's note."""
        if not unseen:
            return ""
        for name, count in unseen.items():
            self.unseen[name] = self.unseen.get(name, 0) + count
        return "unseen=" + ",".join(unseen)

    async def score(self, body: bytes, content_type: str, output: str, reply: _Reply) -> None:
        assert self.model is not None and self.batcher is not None
        if self.online is not None:  # ids in the request, the rest from the store (serving/online_features.py)
            rows = await asyncio.to_thread(self.online.read, body, content_type, self.model.columns)
            unseen = self.model.unseen(rows)
        elif len(body) > OFF_LOOP_BYTES:
            rows, unseen = await asyncio.to_thread(self.read_rows, body, content_type)
        else:
            rows, unseen = self.read_rows(body, content_type)
        reply.note = self.count_unseen(unseen)
        try:
            labels, proba = await self.batcher.submit(rows)
        except Exception as exc:
            raise unscorable(exc) from None
        if len(rows) > OFF_LOOP_ROWS:
            payload, answer_type = await asyncio.to_thread(formats.answer, labels, proba, output)
        else:
            payload, answer_type = formats.answer(labels, proba, output)
        await reply.send(200, payload, answer_type)


def unscorable(exc: BaseException) -> formats.ClientError:
    """Checked rows the model itself rejects are still the client's input: a 400 naming the model's reason."""
    return formats.ClientError(400, f"the model could not score the input: {exc}")


class Deadlines:
    """Per-request timeouts for one worker, as `asyncio.timeout` gives them, at a tenth of its cost.

    asyncio.timeout arms and cancels a loop timer per request (8 us on uvloop, a tenth of this
    server's whole per-request work). The timeout is the same for every request, so deadlines
    expire in the order requests started: they are kept in an insertion-ordered dict, and one timer
    runs at the earliest deadline, expires each entry past its own and re-arms at the next.

    A task (the ASGI path) is cancelled, and a cancellation it caused is told apart from any other
    with `Task.uncancel`, as asyncio.timeout does. Any other waiter (serving/protocol.py's requests,
    which have no task) has its `expire()` called.
    """

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.active: dict[Any, tuple[float, int | None]] = {}  # task -> (deadline, cancelling() at start)
        self.fired: dict[asyncio.Task[Any], int] = {}  # tasks this cancelled -> cancelling() at start
        self.handle: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, task: asyncio.Task[Any]) -> None:
        self._arm(task, task.cancelling(), task.get_loop())

    def watch(self, waiter: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Calls `waiter.expire()` once the timeout has passed, unless `drop(waiter)` comes first."""
        self._arm(waiter, None, loop)

    def drop(self, waiter: Any) -> None:
        self.active.pop(waiter, None)

    def _arm(self, key: Any, cancelling: int | None, loop: asyncio.AbstractEventLoop) -> None:
        deadline = loop.time() + self.timeout
        self.active[key] = (deadline, cancelling)
        if self.handle is None or self.loop is not loop:
            self.loop, self.handle = loop, loop.call_at(deadline, self._fire)

    def finish(self, task: asyncio.Task[Any]) -> bool:
        """Whether this task's deadline passed (its CancelledError is then a timeout); ends its deadline."""
        self.active.pop(task, None)
        cancelling = self.fired.pop(task, None)
        return cancelling is not None and task.uncancel() <= cancelling

    def _fire(self) -> None:
        assert self.loop is not None
        self.handle = None
        now = self.loop.time()
        late = []
        for key, (deadline, cancelling) in self.active.items():
            if deadline > now:
                self.handle = self.loop.call_at(deadline, self._fire)
                break
            late.append((key, cancelling))
        for key, cancelling in late:
            del self.active[key]
            if cancelling is None:
                try:
                    key.expire()
                except Exception:  # a bug of ours in one waiter must not keep the others past their deadline
                    log.exception("expiring a request failed")
            else:
                self.fired[key] = cancelling
                key.cancel()


class _Reply:
    """One response: remembers its status for the access log and carries the request id."""

    __slots__ = ("_send", "note", "request_id", "started", "status")

    def __init__(self, send: Send, request_id: str):
        self._send = send
        self.request_id = request_id.encode("latin-1", "replace")
        self.status = 0
        self.started = False
        self.note = ""  # appended to the access log line

    async def send(self, status: int, body: bytes, content_type: str) -> None:
        self.status, self.started = status, True
        await self._send({"type": "http.response.start", "status": status,
                          "headers": [(b"content-type", content_type.encode()),
                                      (b"content-length", str(len(body)).encode()),
                                      (b"x-request-id", self.request_id)]})
        await self._send({"type": "http.response.body", "body": body})

    async def error(self, status: int, message: str, error_code: str | None = None) -> None:
        await self.send(status, error_body(status, message, error_code), "application/json")


def error_body(status: int, message: str, error_code: str | None = None) -> bytes:
    """MLflow's error body."""
    return json.dumps({"error_code": error_code or ERROR_CODES.get(status, "BAD_REQUEST"), "message": message}).encode()


def _freeze() -> None:
    """Move the loaded model's objects out of the garbage collector's sight. Otherwise each full
    collection, which the rows of a large body trigger, walks every tree of the model with the GIL
    held: /ping waited 100-200 ms behind one while a 6 MB body was parsed."""
    gc.collect()
    gc.freeze()


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


async def _drain(receive: Receive) -> None:
    while (await receive()).get("more_body"):
        pass


SWITCH_INTERVAL = 0.0005  # seconds; Python's default 0.005 lets a parsing thread delay /ping by 5 ms a step


def create_app() -> Server:
    """The app for `uvicorn --factory`: each worker process builds its own server from MODEL_URI, or,
    in SageMaker's multi-model mode (settings.multi_model), one process serves the models SageMaker
    loads into it (serving/multi_model.py).

    The event loop shares the GIL with the threads that parse large bodies and run the model: a
    shorter switch interval makes them hand it back sooner, so /ping stays fast during a 6 MB body."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    config = settings.load()
    if config.multi_model:
        from .multi_model import MultiModelServer  # a subclass of Server: imported here, not at the top

        return MultiModelServer(config)
    return Server(default_uri(), config)
