"""SageMaker's multi-model contract: one server process holding several models, loaded and unloaded
by the platform.

The contract ("Custom Containers Contract for Multi-Model Endpoints", mms-container-apis; the
image declares it with the label `com.amazonaws.sagemaker.capabilities.multi-models=true`, and
SageMaker injects `SAGEMAKER_MULTI_MODEL=true`, "Build Your Own Container with Multi Model
Server"):

* `POST /models` `{"model_name": ..., "url": ...}` loads the model SageMaker extracted from
  `<name>.tar.gz` into the directory `url`; 409 when `model_name` is already loaded; 507 when it
  cannot be held, "which then initiates unloading unused models to reclaim";
* `GET /models` lists `{"modelName", "modelUrl"}`, a page at a time (`limit`, `next_page_token`
  in the query; `nextPageToken` in the answer while more follow);
* `GET /models/<name>` describes one, `DELETE /models/<name>` unloads it (its memory is released
  before the answer), both 404 when it is not loaded;
* `POST /models/<name>/invoke` scores a request with it, 404 when it is not loaded. SageMaker
  passes the client's `TargetModel` in `X-Amzn-SageMaker-Target-Model`, "for logging purposes":
  it is written to the access log.

At most `MLOPS_MULTI_MODEL_MAX_LOADED` models are held. A load past that bound is answered 507,
not made room for by evicting a model here: the contract leaves eviction to the platform (its
Unload call "initiates the eviction of a candidate model as determined by the platform"), which
routes each invocation to an instance it believes holds the model. A model this server dropped on
its own would answer those invocations 404. A MemoryError while loading is a 507 too.

Each model is loaded, warmed up and served exactly as the single-model server serves its one
model: the same MLflow directory checks, engines (scikit-learn at once, the compiled ONNX path
verified in the background), input checks, batching, timeouts and error bodies. Each is held by
its own `Server` (serving/app.py), which carries its batcher, deadlines and the count of unseen
categories per column (the per-model drift signal the server keeps, shown by `GET /models/<name>`).
Models are read only from `MLOPS_MULTI_MODEL_ROOT` (default /opt/ml/models, where SageMaker
extracts them): a load of another directory is 403, since loading a pickle runs its code.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import time
import urllib.parse
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import formats, settings
from .app import Receive, Scope, Send, Server, _freeze, _header, _Reply
from .batching import Batcher
from .model import LoadedModel, compile_fast_path, load, warm_up

log = logging.getLogger("serving")

PREFIX = "/models"
# Opaque: SageMaker's own key, "not necessarily the value of the TargetModel", which may hold slashes
# ("[relativePath]/{artifactName}.tar.gz"); routes take everything between /models/ and /invoke.
NAME = re.compile(r"[^\s\x00-\x1f\x7f]{1,512}")
TARGET = re.compile(r"[A-Za-z0-9._:/+=@-]{1,1024}")  # an S3 key, echoed in the log only when plain
PAGE, LARGEST_PAGE = 100, 1000
LOAD_BODY = 64 * 1024  # a load request is two short strings


class MultiModelServer(Server):
    """The ASGI app in multi-model mode: the routes above, plus /ping (healthy from the start: there is
    no model to wait for) and Batch Transform's /execution-parameters; /invocations is 404."""

    def __init__(self, config: settings.Settings):
        super().__init__(config.models_root, config)
        self.hosted: dict[str, Hosted] = {}
        self.loading: dict[str, asyncio.Future[tuple[int, str]]] = {}  # name -> (status, message) of its load
        self.background: set[asyncio.Task[None]] = set()

    async def startup(self) -> None:
        log.info("multi-model server ready (up to %d models from %s)", self.settings.max_loaded,
                 self.settings.models_root)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hosted in list(self.hosted.values()):
                    assert hosted.server.batcher is not None
                    await hosted.server.batcher.stop()
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
            await _json(reply, status, body)
            return
        if path == "/execution-parameters" and method == "GET":
            await _json(reply, 200, self.execution_parameters())
            return
        if path == PREFIX:
            if method == "GET":
                await self.list_models(scope, reply)
            elif method == "POST":
                await self.load_model(scope, receive, reply)
            else:
                await reply.error(405, f"{path} takes GET (list) or POST (load)")
            return
        if path.startswith(PREFIX + "/"):
            rest = path[len(PREFIX) + 1:]
            if rest.endswith("/invoke"):
                if method != "POST":
                    await reply.error(405, f"{path} takes POST")
                    return
                await self.invoke(rest[:-len("/invoke")], scope, receive, reply)
                return
            if method == "GET":
                await self.describe(rest, reply)
            elif method == "DELETE":
                await self.unload(rest, reply)
            else:
                await reply.error(405, f"{path} takes GET (describe) or DELETE (unload)")
            return
        await reply.error(404, f"no route {path}: this server runs in multi-model mode; score with "
                               f"POST {PREFIX}/<model_name>/invoke")

    def health(self, path: str) -> tuple[int, dict[str, Any]]:
        for name, hosted in self.hosted.items():
            status, body = hosted.server.health(path)
            if status != 200:  # a model call stuck past the timeout
                return status, {**body, "model": name}
        return 200, {"status": "healthy", "models": len(self.hosted), "max_loaded": self.settings.max_loaded}

    async def list_models(self, scope: Scope, reply: _Reply) -> None:
        try:
            start, limit = _page(scope.get("query_string", b""))
        except formats.ClientError as exc:
            await reply.error(exc.status, exc.message)
            return
        names = sorted(self.hosted)
        page: dict[str, Any] = {"models": [self.hosted[n].summary() for n in names[start:start + limit]]}
        if start + limit < len(names):
            page["nextPageToken"] = str(start + limit)
        await _json(reply, 200, page)

    async def describe(self, name: str, reply: _Reply) -> None:
        hosted = self.hosted.get(name)
        if hosted is None:
            await _not_loaded(reply, name)
            return
        await _json(reply, 200, hosted.details())

    async def load_model(self, scope: Scope, receive: Receive, reply: _Reply) -> None:
        try:
            try:
                async with asyncio.timeout(self.settings.timeout):
                    body = await _read(receive)
            except TimeoutError:
                raise formats.ClientError(408, f"the body did not arrive within {self.settings.timeout:g} s") from None
            name, url = load_request(body)
            directory = within(url, self.settings.models_root)
        except formats.ClientError as exc:
            await reply.error(exc.status, exc.message, exc.error_code)
            return
        if name in self.hosted:
            await reply.error(409, f"model {name!r} is already loaded", "RESOURCE_ALREADY_EXISTS")
            return
        if name in self.loading:  # the same load twice at once: answer the second when the first ends
            status, message = await asyncio.shield(self.loading[name])
            if status == 200:
                await reply.error(409, f"model {name!r} is already loaded", "RESOURCE_ALREADY_EXISTS")
            else:
                await reply.error(status, message, _CODES.get(status))
            return
        if len(self.hosted) + len(self.loading) >= self.settings.max_loaded:
            await reply.error(507, f"cannot load {name!r}: {len(self.hosted)} models loaded and "
                                   f"{len(self.loading)} loading, the most this container holds "
                                   f"(MLOPS_MULTI_MODEL_MAX_LOADED={self.settings.max_loaded}); unload one first",
                              "RESOURCE_EXHAUSTED")
            return
        done: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.loading[name] = done
        began = time.monotonic()
        status, message = 500, "the load was interrupted"
        try:
            status, message = await self._load(name, url, directory)
        finally:
            self.loading.pop(name, None)
            done.set_result((status, message))
        if status != 200:
            await reply.error(status, message, _CODES.get(status))
            return
        log.info("model %s loaded from %s in %.2f s (%d loaded)", name, directory, time.monotonic() - began,
                 len(self.hosted))
        await _json(reply, 200, {"status": f"model {name!r} loaded", **self.hosted[name].summary()})

    async def _load(self, name: str, url: str, directory: Path) -> tuple[int, str]:
        """(200, "") once the model is served; else the status and message to answer."""
        try:
            model = await asyncio.to_thread(_load_warm, str(directory))
        except MemoryError:
            return 507, f"cannot load {name!r}: out of memory; unload a model first"
        except Exception as exc:  # an artifact that is not a servable model: the load request's problem
            log.warning("model %s from %s failed to load: %s: %s", name, directory, type(exc).__name__, exc)
            return 400, f"cannot load {name!r} from {url}: {type(exc).__name__}: {exc}"
        server = Server(str(directory), self.settings)
        server.batcher = Batcher(model.predict, inline=model.cheap)
        server.model = model
        _freeze()
        hosted = Hosted(name, url, server)
        self.hosted[name] = hosted
        if server.compile:
            task = asyncio.get_running_loop().create_task(self._compile(hosted))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return 200, ""

    async def _compile(self, hosted: Hosted) -> None:
        server = hosted.server
        if server.model is None:  # unloaded before this task ran
            return
        server.compiling = True
        try:
            log.info("model %s: %s", hosted.name, await asyncio.to_thread(compile_fast_path, server.model))
        finally:
            server.compiling = False
        if hosted.retired:  # unloaded while it compiled: the unload left the release to this task
            await hosted.release()
        else:
            _freeze()

    async def unload(self, name: str, reply: _Reply) -> None:
        hosted = self.hosted.pop(name, None)
        if hosted is None:
            await _not_loaded(reply, name)
            return
        await hosted.retire(self.settings.timeout)
        if not hosted.server.compiling:  # else the compile task releases it when it ends
            await hosted.release()
        log.info("model %s unloaded (%d loaded)", name, len(self.hosted))
        await _json(reply, 200, {"status": f"model {name!r} unloaded", "modelName": name})

    async def invoke(self, name: str, scope: Scope, receive: Receive, reply: _Reply) -> None:
        hosted = self.hosted.get(name)
        if hosted is None and name in self.loading:  # answered once its load ends, rather than 404 meanwhile
            await asyncio.shield(self.loading[name])
            hosted = self.hosted.get(name)
        if hosted is None:
            await _not_loaded(reply, name)
            return
        hosted.active += 1
        try:
            await hosted.server.invocations(scope, receive, reply)
        finally:
            hosted.active -= 1
            target = _header(scope, b"x-amzn-sagemaker-target-model")
            if target and TARGET.fullmatch(target):
                reply.note = f"target={target}" + (" " + reply.note if reply.note else "")


