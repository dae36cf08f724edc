"""Dynamic micro-batching behind a bounded queue.

Requests put their encoded rows on an ``asyncio.Queue`` of at most ``max_queue`` requests; a full
queue is refused at once (:class:`Overloaded` -> 503 with Retry-After), never buffered without
bound. One loop takes what is queued, up to ``max_batch_size`` rows (waiting up to ``max_wait_ms``
for more when asked), runs the model (in a worker thread unless the batch is small and its last call took under 1 ms,
so the event loop keeps answering while a slow model computes), and
hands each request its own slice of the outputs. A request never shares a batch with a bad one:
bad input is refused while it is decoded, before it is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from forgeml.bundle.encode import Feeds
from forgeml.deploy.server.errors import Overloaded
from forgeml.deploy.server.metrics import Metrics

logger = logging.getLogger(__name__)


# A model call shorter than this runs on the event loop itself: handing it to the worker thread
# and back costs more (two thread wake-ups and GIL hand-offs, ~0.5 ms on 2 cores) than the call,
# and cost the small MLP 0.6x the throughput of a bare endpoint. Longer calls, or a batch that
# turned out slower, go to the worker thread so the loop keeps accepting and timing requests.
INLINE_CALL_SECONDS = 0.001
# Batches larger than this always go to the worker thread: they come from a queue that has filled
# up, i.e. overload, when the loop is needed most. Deciding by the last call's time alone, the
# breast-cancer MLP alternated at 3x capacity: a 2,000-row batch ran on the loop (several ms of wall
# time), the next one in the thread measured only its own CPU time (ONNX Runtime computes in its
# pool), so the one after ran on the loop again; py-spy found 13% of the loop's samples in ORT.
INLINE_MAX_ROWS = 64


@dataclass
class _Job:
    feeds: Feeds
    rows: int
    future: asyncio.Future[np.ndarray]
    arrived: float  # time.monotonic() of the request's arrival


def _expire(future: asyncio.Future[np.ndarray]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class MicroBatcher:
    """Groups concurrent requests into model calls of at most ``max_batch_size`` rows."""

    def __init__(
        self,
        run: Callable[[Feeds], np.ndarray],
        metrics: Metrics,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
    ) -> None:
        self._run = run
        self._metrics = metrics
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgeml-model")
        self._carry: _Job | None = None
        # Unknown until measured: the first call runs in the worker thread.
        self._last_call_seconds = float("inf")
        self._task: asyncio.Task[None] | None = None
        # Seconds the requests of the last batch waited, from their arrival to their model call: the
        # queue's length in time, which admission control reads (a count of 512 requests is 0.1 s of
        # one-row requests but far more than request_timeout_s of 250-row ones).
        self.last_wait = 0.0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="forgeml-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(
        self, feeds: Feeds, rows: int, timeout: float, *, arrived: float | None = None
    ) -> np.ndarray:
        """The raw outputs for these rows; Overloaded if the queue is full, TimeoutError after ``timeout``.
        ``arrived`` (``time.monotonic()``, default now) is when the request came in."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        try:
            self._queue.put_nowait(
                _Job(feeds, rows, future, time.monotonic() if arrived is None else arrived)
            )
        except asyncio.QueueFull:
            raise Overloaded from None
        self._metrics.queue_depth = self._queue.qsize()
        # One timer instead of asyncio.wait_for (which adds a second future and callbacks to every
        # request); an expired job stays queued, and the loop skips it because its future is done.
        timer = loop.call_later(timeout, _expire, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect(loop)
            jobs = [job for job in jobs if not job.future.done()]  # timed out while queued
            self._metrics.queue_depth = self._queue.qsize()
            if not jobs:
                continue
            self.last_wait = time.monotonic() - jobs[0].arrived  # the longest wait in the batch
            if len(jobs) == 1:
                feeds = jobs[0].feeds
            else:
                feeds = {name: np.concatenate([job.feeds[name] for job in jobs]) for name in jobs[0].feeds}
            rows = sum(job.rows for job in jobs)
            try:
                if rows <= INLINE_MAX_ROWS and self._last_call_seconds < INLINE_CALL_SECONDS:
                    started = time.perf_counter()
                    outputs = self._timed_run(feeds)
                    # On the loop, what counts is how long the loop was held: ONNX Runtime spreads a
                    # large batch over its own threads, so the caller's CPU time alone (0.6 ms for
                    # 250 rows) kept multi-millisecond calls on the event loop under overload.
                    self._last_call_seconds = max(self._last_call_seconds, time.perf_counter() - started)
                else:
                    outputs = await loop.run_in_executor(self._executor, self._timed_run, feeds)
            except Exception as exc:  # a bug, not bad input: every waiting request gets a generic 500
                logger.exception("model call failed for a batch of %d rows", rows)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self._metrics.batch(rows)
            start = 0
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(outputs[start : start + job.rows])
                start += job.rows

    def _timed_run(self, feeds: Feeds) -> np.ndarray:
        # CPU time of the calling thread, not wall time: in the worker thread the wall time includes
        # waiting for the GIL behind a busy event loop, which would keep a cheap model off the loop.
        started = time.thread_time()
        outputs = self._run(feeds)
        self._last_call_seconds = time.thread_time() - started
        return outputs

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> list[_Job]:
        first = self._carry or await self._queue.get()
        self._carry = None
        jobs, rows = [first], first.rows
        deadline = loop.time() + self.max_wait
        while rows < self.max_batch_size:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if rows + job.rows > self.max_batch_size:
                self._carry = job  # first in the next batch; a request is never split
                break
            jobs.append(job)
            rows += job.rows
        return jobs
