"""Slow and broken clients (issue 18 item 3): header and body read timeouts (408 with the JSON error
body, then close), a cap on connections, bad HTTP answered with the JSON error body, and a drain
whose probes get 503 and whose responses carry ``Connection: close``.

The real server (uvicorn with the runner's protocol) runs in a thread of this process, with
timeouts of a fraction of a second; the tests wait on sockets and events, never on sleeps.
"""

from __future__ import annotations

import contextlib
import logging
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_overload import (  # the in-process server and raw HTTP helpers
    Reply,
    Served,
    blocked_model,
    exchange,
    post,
    predict_body,
    read_reply,
    request_bytes,
    serving,
    small_bundle,  # noqa: F401 (the session fixture, trained once for both files)
)

TIMEOUT = 0.4  # header and body timeouts of the server under test
pytestmark = pytest.mark.alone  # a reply must come within TIMEOUT + 0.5 s (tests/conftest.py)


@pytest.fixture(scope="module")
def served(small_bundle: Path) -> Iterator[Served]:  # noqa: F811
    with serving(small_bundle, header_timeout_s=TIMEOUT, body_timeout_s=TIMEOUT, max_connections=6) as server:
        yield server


def connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=5)


def closed_after(connection: socket.socket, reply: Reply) -> bool:
    """Whether the server closed the connection after ``reply`` (and said so)."""
    return reply.headers.get("connection") == "close" and connection.recv(1) == b""


def error_code(reply: Reply) -> str:
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "request_id", "field", "row"}, error  # the one error body
    assert error["request_id"] == reply.headers["x-request-id"]
    return error["code"]


def test_a_body_shorter_than_its_content_length_gets_408_within_the_body_timeout(served: Served) -> None:
    with connect(served) as connection:
        started = time.perf_counter()
        body = b'{"rows": [{"age": 41'
        headers = {"content_type": "application/json", "content_length": "400"}
        connection.sendall(request_bytes("POST", "/v1/predict", body, **headers))
        reply = read_reply(connection, started)
        assert closed_after(connection, reply)
    assert (reply.status, error_code(reply)) == (408, "body_timeout")
    assert TIMEOUT <= reply.seconds < TIMEOUT + 0.5


def test_slowloris_connections_are_answered_408_and_closed(served: Served) -> None:
    """Five connections each send a header byte whenever 0.1 s pass without an answer: the header
    timeout counts from the start of the head, so trickling does not keep them open."""
    head = request_bytes("GET", "/health/live", x_padding="a" * 200)
    connections = [connect(served) for _ in range(5)]
    sent = dict.fromkeys(connections, 0)
    started = time.perf_counter()
    answered: dict[socket.socket, bytes] = {}
    try:
        while len(answered) < len(connections) and time.perf_counter() - started < 5:
            waiting = [c for c in connections if c not in answered]
            readable, _, _ = select.select(waiting, [], [], 0.1)  # the pace: an answer, or 0.1 s
            for connection in readable:
                answered[connection] = read_reply(connection, started)
            for connection in waiting:
                if connection not in readable and sent[connection] < len(head) - 4:
                    connection.sendall(head[sent[connection] : sent[connection] + 1])
                    sent[connection] += 1
        replies = list(answered.values())
        assert all(connection.recv(1) == b"" for connection in connections)  # and closed
    finally:
        for connection in connections:
            connection.close()
    assert len(replies) == 5
    assert {(reply.status, error_code(reply)) for reply in replies} == {(408, "header_timeout")}
    assert max(reply.seconds for reply in replies) < TIMEOUT + 0.5


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "bad_http"),
        (b"\x16\x03\x01 garbage \x00\r\n\r\n", 400, "bad_http"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n", 431, "header_too_large"),
    ],
    ids=["negative-content-length", "garbage-request-line", "200-kB-header"],
)
def test_bad_http_gets_the_json_error_body(served: Served, raw: bytes, status: int, code: str) -> None:
    with connect(served) as connection:
        started = time.perf_counter()
        with contextlib.suppress(
            ConnectionResetError
        ):  # the server may answer and close before all 200 kB are sent
            connection.sendall(raw)
        reply = read_reply(connection, started)
    assert (reply.status, error_code(reply)) == (status, code)
    assert reply.headers["connection"] == "close"