@dataclass
class Hosted:
    """One loaded model: its name as SageMaker keys it, the directory it came from, the Server that
    scores with it, and how many of its requests are in progress (an unload waits for them)."""

    name: str
    url: str
    server: Server
    active: int = 0
    retired: bool = False

    def summary(self) -> dict[str, str]:
        return {"modelName": self.name, "modelUrl": self.url}

    def details(self) -> dict[str, Any]:
        server = self.server
        assert server.model is not None
        return {**self.summary(), "engine": server.model.engine, "compiling": server.compiling,
                "unseen_categories": server.unseen, **(server.batcher.usage() if server.batcher else {})}

    async def retire(self, timeout: float) -> None:
        """Let requests already routed to this model finish (each ends by its deadline), then stop its
        model thread."""
        deadline = time.monotonic() + timeout + 1
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.retired = True
        assert self.server.batcher is not None
        await self.server.batcher.stop()

    async def release(self) -> None:
        """Drop the model's objects. _freeze moved them out of the collector's sight, so reference
        counting must free them: the one cycle they hold (the compiled path calls back into its
        LoadedModel for near-ties) is broken first, and a worker thread that has just finished with
        the model (its work item still holds the result or the arguments) is given a moment to let
        go. Should anything else still hold them, one full collection runs (a stall of the event
        loop of about half a second with four 100-tree forests loaded on a busy machine: the reason
        it is not the rule)."""
        server, model = self.server, self.server.model
        if model is None:
            return
        watched = [ref for ref in (_watch(model), _watch(model.model)) if ref is not None]
        model.fast = None  # the compiled path, whose `exact` is a method of `model`: the cycle
        server.model = server.batcher = None
        del model
        for _ in range(100):
            if all(ref() is None for ref in watched):
                return
            await asyncio.sleep(0.01)
        if any(ref() is not None for ref in watched):
            log.warning("model %s: its objects outlived the unload; collecting them", self.name)
            _reclaim()


