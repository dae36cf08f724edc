"""The micro-batcher runs cheap model calls on the event loop and slow ones in its worker thread."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from forgeml.deploy.server.batching import MicroBatcher
from forgeml.deploy.server.metrics import Metrics


def threads_used(cpu_seconds: float, calls: int = 4) -> list[bool]:
    """For each call, whether the model ran on the event loop's thread."""
    on_loop: list[bool] = []

    async def main() -> None:
        loop_thread = threading.current_thread()

        def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
            on_loop.append(threading.current_thread() is loop_thread)
            deadline = time.thread_time() + cpu_seconds
            while time.thread_time() < deadline:  # CPU work, like a model (a sleep would not count)
                pass
            return feeds["x"]

        batcher = MicroBatcher(run, Metrics(), max_batch_size=8, max_wait_ms=0, max_queue=8)
        batcher.start()
        try:
            for value in range(calls):
                out = await batcher.submit({"x": np.full((1, 1), value, np.float32)}, 1, timeout=10)
                assert out[0, 0] == value
        finally:
            await batcher.stop()

    asyncio.run(main())
    return on_loop


def test_cheap_calls_move_to_the_event_loop_after_the_first() -> None:
    assert threads_used(0.0) == [False, True, True, True]


def test_slow_calls_stay_in_the_worker_thread() -> None:
    assert threads_used(0.003) == [False, False, False, False]
