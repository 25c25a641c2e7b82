"""Micro-batching: concurrent requests share one model call.

A scikit-learn `predict` costs about the same for 1 row as for 100, so requests that arrive while
the model is busy are queued and answered together by the next call. No artificial wait: a lone
request is predicted at once, and under load batches form by themselves.

A batch is only an optimisation, never a change of answer: when a joined call fails, each request
of the batch is predicted again on its own, so only the request the model cannot score gets the
error. `busy_for()` says how long the current model call has been running, so that /ping can turn
unhealthy when the model is stuck.

Model calls run in one worker thread, so the event loop keeps answering /ping. A call `inline`
declares cheap (the compiled path on a few rows: tens of microseconds) runs on the loop itself:
handing it to the thread and back would cost more than the prediction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

Predict = Callable[[list[list[Any]]], tuple[np.ndarray, np.ndarray | None]]
Item = tuple[list[list[Any]], "asyncio.Future[Any]"]


class Batcher:
    def __init__(self, predict: Predict, max_rows: int = 512, inline: Callable[[int], bool] | None = None):
        self.predict = predict
        self.inline = inline
        self.max_rows = max_rows
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.task: asyncio.Task[None] | None = None
        self.batches = 0
        self.busy_since: float | None = None  # monotonic start of the model call in progress

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """End the batching task (at shutdown); a model call in progress finishes in its thread."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=False)

    def busy_for(self) -> float:
        """Seconds the current model call has been running; 0 when idle."""
        since = self.busy_since
        return 0.0 if since is None else time.monotonic() - since

    async def submit(self, rows: list[list[Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((rows, future))
        return await future

    async def _call(self, rows: list[list[Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.inline is not None and self.inline(len(rows)):
            return self.predict(rows)
        self.busy_since = time.monotonic()
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self.predict, rows)
        finally:
            self.busy_since = None

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            rows = len(batch[0][0])
            while rows < self.max_rows and not self.queue.empty():
                item = self.queue.get_nowait()
                batch.append(item)
                rows += len(item[0])
            batch = [item for item in batch if not item[1].done()]  # timed out while queued
            if not batch:
                continue
            joined = [row for rows_, _ in batch for row in rows_]
            try:
                labels, proba = await self._call(joined)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc=exc)
                else:  # one request the model rejects must not fail the others
                    for rows_, future in batch:
                        try:
                            _settle(future, await self._call(rows_))
                        except Exception as alone:
                            _settle(future, exc=alone)
                continue
            self.batches += 1
            start = 0
            for rows_, future in batch:
                end = start + len(rows_)
                _settle(future, (labels[start:end], None if proba is None else proba[start:end]))
                start = end


def _settle(future: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None) -> None:
    if future.done():  # the request gave up (timeout, disconnect)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