def load_request(body: bytes) -> tuple[str, str]:
    """`model_name` and `url` of a load request; a ClientError naming the field otherwise. Other keys
    are ignored: the platform may send more than the contract lists."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise formats.ClientError(400, "the load request is not JSON; send {\"model_name\": ..., \"url\": ...}") \
            from None
    if not isinstance(document, dict):
        raise formats.ClientError(400, "the load request must be a JSON object with model_name and url")
    name, url = document.get("model_name"), document.get("url")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise formats.ClientError(400, f"model_name: expected 1 to 512 characters without spaces or control "
                                       f"characters; got {formats._short(name)}")
    if not isinstance(url, str) or not url:
        raise formats.ClientError(400, f"url: expected the model's directory; got {formats._short(url)}")
    return name, url


def within(url: str, root: str) -> Path:
    """The directory `url` names if it lies inside `root` once `..` is resolved; 403 outside it, 404
    when missing. Links inside the root are followed: whoever can make them can write the root, and
    the platform's own layout under /opt/ml/models is not documented."""
    if not url.startswith("/") or "\x00" in url:
        raise formats.ClientError(400, f"url: expected an absolute path; got {formats._short(url)}")
    base, resolved = Path(os.path.abspath(root)), Path(os.path.normpath(url))
    try:
        inside = resolved.is_relative_to(base)
        found = inside and resolved.is_dir()
    except OSError as exc:  # a name too long, a loop of links
        raise formats.ClientError(400, f"url: {formats._short(url)} cannot be read ({exc.strerror})") from None
    if not inside:
        raise formats.ClientError(403, f"url: {formats._short(url)} is outside {base} (MLOPS_MULTI_MODEL_ROOT); "
                                       "models are loaded from there only", "PERMISSION_DENIED")
    if not found:
        raise formats.ClientError(404, f"url: no directory {formats._short(url)}", "RESOURCE_DOES_NOT_EXIST")
    return resolved