def test_connections_past_the_cap_get_503_and_probes_still_answer(served: Served) -> None:
    held = [connect(served) for _ in range(6)]  # the cap: 6
    try:
        for connection in held:  # each is open, counted and kept alive
            connection.sendall(request_bytes("GET", "/health/live"))
            assert read_reply(connection, time.perf_counter()).status == 200
        refused = post(served.port, predict_body(1))
        probe = exchange(served.port, "GET", "/health/live")
    finally:
        for connection in held:
            connection.close()
    assert (refused.status, error_code(refused)) == (503, "too_many_connections")
    assert refused.headers["retry-after"] == "1" and refused.headers["connection"] == "close"
    assert probe.status == 200  # an orchestrator does not restart a server for being busy


def test_a_missing_content_type_is_415_like_a_wrong_one(served: Served) -> None:
    missing = exchange(served.port, "POST", "/v1/predict", predict_body(1))
    wrong = exchange(served.port, "POST", "/v1/predict", predict_body(1), content_type="text/plain")
    assert (
        (missing.status, error_code(missing))
        == (wrong.status, error_code(wrong))
        == (415, "unsupported_media_type")
    )


class _Heard(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.event = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_during_the_drain_readiness_is_503_and_responses_close_the_connection(small_bundle: Path) -> None:  # noqa: F811
    draining = _Heard("draining")
    logger = logging.getLogger("forgeml.deploy.server.runner")
    logger.addHandler(draining)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        with serving(small_bundle) as served, ThreadPoolExecutor(1) as pool:
            running, release = blocked_model(served)
            in_flight = pool.submit(post, served.port, predict_body(1))
            assert running.wait(timeout=10)
            served.server.handle_exit(signal.SIGTERM, None)  # what the signal handler calls
            assert draining.event.wait(timeout=10)  # the shutdown has begun
            ready = exchange(served.port, "GET", "/health/ready")
            release.set()
            finished = in_flight.result(timeout=10)
    finally:
        logger.removeHandler(draining)
        logger.setLevel(previous)
    assert (ready.status, ready.json()["error"]["message"]) == (503, "shutting down")
    assert ready.headers["connection"] == "close"
    assert finished.status == 200 and finished.headers["connection"] == "close"


def test_an_answer_sent_before_the_body_was_read_reaches_the_client_without_a_reset(
    small_bundle: Path,  # noqa: F811
) -> None:
    """A request refused with ``Connection: close`` (here: past the connection cap) while its 600 kB
    body is on the way: the server sends its answer and FIN, then reads and drops the body (a
    lingering close). Closed at once, the unread body made the kernel reset the connection, and the
    client could lose the answer (87 of 8,725 requests at 3x capacity in benchmarks/overload.py)."""
    body = predict_body(8000)
    assert len(body) > 500_000  # far more than the socket buffers hold: the server must read it
    with (
        serving(small_bundle, max_connections=1, max_body_bytes=1 << 21) as served,
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as first,
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as second,
    ):
        first.sendall(request_bytes("GET", "/health/live"))  # the one place is this connection's
        assert read_reply(first, time.perf_counter()).status == 200
        started = time.perf_counter()
        second.sendall(request_bytes("POST", "/v1/predict", body, content_type="application/json"))
        refused = read_reply(second, started)
        assert second.recv(65536) == b""  # then an orderly close (FIN), not a reset
    assert (refused.status, refused.json()["error"]["code"]) == (503, "too_many_connections")
    assert refused.headers["connection"] == "close"
