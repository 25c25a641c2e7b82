"""Micro-batching: concurrent requests share one model call.

A scikit-learn `predict` costs about the same for 1 row as for 100, so requests that arrive while
the model is busy are queued and answered together by the next call. No artificial wait: a lone
request is predicted at once, and under load batches form by themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

Predict = Callable[[list[list[Any]]], tuple[np.ndarray, np.ndarray | None]]


class Batcher:
    def __init__(self, predict: Predict, max_rows: int = 512):
        self.predict = predict
        self.max_rows = max_rows
        self.queue: asyncio.Queue[tuple[list[list[Any]], asyncio.Future[Any]]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.task: asyncio.Task[None] | None = None
        self.batches = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, rows: list[list[Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self.queue.put((rows, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            rows = len(batch[0][0])
            while rows < self.max_rows and not self.queue.empty():
                item = self.queue.get_nowait()
                batch.append(item)
                rows += len(item[0])
            joined = [row for rows_, _ in batch for row in rows_]
            try:
                labels, proba = await loop.run_in_executor(self.executor, self.predict, joined)
            except Exception as exc:  # a model failure answers every waiting request with it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            start = 0
            for rows_, future in batch:
                end = start + len(rows_)
                if not future.done():
                    future.set_result((labels[start:end], None if proba is None else proba[start:end]))
                start = end
