"""The inference server as a plain ASGI app: no framework between the socket and the model.

Routes follow the SageMaker contract (`GET /ping`, `POST /invocations`); on Azure ML set
LIVENESS_ROUTE, READINESS_ROUTE and SCORING_ROUTE. Readiness turns healthy only once the model
is loaded and a warm-up prediction succeeded. A client error is answered 400/413/415/422 with a
JSON message and never stops the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import formats
from .batching import Batcher
from .model import LoadedModel, compile_fast_path, load, warm_up

log = logging.getLogger("serving")
MAX_BODY = int(os.environ.get("MAX_BODY_BYTES", 6 * 1024 * 1024))  # SageMaker real-time's limit

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Server:
    def __init__(self, model_uri: str):
        self.model_uri = model_uri
        self.model: LoadedModel | None = None
        self.batcher: Batcher | None = None
        self.error: str | None = None
        self.compiling = False
        self.started = time.monotonic()
        self.liveness = os.environ.get("LIVENESS_ROUTE", "/ping")
        self.readiness = os.environ.get("READINESS_ROUTE", "/ping")
        self.scoring = os.environ.get("SCORING_ROUTE", "/invocations")

    async def startup(self) -> None:
        try:
            model = await asyncio.to_thread(load, self.model_uri)
            await asyncio.to_thread(warm_up, model)
        except Exception as exc:  # an unloadable model: report it on /ping rather than crash-loop silently
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model %s failed to load: %s", self.model_uri, self.error)
            return
        self.batcher = Batcher(model.predict)
        self.batcher.start()
        self.model = model
        log.info("model %s ready in %.2f s", self.model_uri, time.monotonic() - self.started)
        if os.environ.get("SERVING_ENGINE", "auto") == "auto":  # `sklearn` keeps scikit-learn only
            self.compiling = True
            try:
                log.info(await asyncio.to_thread(compile_fast_path, model))
            finally:
                self.compiling = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    asyncio.get_running_loop().create_task(self.startup())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path in (self.liveness, self.readiness) and method == "GET":
            ready = self.model is not None or path == self.liveness != self.readiness
            if ready:
                body: dict[str, Any] = {"status": "healthy", "engine": self.model.engine if self.model else None,
                                        "compiling": self.compiling}
            else:
                body = {"status": "failed", "error": self.error} if self.error else {"status": "loading"}
            await _respond(send, 200 if ready else 503, json.dumps(body).encode(), "application/json")
            return
        if path != self.scoring:
            await _error(send, 404, f"no route {path}; score with POST {self.scoring}")
            return
        if method != "POST":
            await _error(send, 405, f"{path} takes POST")
            return
        await self.invocations(scope, receive, send)

    async def invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                raise formats.ClientError(400, "the Content-Length header is not a number") from None
            if length > MAX_BODY:
                if length <= 4 * MAX_BODY:  # read it, so the client gets the answer rather than a reset
                    await _drain(receive)
                raise formats.ClientError(413, f"the body is over the limit of {MAX_BODY} bytes")
            body = await _read_body(receive)
            if self.model is None or self.batcher is None:
                await _error(send, 503, "the model is not loaded yet")
                return
            rows = formats.parse(body, headers.get("content-type", "application/json"), self.model.columns)
        except formats.ClientError as exc:
            await _error(send, exc.status, exc.message)
            return
        try:
            labels, proba = await self.batcher.submit(rows)
        except Exception as exc:  # a row the model itself rejects is still the client's input
            await _error(send, 422, f"the model could not score the input: {exc}")
            return
        payload, content_type = formats.answer(labels, proba, headers.get("accept", "application/json"))
        await _respond(send, 200, payload, content_type)


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise formats.ClientError(413, f"the body is over the limit of {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _drain(receive: Receive) -> None:
    while (await receive()).get("more_body"):
        pass


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, message: str) -> None:
    await _respond(send, status, json.dumps({"error": message}).encode(), "application/json")
