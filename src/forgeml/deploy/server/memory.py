"""Give freed memory back to the system once a burst of requests is over.

Under overload the server holds up to ``max_queue`` request bodies at once (200 kB each for 250
rows of 30 columns) and their decoded rows. Python frees them afterwards, but glibc's malloc keeps
the freed pages in its heaps and per-thread arenas: the resting RSS of the tabular server rose from
448 MB to 629 MB after a 3x-capacity burst (benchmarks/overload.py) and stayed there. ``malloc_trim``
returns those pages; :class:`IdleTrimmer` calls it once the server has had nothing admitted for a
second, at most every few seconds: in a worker thread of the server (ctypes releases the GIL for
the call), and in the codec, whose process holds the decoded bodies (:func:`trim_memory`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forgeml.deploy.server.codec import Codec

logger = logging.getLogger(__name__)

IDLE_SECONDS = 1.0  # nothing admitted for this long: the burst is over
MIN_INTERVAL_SECONDS = 5.0  # trims walk the heaps; not more often than this


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # glibc only; musl and macOS have none
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _malloc_trim()


def trim_memory() -> None:
    """Give the heaps' free pages back to the system (glibc); nothing elsewhere."""
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


class IdleTrimmer:
    """Call :meth:`idle` whenever the last admitted request is answered; the trim follows if the
    server stays idle for ``IDLE_SECONDS``."""

    def __init__(self, busy: Callable[[], bool], codec: Codec) -> None:
        self.busy = busy
        self.codec = codec
        self._handle: asyncio.TimerHandle | None = None
        self._last = float("-inf")
        self._trimming: asyncio.Task | None = None  # held so the task is not garbage-collected

    def idle(self) -> None:
        if MALLOC_TRIM is None or self._handle is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(IDLE_SECONDS, self._last + MIN_INTERVAL_SECONDS - loop.time())
        self._handle = loop.call_later(delay, self._fire, loop)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._trimming is not None:
            self._trimming.cancel()

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        if self.busy():
            return  # the next idle moment schedules another try
        self._last = loop.time()
        loop.run_in_executor(None, trim_memory)
        if self.codec.in_process:
            self._trimming = loop.create_task(self._trim_codec())

    async def _trim_codec(self) -> None:
        try:
            await self.codec.call("trim")
        except Exception:  # a crashed or stopped codec: nothing to trim, and the server goes on
            logger.debug("could not trim the codec process", exc_info=True)
