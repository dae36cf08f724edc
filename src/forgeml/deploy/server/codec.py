"""Where large request bodies are decoded and large answers encoded: a child process, or a thread.

Decoding a 250-row body (pydantic validation, then the feature encoder) holds the GIL for several
milliseconds. In a thread of the server process it competes with the event loop for the GIL, and
the loop loses: it gives the GIL up at every socket call and waits a whole switch interval to get it
back (the "convoy effect"). py-spy of the server at 3x its capacity (benchmarks/overload.py, 2 cores)
showed the loop thread never idle, ~45% of its samples parked at socket ``send``/``recv``,
``epoll_ctl`` and ``urandom`` waiting for the GIL, the codec thread busy 76% of the time, and
``/health/live`` answered after 1.3 s (p50) and 1.9 s (p99).

So by default (``serve.codec: auto``, on Linux) the work runs in one child process,
forked when the server starts, after the model is loaded: the child inherits the decoder and the
encoder as they are (nothing is pickled but each body and each result), and the server's GIL is
left to the event loop. ``concurrent.futures.ProcessPoolExecutor`` carries the calls. The child
ignores SIGINT (a Ctrl-C of the terminal reaches the whole process group; the server drains), dies
with the server (``PR_SET_PDEATHSIG``: a ``kill -9`` of the server leaves no orphan), and a child
that died anyway is replaced on the next call. ``serve.codec: thread`` keeps the work in a thread
of the server process (what ``auto`` gives on other systems).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import astuple
from typing import Any, Literal

from forgeml.deploy.server.errors import RequestError
from forgeml.errors import DataError

logger = logging.getLogger(__name__)

Work = dict[str, Callable[..., Any]]  # name -> the function the codec runs under that name

# Set in the server process just before the fork; the child reads its copy. Only names and
# arguments cross the pipe, so the functions may close over anything (the schema, the encoder).
_WORK: Work = {}

PR_SET_PDEATHSIG = 1  # linux/prctl.h
# The codec is throughput work, the event loop latency work: on a machine with fewer free cores than
# busy threads, the kernel should run the loop first. (CFS gives a niceness-10 process about a tenth
# of the CPU of a niceness-0 one it competes with; it still gets every idle cycle.)
CODEC_NICENESS = 10


class CodecCrashed(Exception):
    """The codec process died during a call (killed, out of memory); the next call gets a new one."""


def forks_safely(mode: str) -> bool:
    """Whether ``serve.codec: mode`` runs in a forked process: ``process`` wherever fork exists;
    ``auto`` on Linux only (macOS has fork, but forking a process whose threads have used system
    frameworks can crash the child, which is why Python stopped forking there by default)."""
    if mode == "thread" or "fork" not in multiprocessing.get_all_start_methods():
        return False
    return mode == "process" or sys.platform.startswith("linux")


class Codec:
    """Runs the functions of ``work`` by name, off the event loop (see the module docstring)."""

    def __init__(self, work: Work, mode: Literal["auto", "process", "thread"]) -> None:
        self.work = work
        self.in_process = forks_safely(mode)
        self._executor: Executor | None = None

    def start(self) -> None:
        """Fork the child now, while the server is idle and not yet ready, rather than on the
        first large request (the executor would fork then, from the event loop, under load)."""
        self._executor = self._new_executor()
        if self.in_process:
            self._executor.submit(_ping).result(timeout=60)

    async def call(self, name: str, *args: Any) -> Any:
        """``work[name](*args)``; RequestError and DataError raised there are raised here."""
        assert self._executor is not None, "Codec.start() first"
        loop, executor = asyncio.get_running_loop(), self._executor
        if not self.in_process:
            return await loop.run_in_executor(executor, self.work[name], *args)
        try:
            failed, value = await loop.run_in_executor(executor, _run, name, args)
        except BrokenProcessPool:
            # Only the first call to see this child die replaces it: the others in flight with it
            # would throw away the new one, and a call that outlived stop() must not fork again.
            if executor is self._executor:
                logger.error("the codec process died; starting another for the next request")
                self._replace()
            raise CodecCrashed from None
        if failed:
            raise _rebuilt(*value)
        return value

    def stop(self) -> None:
        if self._executor is not None:
            _discard(self._executor)
            self._executor = None

    def _new_executor(self) -> Executor:
        if not self.in_process:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgeml-codec")
        _WORK.clear()
        _WORK.update(self.work)
        # One process: the work is sequential per request, and the server's own CPU (event loop,
        # model threads) needs the other core of a small machine.
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_child_setup,
            initargs=(os.getpid(),),
        )

    def _replace(self) -> None:
        if self._executor is not None:
            _discard(self._executor)
        self._executor = self._new_executor()


def _discard(executor: Executor) -> None:
    """Let go of ``executor`` without waiting for it, and make sure nothing of it can keep the
    server process from exiting.

    ``shutdown(wait=False)`` alone is not enough for a process pool. Its manager thread still waits
    for the call the child is running, and the interpreter joins that thread at exit; a decode that
    never ends (or a child that stops reading) then holds the exit forever. And the queue's feeder
    thread, blocked writing a large body into the pipe of a child that no longer reads it, is joined
    at exit too: a CI run hung there once (py-spy: ``Queue._finalize_join``, 39,766 bytes unsent). A
    stopped server has answered every request it will answer, so the child's work is of no use:
    kill it, and tell the queue not to wait for its feeder. Python 3.14 has
    ``ProcessPoolExecutor.terminate_workers()`` for the first half; 3.11 needs the pool's fields.
    """
    if not isinstance(executor, ProcessPoolExecutor):
        executor.shutdown(wait=False, cancel_futures=True)
        return
    call_queue = getattr(executor, "_call_queue", None)
    if call_queue is not None:
        call_queue.cancel_join_thread()
    children = list((getattr(executor, "_processes", None) or {}).values())
    # Shut down first, so no call is handed to the child between the kill and the shutdown. The
    # calls it was running fail with BrokenProcessPool; call() sees the pool is no longer its own
    # and does not fork a replacement.
    executor.shutdown(wait=False, cancel_futures=True)
    for child in children:
        child.kill()


def _ping() -> int:
    return os.getpid()


def _run(name: str, args: tuple[Any, ...]) -> tuple[bool, Any]:
    """In the child: (False, result), or (True, the error as plain values). Our exception classes do
    not survive pickling (a frozen dataclass, keyword-only attributes), so they travel as tuples."""
    try:
        return False, _WORK[name](*args)
    except RequestError as exc:
        return True, ("request", astuple(exc))
    except DataError as exc:
        return True, ("data", (str(exc), exc.path, exc.column, exc.row))


def _rebuilt(kind: str, values: tuple[Any, ...]) -> Exception:
    if kind == "request":
        return RequestError(*values)
    message, path, column, row = values
    return DataError(message, path=path, column=column, row=row)


def _child_setup(server_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server drains on Ctrl-C; its codec must not die first
    signal.set_wakeup_fd(-1)  # the inherited wakeup socket is the server loop's, not ours
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        # Not Linux (no prctl): a server killed with SIGKILL leaves its idle codec process behind.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server_pid:  # the server died before prctl took effect
        os._exit(0)
    os.nice(CODEC_NICENESS)
