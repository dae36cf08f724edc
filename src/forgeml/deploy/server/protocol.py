"""uvicorn's HTTP/1.1 protocol with the connection limits a public server needs.

uvicorn's own settings cover part of it, and the runner uses them: ``timeout_keep_alive`` closes a
connection idle between requests, ``h11_max_incomplete_event_size`` bounds the request line and
headers (``serve.max_header_bytes``), ``timeout_graceful_shutdown`` bounds the drain. What they do
not cover is added here, in a subclass of uvicorn's h11 protocol (the one it runs when httptools is
not installed; the runner names it, so the same code runs whatever is installed):

- a **header timeout** (nginx's ``client_header_timeout``): a connection must deliver a request's
  line and headers within ``serve.header_timeout_s`` of opening (or of the head's first byte on a
  kept-alive connection), else 408 and close. uvicorn has none: a slowloris connection sending a
  header byte every 2 s was held for ever.
- a **body timeout** (nginx's ``client_body_timeout``): at most ``serve.body_timeout_s`` of silence
  while a body is incomplete, else 408 (when no answer has started) and close. A request whose
  ``Content-Length`` promised more than it sent got no answer in 180 s.
- a **connection cap** (``serve.max_connections``): a connection opened past it gets a 503 for its
  request and is closed; the health probes are still answered. uvicorn's ``limit_concurrency`` does
  the same, but answers in plain text.
- malformed HTTP (``Content-Length: -1``, a garbage request line, headers past the limit) gets the
  server's one JSON error body (400, or 431 for headers too large) instead of uvicorn's plain text.

Each of these answers is written on the socket directly, with ``Connection: close``: the request
never reached the ASGI app (or the app is still waiting for its body, and gets a disconnect).

- a **lingering close** (nginx's ``lingering_close``): a connection closed after an answer sent before
  the client finished sending (a 503 past the connection cap, a 413, a 408, a 400) first sends its
  FIN, then reads and drops what the client still sends, for up to ``LINGER_SECONDS``, and closes.
  Closed at once with bytes unread, the kernel sends a reset, and the client may lose the answer it
  had already been sent: 87 of 8,725 requests at 3x capacity (benchmarks/overload.py) saw a reset.
"""

from __future__ import annotations

import asyncio
import functools
import http
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from forgeml.deploy.server.guard import CLOSE, OPEN_PATHS, ErrorBody, Receive, Scope, Send, send_json
from forgeml.deploy.server.metrics import Metrics

# nginx lingers up to 30 s (lingering_time) and 5 s without data (lingering_timeout); a client that
# has sent its whole body has it on the wire within milliseconds on a LAN.
LINGER_SECONDS = 2.0


