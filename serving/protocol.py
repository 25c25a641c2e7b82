"""The HTTP/1.1 connection: httptools under uvicorn's server, with no ASGI task for a scoring request.

uvicorn still runs the processes, the socket, signals, the lifespan and graceful shutdown; this
replaces only its per-connection protocol (`uvicorn.run(http="serving.protocol:Connection")`).
Measured on this machine under wrk: uvicorn's own protocol costs about 25 us a request for an app
that answers a constant body (a scope dict, a task, a receive and two send messages), as much as
everything this server does for a prediction; a bare protocol on httptools costs about 8.

So a small POST to the scoring route of a loaded model (`Server.quick`) is parsed and queued for the
batcher from the parser's callback, and its response written from the batcher's: no task, no
future, no ASGI message. Its answer is the one the app gives (the same pieces of serving/app.py; a
test compares the two paths on generated bodies). Every other request (/ping, /execution-parameters,
errors, large bodies, online features, multi-model) goes to the ASGI app with its body already read,
so each route is still written once, in the app.

The protocol itself enforces: the body limit (413; a body up to 4x the limit is read and discarded
so the client gets the answer, a larger one closes the connection), the time to receive a request
(408, then close), malformed HTTP (400, then close), one request at a time per connection and in
order (pipelined requests wait, with reading paused), `Expect: 100-continue`, HTTP/1.0 and
`Connection: close`, the keep-alive timeout, and uvicorn's shutdown. Every error is MLflow's body.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
import urllib.parse
from collections import deque
from typing import Any

import httptools

from . import formats
from .app import FAILED, OFF_LOOP_ROWS, Server, error_body, unscorable

log = logging.getLogger("serving")

REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b""))


STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}


class Request:
    """One request of a connection, from its first byte to its response. It is also what the batcher
    answers (serving/batching.py's Waiter) and what the deadlines expire."""

    __slots__ = ("accept", "answered", "began", "body", "connection", "content_type", "continue_due", "error",
                 "expect", "headers", "keep_alive", "length", "method", "note", "output", "over", "path", "query",
                 "reading", "request_id", "rows", "size", "url", "version")

    def __init__(self, connection: Connection):
        self.connection = connection
        self.began = time.perf_counter()
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_type = "application/json"
        self.accept = self.request_id = self.length = self.note = self.method = self.path = ""
        self.query = b""
        self.version = "1.1"
        self.expect = self.over = self.continue_due = False
        self.keep_alive = True
        self.reading = True  # until the body is complete: a deadline then is a 408, later a 504
        self.answered = False
        self.body: list[bytes] = []
        self.size = 0
        self.rows = 0
        self.output = "application/json"
        self.error: tuple[int, str] | None = None  # known before dispatch (413, 408, 400): answered in turn

    # serving/batching.py's Waiter
    def done(self) -> bool:
        return self.answered

    def set_result(self, result: tuple[Any, Any]) -> None:
        labels, proba = result
        if self.rows > OFF_LOOP_ROWS:  # a long answer is serialised in a thread, as in the app
            future = asyncio.get_running_loop().run_in_executor(None, formats.answer, labels, proba, self.output)
            future.add_done_callback(self._serialised)
            return
        try:
            payload, kind = formats.answer(labels, proba, self.output)
        except Exception:
            log.exception("request %s failed", self.request_id)
            self.connection.answer_error(self, 500, FAILED)
            return
        self.connection.answer(self, 200, payload, kind)

    def _serialised(self, future: asyncio.Future[tuple[bytes, str]]) -> None:
        if future.cancelled() or future.exception() is not None:
            log.error("request %s failed: %r", self.request_id, None if future.cancelled() else future.exception())
            self.connection.answer_error(self, 500, FAILED)
            return
        self.connection.answer(self, 200, *future.result())

    def set_exception(self, exception: BaseException) -> None:
        error = unscorable(exception)
        self.connection.answer_error(self, error.status, error.message, error.error_code)

    # serving/app.py's Deadlines
    def expire(self) -> None:
        self.connection.expired(self)


class Connection(asyncio.Protocol):
    """One client connection, created by uvicorn's server for each accepted socket."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None):
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.server = _server_of(self.app)
        self.loop = _loop or asyncio.get_event_loop()
        self.state = server_state
        self.app_state = app_state
        self.keep_alive_timeout = float(config.timeout_keep_alive)
        self.limit = self.server.settings.max_body
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.peer: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None
        self.request: Request | None = None  # being read
        self.current: Request | None = None  # being answered
        self.waiting: deque[Request] = deque()  # read, waiting for the current one's response
        self.closing = False  # close once the current response is written
        self.write_paused = False
        self.read_paused = False
        self._advancing = False  # _next's loop is running
        self.idle_timer: asyncio.TimerHandle | None = None
        self.last_answer = 0.0
        self._defaults_from: Any = None
        self._defaults = b""

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:  # uvloop's transports are not asyncio.Transport
        self.state.connections.add(self)
        self.transport = transport
        self.peer = _address(transport.get_extra_info("peername"))
        self.local = _address(transport.get_extra_info("sockname"))
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self.transport = None
        for request in (self.request, self.current, *self.waiting):
            if request is not None:
                request.answered = True  # the batcher and the deadlines skip it
                self.server.deadlines.drop(request)
        self.waiting.clear()
        self.request = self.current = None
        self.parser = None
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def data_received(self, data: bytes) -> None:
        if self.parser is None:  # a fatal error is being answered: the rest is not read
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # refused in on_headers_complete; should it still come: close
            self.closing = True
            if self.current is None and not self.waiting and self.transport is not None:
                self.transport.close()
        except httptools.HttpParserError as exc:
            if self.parser is None:  # a callback already failed the connection and stopped the parser
                return
            cause = exc.__cause__ or exc.__context__
            if isinstance(exc, httptools.HttpParserCallbackError) and cause is not None:
                log.error("a parser callback failed", exc_info=cause)  # a bug of ours, not the client's
                self.fail(500, FAILED)
            else:
                self.fail(400, f"malformed HTTP request: {_reason(exc)}")

    def pause_writing(self) -> None:
        self.write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flow()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close now if idle, else after the response in progress."""
        self.closing = True
        reading = self.request is not None and self.request.method != ""  # its headers are in: let it finish
        if self.current is None and not reading and self.transport is not None:
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        request = self.request = Request(self)
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        self.server.deadlines.watch(request, self.loop)

    def on_url(self, url: bytes) -> None:
        assert self.request is not None
        self.request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.request is not None
        self.request.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        request, parser = self.request, self.parser
        assert request is not None and parser is not None
        request.method = parser.get_method().decode("ascii")
        request.version = parser.get_http_version()
        request.keep_alive = request.version != "1.0" and parser.should_keep_alive()
        if parser.should_upgrade():  # httptools would skip the body and hand us the new protocol's bytes
            self.fail(400, "protocol upgrades and CONNECT are not supported: send plain HTTP/1.1 "
                           "(without Upgrade in the Connection header)")
            raise _Stopped
        for name, value in request.headers:  # the headers used here, in one pass (the last one wins)
            if name == b"content-type":
                request.content_type = value.decode("latin-1")
            elif name == b"accept":
                request.accept = value.decode("latin-1")
            elif name == b"content-length":
                request.length = value.decode("latin-1")
            elif name == b"x-request-id" and not request.request_id:  # the first, as the app reads it
                request.request_id = value.decode("latin-1")
            elif name == b"expect":
                request.expect = value.lower() == b"100-continue"
        target = request.url
        if target[:1] == b"/" and b"?" not in target and b"%" not in target and b"#" not in target \
                and target.isascii():
            request.path = target.decode("ascii")  # the common target: nothing to split or unquote
        else:
            try:
                url = httptools.parse_url(target)
                if url.path is None:  # an absolute URL without a path, or a CONNECT authority
                    raise httptools.HttpParserInvalidURLError("no path")
                path = url.path.decode("ascii")
            except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
                request.error = (400, "the request target is not a valid URL")
                return
            request.path = urllib.parse.unquote(path) if "%" in path else path
            request.query = url.query or b""
        length = int(request.length) if request.length.isdigit() else 0  # httptools refused any other value
        if length > self.limit:
            request.over = True
            if length > 4 * self.limit or request.expect:  # not worth reading, or not yet sent: answer, then close
                self.fail(413, self._over())
                raise _Stopped
        if request.expect and request.version != "1.0" and self.transport is not None:
            if self.current is None and not self.waiting:
                self.transport.write(CONTINUE)
            else:  # a 100 now would come before the responses still due: written after them (_next)
                request.continue_due = True

    def on_body(self, body: bytes) -> None:
        request = self.request
        assert request is not None
        request.size += len(body)
        if request.over:
            if request.size > 4 * self.limit:
                self.fail(413, self._over())
                raise _Stopped
            return
        if request.size > self.limit:
            request.over, request.body = True, []
            return
        request.body.append(body)

    def on_message_complete(self) -> None:
        request = self.request
        assert request is not None
        self.request = None
        request.reading = False
        if request.over:
            request.error = (413, self._over())
        if self.current is None:
            self.dispatch(request)
        else:  # pipelined: answered in order, after the one in progress
            self.waiting.append(request)
            self._flow()

    # answering
    def dispatch(self, request: Request) -> None:
        """Starts answering a complete request: a known error, the quick scoring path, or the app."""
        self.current = request
        if request.answered:  # expired while it waited behind another
            self._next()
            return
        try:
            self._start(request)
        except Exception:  # a bug of ours: say so as JSON, log it, keep serving
            log.exception("request %s %s failed", request.method, request.path)
            self.answer_error(request, 500, FAILED)

    def _start(self, request: Request) -> None:
        if request.error is not None:
            self.server.deadlines.drop(request)
            self.answer_error(request, *request.error)
            return
        body = request.body[0] if len(request.body) == 1 else b"".join(request.body)
        request.body = []
        if self.server.quick(request.method, request.path, len(body)):
            self._score(request, body)
            return
        self.server.deadlines.drop(request)  # the app keeps its own deadline
        task = self.loop.create_task(self._asgi(request, body))
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)

    def _score(self, request: Request, body: bytes) -> None:
        server = self.server
        assert server.batcher is not None
        request.request_id = server.request_id(request.request_id)  # before the batch: its errors log it
        try:
            request.output = server.output_for(request.content_type, request.accept)
            rows, unseen = server.read_rows(body, request.content_type)
        except formats.ClientError as exc:
            self.answer_error(request, exc.status, exc.message, exc.error_code)
            return
        request.note = server.count_unseen(unseen)
        request.rows = len(rows)
        server.batcher.enqueue(rows, request, self.loop)  # answered from Request.set_result

    def expired(self, request: Request) -> None:
        if request.answered:
            return
        if request.reading:  # the client's request did not arrive in time
            self.fail(408, f"the request did not arrive within {self.server.settings.timeout:g} s")
        elif request is self.current:
            self.answer_error(request, 504, self.server.late())
        else:  # waiting behind another: answered in turn
            request.error = (504, self.server.late())

    def fail(self, status: int, message: str) -> None:
        """An error after which the connection is not read again: the request being read is answered
        with it in turn, then the connection closes."""
        request = self.request or Request(self)
        self.request = None
        self.parser = None
        self.server.deadlines.drop(request)
        request.reading, request.error, request.keep_alive = False, (status, message), False
        if self.current is None:
            self.dispatch(request)
        else:
            self.waiting.append(request)
            self._flow()

    def answer_error(self, request: Request, status: int, message: str, error_code: str | None = None) -> None:
        self.answer(request, status, error_body(status, message, error_code), "application/json")

    def answer(self, request: Request, status: int, body: bytes, content_type: str,
               headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Writes the response of the current request, logs it, and goes on with the next."""
        if request.answered:
            return
        request.answered = True
        self.server.deadlines.drop(request)
        status_line = STATUS_LINES.get(status) or _status_line(status)
        if headers is None:  # ours: the app's responses carry their own content type, length and id
            request.request_id = self.server.request_id(request.request_id)
            head = b"%scontent-type: %s\r\ncontent-length: %d\r\nx-request-id: %s\r\n" % (
                status_line, content_type.encode("latin-1"), len(body), request.request_id.encode("latin-1"))
        else:
            head = status_line + b"".join(b"%s: %s\r\n" % pair for pair in headers)
        close = self.closing or not request.keep_alive
        head += self._default_headers() + (b"connection: close\r\n\r\n" if close else b"\r\n")
        if self.transport is not None:
            self.transport.write(head if request.method == "HEAD" else head + body)
        if headers is None:  # the app logs its own
            self.server.access.write(request.request_id, request.method or "-", request.path or "-", status,
                                     (time.perf_counter() - request.began) * 1000, request.note)
        self.state.total_requests += 1
        if close:
            if self.transport is not None:
                self.transport.close()
            return
        self._next()

    def _next(self) -> None:
        """The current request is answered: start the waiting ones in turn. A loop, not a call from
        each answer to the next: a long pipeline of requests answered at once would recurse."""
        self.current = None
        if self._advancing:  # called from an answer inside the loop below: it goes on
            return
        self._advancing = True
        try:
            while self.current is None and self.waiting:
                self.dispatch(self.waiting.popleft())
        finally:
            self._advancing = False
        self._flow()
        if self.current is not None or self.transport is None:
            return
        if self.closing and self.request is None:
            self.transport.close()
            return
        request = self.request
        if request is not None and request.continue_due:  # its 100 waited for the responses before it
            request.continue_due = False
            self.transport.write(CONTINUE)
        self.last_answer = self.loop.time()
        if self.idle_timer is None and request is None:
            self._arm_idle()

    async def _asgi(self, request: Request, body: bytes) -> None:
        """The request through the app, its body already read."""
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": request.version,
                 "method": request.method, "scheme": "http", "path": request.path,
                 "raw_path": request.url.split(b"?", 1)[0], "query_string": request.query, "root_path": "",
                 "headers": request.headers, "client": self.peer, "server": self.local,
                 "state": self.app_state.copy()}
        sent = {"body": False}
        response: dict[str, Any] = {}
        parts: list[bytes] = []

        async def receive() -> dict[str, Any]:
            if not sent["body"]:
                sent["body"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            while not request.answered:  # only a disconnect is left to tell
                await asyncio.sleep(0.1)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response["status"], response["headers"] = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body" and "status" in response:
                parts.append(message.get("body", b""))
                if not message.get("more_body"):
                    payload = b"".join(parts)
                    headers = [(k.lower(), v) for k, v in response["headers"]]
                    if not any(k == b"content-length" for k, _ in headers):
                        headers.append((b"content-length", b"%d" % len(payload)))
                    self.answer(request, response["status"], payload, "", headers)

        try:
            await self.app(scope, receive, send)
        except Exception:  # a bug of ours the app did not catch: say so as JSON, keep serving
            log.exception("request %s %s failed", request.method, request.path)
        if not request.answered:
            self.answer_error(request, 500, FAILED)

    # connection state
    def _flow(self) -> None:
        """Reads while nothing waits and the client takes our responses; pauses otherwise."""
        pause = bool(self.waiting) or self.write_paused
        if self.transport is None or pause == self.read_paused:
            return
        self.read_paused = pause
        if pause:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _arm_idle(self) -> None:
        self.last_answer = self.loop.time()
        self.idle_timer = self.loop.call_later(self.keep_alive_timeout, self._idle)

    def _idle(self) -> None:
        """Closes a connection idle for the keep-alive timeout. One timer per timeout, not per request:
        when it fires after newer answers it re-arms for the rest."""
        self.idle_timer = None
        if self.transport is None or self.current is not None or self.request is not None:
            return
        left = self.last_answer + self.keep_alive_timeout - self.loop.time()
        if left > 0:
            self.idle_timer = self.loop.call_later(left, self._idle)
            return
        self.transport.close()

    def _default_headers(self) -> bytes:
        """uvicorn's date and server headers, re-joined only when its server changes them (each second)."""
        defaults = self.state.default_headers
        if defaults is not self._defaults_from:
            self._defaults_from = defaults
            self._defaults = b"".join(b"%s: %s\r\n" % pair for pair in defaults)
        return self._defaults

    def _over(self) -> str:
        return f"the body is over the limit of {self.limit} bytes"


class _Stopped(Exception):
    """Raised from a parser callback once the connection has failed: httptools stops parsing there."""


def _server_of(app: Any) -> Server:
    """The Server under uvicorn's middleware, if any wraps it."""
    while not isinstance(app, Server):
        inner = getattr(app, "app", None)
        if inner is None:
            raise TypeError(f"serving.protocol.Connection serves serving.app.Server, not {type(app).__name__}")
        app = inner
    return app


def _address(value: Any) -> tuple[str, int] | None:
    return (str(value[0]), int(value[1])) if isinstance(value, tuple) and len(value) >= 2 else None


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
