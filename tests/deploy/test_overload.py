"""Overload (issue 18 item 2): admission control sheds at the door before a body is read, the event
loop stays free for probes while bodies decode, and every request is answered by its deadline.

The server is the real one (uvicorn with the runner's options and protocol) in a thread of this
process, so a test can make the model or the decoder slow and wait on events, not sleeps. The
helpers here (``serving``, ``exchange``) are shared with test_slow_clients.py.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from forgeml.config import ServeConfig
from forgeml.deploy.server.app import create_app
from forgeml.deploy.server.runner import _Server, uvicorn_options

ROW = {"age": 41.0, "income": 52000.0, "city": "paris", "plan": "pro"}
# alone: probes must answer within 0.4 s and requests by their deadline, which a neighbour's training
# could stretch (tests/conftest.py)
pytestmark = pytest.mark.alone


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import forgeml
    from conftest import mixed_table_config

    folder = tmp_path_factory.mktemp("overload")
    config = mixed_table_config(folder, train={"epochs": 1, "threads": 1}, check={"enabled": False})
    return forgeml.train(config).bundle_path


@dataclass
class Served:
    port: int
    app: Any  # the Guard
    server: _Server

    @property
    def handler(self) -> Any:
        return self.app.app.state.forgeml.handler  # Guard -> FastAPI -> state


@contextlib.contextmanager
def serving(bundle: Path, prepare: Callable[[Any], None] | None = None, **settings: Any) -> Iterator[Served]:
    """The runner's uvicorn server on a loopback socket bound here, so a client may connect at once
    (its first request is answered once the model is loaded). ``prepare(handler)`` runs before the
    server starts (so before the codec process forks). Stopped (drained) on exit."""
    config = ServeConfig(**settings)
    app = create_app(bundle, config)
    if prepare is not None:
        prepare(app.app.state.forgeml.handler)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    server = _Server(uvicorn.Config(app, **{**uvicorn_options(config), "log_level": "warning"}))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    served = Served(listener.getsockname()[1], app, server)
    try:
        assert exchange(served.port, "GET", "/health/ready", timeout=60).status == 200
        yield served
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the request's first byte to the whole answer, at the client

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body and "content_length" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_reply(connection: socket.socket, started: float) -> Reply:
    """One whole response (``ConnectionError`` if the server closes first)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without an answer after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {}
    for line in head.decode().split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", 0)):
        chunk = connection.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of the body")
        body += chunk
    return Reply(status, headers, body, time.perf_counter() - started)


def exchange(
    port: int, method: str, path: str, body: bytes = b"", *, timeout: float = 10, **headers: str
) -> Reply:
    """One request on a new connection, as a load balancer's probe makes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        started = time.perf_counter()
        connection.sendall(request_bytes(method, path, body, **headers))
        return read_reply(connection, started)


def predict_body(rows: int) -> bytes:
    return json.dumps({"rows": [{**ROW, "age": 20.0 + index % 50} for index in range(rows)]}).encode()


def post(port: int, body: bytes, *, timeout: float = 10) -> Reply:
    return exchange(port, "POST", "/v1/predict", body, timeout=timeout, content_type="application/json")


def blocked_model(served: Served) -> tuple[threading.Event, threading.Event]:
    """Make the model wait for ``release``; ``running`` is set once a call is in it."""
    running, release = threading.Event(), threading.Event()
    engine = served.handler.predictor.engine
    working = engine.run

    def run(feeds: Any) -> Any:
        running.set()
        release.wait(timeout=30)
        return working(feeds)

    engine.run = run
    return running, release


def slow_decoding(cpu_seconds: float) -> tuple[Callable[[Any], None], Any]:
    """A ``prepare`` for :func:`serving` that makes every decode burn ``cpu_seconds`` of CPU first
    (Python code holding the GIL, as pydantic and json do on a large body), and an event set when
    the first decode starts. A process-shared event: the decoding runs in the codec's child process
    (forked after ``prepare``, so it inherits the slow decoder)."""
    started = multiprocessing.get_context("fork").Event()

    def prepare(handler: Any) -> None:
        endpoint = handler.endpoint
        schema = endpoint.schema

        class Slow:
            def decode(self, *args: Any) -> Any:
                started.set()
                deadline = time.thread_time() + cpu_seconds
                while time.thread_time() < deadline:
                    pass
                return schema.decode(*args)

        endpoint.schema = Slow()

    return prepare, started


def test_a_full_queue_sheds_at_the_door_before_the_body_is_read(small_bundle: Path) -> None:
    with serving(small_bundle, max_queue=1, body_timeout_s=30) as served:
        running, release = blocked_model(served)
        with ThreadPoolExecutor(1) as pool:
            admitted = pool.submit(post, served.port, predict_body(1))
            assert running.wait(timeout=10)  # the one place is taken (by a request in the model)
            with socket.create_connection(("127.0.0.1", served.port), timeout=5) as connection:
                started = time.perf_counter()
                # the headers promise 100 kB that never come: the answer cannot wait for them
                head = request_bytes(
                    "POST", "/v1/predict", content_type="application/json", content_length="100000"
                )
                connection.sendall(head)
                shed = read_reply(connection, started)
            ready = exchange(served.port, "GET", "/health/ready")
            release.set()
            assert admitted.result(timeout=10).status == 200
    assert shed.status == 503 and shed.headers["retry-after"] == "1", shed
    assert shed.json()["error"]["code"] == "overloaded"
    assert (ready.status, ready.json()["error"]["code"]) == (503, "overloaded")  # readiness says so


def test_liveness_answers_while_large_bodies_are_decoded(small_bundle: Path) -> None:
    """Six 600-row bodies that each take 0.15 s of CPU to decode: on the event loop they held every
    probe for up to ~0.9 s; decoded in the codec thread, the loop answers probes in milliseconds."""
    body = predict_body(600)
    prepare, decoding = slow_decoding(0.15)
    with serving(small_bundle, prepare) as served, ThreadPoolExecutor(6) as pool:
        posts = [pool.submit(post, served.port, body) for _ in range(6)]
        assert decoding.wait(timeout=10)
        probes = [exchange(served.port, "GET", "/health/live") for _ in range(5)]
        answers = [future.result(timeout=30) for future in posts]
    assert [answer.status for answer in answers] == [200] * 6
    assert all(probe.status == 200 for probe in probes)
    slowest = max(probe.seconds for probe in probes)
    assert slowest < 0.4, [round(probe.seconds, 3) for probe in probes]


def test_every_request_is_answered_within_its_timeout(small_bundle: Path) -> None:
    """The deadline counts from the request's arrival, decoding and queueing included: four
    requests whose bodies take 0.3 s each to decode, with a 0.5 s timeout, are each answered
    (200 or 504) within 0.5 s + 0.5 s at the client (decoded one after another on the event loop,
    the last was answered after 1.2 s)."""
    body = predict_body(600)
    prepare, _ = slow_decoding(0.3)
    with serving(small_bundle, prepare, request_timeout_s=0.5) as served, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(served.port, body), range(4)))
    statuses = sorted(answer.status for answer in answers)
    assert set(statuses) <= {200, 504} and 504 in statuses, statuses
    late = [round(answer.seconds, 2) for answer in answers if answer.seconds > 1.0]
    assert not late, late
    timed_out = next(answer for answer in answers if answer.status == 504)
    assert timed_out.json()["error"]["code"] == "timeout"