class LingeringTransport:
    """The transport uvicorn's protocol and its request cycles hold: ``close()`` lingers while the
    client may still be sending (see the module docstring); everything else is the socket's."""

    def __init__(self, transport: asyncio.Transport, protocol: LimitedH11Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        if self._transport.is_closing() or not self._protocol.client_still_sending():
            self._transport.close()
            return
        self._protocol.linger()
        self._transport.write_eof()  # after what is buffered: the answer goes out, then our FIN
        self._transport.resume_reading()  # uvicorn may have paused reading a large body


@dataclass(frozen=True)
class ConnectionLimits:
    """What the protocol enforces; the Guard carries it (``Guard.connection_limits``)."""

    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    max_header_bytes: int
    error: ErrorBody
    metrics: Metrics


def find_limits(app: Any) -> ConnectionLimits | None:
    """The limits of the Guard inside ``app`` (uvicorn wraps it, e.g. in its proxy-headers middleware)."""
    for _ in range(8):
        limits = getattr(app, "connection_limits", None)
        if limits is not None:
            return limits
        app = getattr(app, "app", None)
    return None


def raw_response(status: int, body: bytes, request_id: str) -> bytes:
    """A whole JSON response with ``Connection: close``, as bytes for the socket."""
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nx-request-id: {request_id}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


async def over_capacity(
    app: Any, limits: ConnectionLimits, scope: Scope, receive: Receive, send: Send
) -> None:
    """The app of a connection opened past ``max_connections``: 503 and close, probes excepted."""
    if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
        await app(scope, receive, send)
        return
    request_id = uuid.uuid4().hex
    limits.metrics.reject("too_many_connections")
    message = (
        f"the server holds its maximum of {limits.max_connections} connections (serve.max_connections); "
        "retry shortly."
    )
    body = limits.error(503, "too_many_connections", message, request_id)
    headers = [(b"x-request-id", request_id.encode()), (b"retry-after", b"1"), CLOSE]
    await send_json(send, 503, body, headers)


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus the header and body timeouts, the connection cap and JSON answers
    to malformed HTTP (see the module docstring). Without a Guard in the app it is uvicorn's own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = find_limits(self.app)
        self._timer: asyncio.TimerHandle | None = None
        self._timing = ""  # "head", "body" or "linger": what the running timer waits for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.limits is None:
            return
        self.socket_transport = transport
        self.transport = LingeringTransport(transport, self)  # type: ignore[assignment]
        if len(self.connections) > self.limits.max_connections:
            self.app = functools.partial(over_capacity, self.app, self.limits)
        self._start("head", self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._timing == "linger":
            return  # the rest of a request already answered: dropped
        super().data_received(data)
        if self.limits is not None and not self.transport.is_closing():
            self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.limits is not None and not self.transport.is_closing():
            if self._timing == "head":
                self._stop()  # idle between requests: uvicorn's keep-alive timeout takes over
            self._watch()

    def send_400_response(self, msg: str) -> None:
        if self.limits is None:
            super().send_400_response(msg)
            return
        problem = sys.exc_info()[1]  # uvicorn calls this in its `except h11.RemoteProtocolError`
        status = getattr(problem, "error_status_hint", 400)
        if status == 431:
            code = "header_too_large"
            message = f"the request line and headers exceed {self.limits.max_header_bytes} bytes (serve.max_header_bytes)."
        else:
            status, code = 400, "bad_http"
            message = f"malformed HTTP request: {problem or msg}."
        self._refuse(status, code, message)

    def client_still_sending(self) -> bool:
        """Whether bytes of a request may still arrive: its body is incomplete, its head has begun
        (a slow client answered 408), or it broke the protocol partway (answered 400 or 431)."""
        state = self.conn.their_state
        started_head = state is h11.IDLE and bool(self.conn.trailing_data[0])
        return state is h11.SEND_BODY or state is h11.ERROR or started_head

    def linger(self) -> None:
        """Drop what arrives from now on; close when the client does, or after ``LINGER_SECONDS``."""
        self._start("linger", LINGER_SECONDS)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()

    def _watch(self) -> None:
        """Which read timer runs now: the head's (counted from its start), the body's (restarted by
        every chunk: the longest silence allowed), or none while the app has the whole request."""
        assert self.limits is not None
        if self._timing == "linger":
            return  # closing: only the linger timer runs
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._start("body", self.limits.body_timeout_s)
        elif state is h11.IDLE:
            if self.conn.trailing_data[0]:  # the next request's head began
                if self._timing != "head":
                    self._start("head", self.limits.header_timeout_s)
            elif self._timing == "body":  # a body that came after an early answer is complete
                self._stop()
        else:
            self._stop()

    def _start(self, timing: str, seconds: float) -> None:
        self._stop()
        self._timing = timing
        self._timer = self.loop.call_later(seconds, self._expired)

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timing = None, ""

    def _expired(self) -> None:
        assert self.limits is not None
        timing, self._timer, self._timing = self._timing, None, ""
        if timing == "linger":  # the client kept sending: close now, a reset or not
            self.socket_transport.close()
            return
        if self.transport.is_closing():
            return
        if timing == "body" and self.flow.read_paused:
            # uvicorn stopped reading (64 kB buffered, the app not reading yet): the silence is the
            # server's, not the client's
            self._start("body", self.limits.body_timeout_s)
            return
        if timing == "head" and self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            seconds = self.limits.header_timeout_s
            message = (
                f"the request line and headers did not arrive within {seconds} s (serve.header_timeout_s)."
            )
            self._refuse(408, "header_timeout", message)
        elif timing == "body" and self.cycle is not None and not self.cycle.response_started:
            seconds = self.limits.body_timeout_s
            message = f"the request body stopped arriving for {seconds} s (serve.body_timeout_s)."
            self._refuse(408, "body_timeout", message)
        else:  # nothing sent yet on a new connection, or the answer already started: just close
            self.transport.close()

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Write the one JSON error body and close; an app still waiting for the body is told the client left."""
        assert self.limits is not None
        request_id = uuid.uuid4().hex
        self.limits.metrics.reject(code)
        self.transport.write(
            raw_response(status, self.limits.error(status, code, message, request_id), request_id)
        )
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # its answer, if any, is dropped
            self.cycle.message_event.set()
        self.transport.close()