def _load_warm(directory: str) -> LoadedModel:
    model = load(directory)
    warm_up(model)
    return model


def _watch(thing: Any) -> weakref.ref[Any] | None:
    try:
        return weakref.ref(thing)
    except TypeError:  # a type without weak references (__slots__): not watched
        return None


def _reclaim() -> None:
    """One full collection of everything, frozen objects included, which _freeze then hides again."""
    gc.unfreeze()
    _freeze()


def _page(query: bytes) -> tuple[int, int]:
    """(offset, limit) from `next_page_token` and `limit`: the token is the offset this server answered."""
    try:
        params = urllib.parse.parse_qs(query.decode("ascii"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise formats.ClientError(400, "the query string is not ASCII") from None
    values = {}
    for key, largest in (("next_page_token", None), ("limit", LARGEST_PAGE)):
        raw = params.get(key, [""])[-1]
        if not raw:
            continue
        if not raw.isdigit() or len(raw) > 12 or (largest and not 1 <= int(raw) <= largest):
            expected = f"an integer from 1 to {largest}" if largest else "a token this server answered"
            raise formats.ClientError(400, f"{key}: expected {expected}; got {formats._short(raw)}")
        values[key] = int(raw)
    return values.get("next_page_token", 0), values.get("limit", PAGE)


async def _read(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > LOAD_BODY:
            raise formats.ClientError(413, f"the load request is over the limit of {LOAD_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _json(reply: _Reply, status: int, body: dict[str, Any]) -> None:
    await reply.send(status, json.dumps(body).encode(), "application/json")


async def _not_loaded(reply: _Reply, name: str) -> None:
    await reply.error(404, f"model {name!r} is not loaded; load it with POST {PREFIX}", "RESOURCE_DOES_NOT_EXIST")


# MLflow's vocabulary (mlflow.protos.databricks_pb2) for the statuses a load answers
_CODES = {400: "BAD_REQUEST", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST",
          409: "RESOURCE_ALREADY_EXISTS", 507: "RESOURCE_EXHAUSTED"}
