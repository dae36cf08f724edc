"""The real server (uvicorn in a subprocess on a free loopback port): endpoints, bad input, load, shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import forgeml
from conftest import start_server as start
from conftest import stop_server as stop
from forgeml.deploy.verify import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import mixed_table_config

    folder = tmp_path_factory.mktemp("serve")
    run = forgeml.train(mixed_table_config(folder, train={"epochs": 5}))
    forgeml.api.export(run)
    return run.bundle_path


@pytest.fixture(scope="module")
def server(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    process, base = start(bundle, "unseen_category=reject", log=tmp_path_factory.mktemp("log") / "server.log")
    yield base
    assert stop(process) == 0


ROW = {"age": 41.0, "income": 52000.0, "city": "paris", "plan": "pro"}


def post(base: str, body: bytes | dict, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{base}/v1/predict", content=content, headers={"content-type": "application/json", **headers}
    )


def metric(base: str, name: str, **headers: str) -> float:
    text = httpx.get(f"{base}/metrics", headers=headers).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_predict_matches_the_python_predictor(server: str, bundle: Path) -> None:
    rows = [ROW, {**ROW, "age": None, "city": "nice"}, {**ROW, "plan": "free", "income": 1e5}]
    response = post(server, {"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = forgeml.load(bundle).predict(pd.DataFrame(rows))
    assert [p["prediction"] for p in body["predictions"]] == expected["prediction"].tolist()
    got = np.array([p["probabilities"]["yes"] for p in body["predictions"]])
    assert np.max(np.abs(got - expected["probability_yes"].to_numpy())) <= 1e-6
    assert response.headers["x-request-id"] == body["request_id"]


def test_health_metadata_docs_page_and_metrics(server: str, bundle: Path) -> None:
    assert httpx.get(f"{server}/health/live").status_code == 200
    assert httpx.get(f"{server}/health/ready").json() == {"status": "ready"}
    metadata = httpx.get(f"{server}/v1/metadata").json()
    assert [c["name"] for c in metadata["input_schema"]["columns"]] == ["age", "income", "city", "plan"]
    assert metadata["engine"] == "onnxruntime" and len(metadata["bundle_sha256"]) == 64
    assert metadata["task"]["labels"] == ["no", "yes"] and "model.onnx" in metadata["files"]
    openapi = httpx.get(f"{server}/openapi.json").json()
    row = openapi["components"]["schemas"]["Row"]
    assert (
        set(row["properties"]) == {"age", "income", "city", "plan"} and row["additionalProperties"] is False
    )
    assert "Predict" in httpx.get(f"{server}/").text
    before = metric(server, 'forgeml_requests_total{method="POST",route="/v1/predict",status="200"}')
    for _ in range(3):
        assert post(server, {"rows": [ROW]}).status_code == 200
    after = metric(server, 'forgeml_requests_total{method="POST",route="/v1/predict",status="200"}')
    assert after - before == 3
    text = httpx.get(f"{server}/metrics").text
    for series in (
        "forgeml_request_duration_seconds_bucket",
        "forgeml_batch_rows_count",
        "forgeml_queue_depth",
        "forgeml_inflight",
        "forgeml_model_load_seconds",
        "forgeml_rejected_total",
    ):
        assert series in text
    assert "paris" not in text  # no input values in labels


BAD_JSON = [
    (b"", 400, "invalid_json"),
    (b'{"rows": [', 400, "invalid_json"),
    (b'{"rows": []} trailing', 400, "invalid_json"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json"),  # 40: nesting -> 400, not RecursionError
    (b'{"rows": [{"age": 1, "income": 2, "city": "\\ud800", "plan": "pro"}]}', 400, "invalid_json"),  # 44
    (b'{"rows": [{"age": 1, "income": 2, "city": "\xff", "plan": "pro"}]}', 400, "invalid_json"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_JSON)
def test_malformed_json_is_400(server: str, body: bytes, status: int, code: str) -> None:
    response = post(server, body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


BAD_ROWS = [
    ({**ROW, "age": "old"}, "rows[1].age", "wrong_type"),
    ({**ROW, "age": True}, "rows[1].age", "wrong_type"),  # bool is not a number
    ({k: v for k, v in ROW.items() if k != "income"}, "rows[1].income", "missing_field"),
    ({**ROW, "extra": 1}, "rows[1].extra", "unknown_field"),
    ({**ROW, "city": "tokyo"}, "rows[1].city", "invalid_value"),  # unseen category, policy = reject
    ({**ROW, "city": ["paris"]}, "rows[1].city", "wrong_type"),
]


@pytest.mark.parametrize(("row", "field", "code"), BAD_ROWS)
def test_bad_rows_are_422_naming_field_and_row_and_never_reach_the_model(
    server: str, row: dict, field: str, code: str
) -> None:
    calls = metric(server, "forgeml_model_calls_total")
    response = post(server, {"rows": [ROW, row]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["field"], error["row"], error["code"]) == (field, 1, code)
    assert metric(server, "forgeml_model_calls_total") == calls
    assert post(server, {"rows": [ROW]}).status_code == 200  # the next request is unaffected


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e309", b"9" * 5000])
def test_non_finite_and_huge_numbers_are_422(server: str, literal: bytes) -> None:
    body = b'{"rows": [{"age": ' + literal + b', "income": 1, "city": "paris", "plan": "pro"}]}'
    response = post(server, body)
    assert response.status_code == 422, response.text


def test_urls_are_refused_not_fetched(server: str) -> None:
    for row in ({**ROW, "image_url": "http://169.254.169.254/latest"}, {**ROW, "city": "file:///etc/passwd"}):
        response = post(server, {"rows": [row]})
        assert response.status_code == 400 and response.json()["error"]["code"] == "url_not_allowed"


@pytest.mark.alone  # a 10 MB body refused within 2 s
def test_size_limits_content_length_and_encoding(server: str) -> None:
    started = time.perf_counter()
    response = post(server, b"x" * (10 << 20))  # 35: 10 MB with Content-Length
    assert response.status_code == 413 and response.json()["error"]["code"] == "content_too_large"
    assert time.perf_counter() - started < 2

    def chunks():  # 36: chunked, no Content-Length
        for _ in range(50):
            yield b" " * 100_000

    chunked = httpx.post(f"{server}/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    padded = json.dumps({"rows": [ROW]}).encode()
    exactly = padded + b" " * ((1 << 20) - len(padded))  # a body of exactly the limit is accepted
    assert post(server, exactly).status_code == 200
    assert post(server, {"rows": [ROW] * 1001}).status_code == 422  # 43: above max_rows
    assert post(server, b"{}", **{"content-encoding": "gzip"}).status_code == 415  # 38
    assert (
        httpx.post(f"{server}/v1/predict", content=b"a=1", headers={"content-type": "text/plain"}).status_code
        == 415
    )
    for length in (b"-1", b"abc"):  # 37: raw socket, since clients refuse to send these
        assert _raw_status(server, length) == 400
    assert post(server, {"rows": [ROW]}).status_code == 200


def _raw_status(base: str, length: bytes) -> int:
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + length + b"\r\n\r\n{}"
        )
        reply = connection.recv(4096)
    return int(reply.split(b" ", 2)[1]) if reply else 400  # h11 may just close: acceptable too


def test_overload_timeout_and_api_key(bundle: Path, tmp_path: Path) -> None:
    key = "k" * 32
    (tmp_path / "key").write_text(key + "\n")
    process, base = start(
        bundle,
        "max_queue=2",
        "max_wait_ms=300",
        "max_batch_size=1000",
        "request_timeout_s=0.1",
        f"api_key_file={tmp_path / 'key'}",
        log=tmp_path / "log",
    )
    try:
        assert post(base, {"rows": [ROW]}).status_code == 401
        assert post(base, {"rows": [ROW]}, authorization="Bearer " + "x" * 32).status_code == 401
        assert httpx.get(f"{base}/health/live").status_code == 200  # probes stay open

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {key}"}) as client:
                return await asyncio.gather(
                    *(client.post("/v1/predict", json={"rows": [ROW]}) for _ in range(30))
                )

        responses = asyncio.run(burst())
        statuses = sorted(r.status_code for r in responses)
        # Nothing is served: an admitted request waits 300 ms for a batch, past its 0.1 s timeout.
        assert set(statuses) == {503, 504}
        # How many are refused depends on how many land in one event-loop turn: the batch being
        # collected takes queued requests as they come, freeing the queue. Each refusal is counted.
        rejected = [r for r in responses if r.status_code == 503]
        assert all(r.headers["retry-after"] == "1" for r in rejected)
        auth = {"authorization": f"Bearer {key}"}
        assert metric(base, 'forgeml_rejected_total{reason="queue_full"}', **auth) == len(rejected)
        assert metric(base, 'forgeml_rejected_total{reason="timeout"}', **auth) == statuses.count(504)
        assert httpx.get(f"{base}/health/live").status_code == 200
    finally:
        assert stop(process) == 0


@pytest.mark.alone  # 20 requests sent within 0.3 s, still in flight 0.2 s later
def test_sigterm_drains_in_flight_requests(bundle: Path, tmp_path: Path) -> None:
    process, base = start(bundle, "max_wait_ms=900", "max_batch_size=1000", log=tmp_path / "log")

    async def in_flight() -> tuple[list[int], float]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            tasks = [asyncio.create_task(client.post("/v1/predict", json={"rows": [ROW]})) for _ in range(20)]
            await asyncio.sleep(0.3)  # all 20 sent; the batch waits 0.9 s for more rows
            process.send_signal(signal.SIGTERM)
            sent = time.perf_counter()
            responses = await asyncio.gather(*tasks)
            return [r.status_code for r in responses], time.perf_counter() - sent

    statuses, waited = asyncio.run(in_flight())
    assert statuses == [200] * 20
    assert waited > 0.2  # they were still in flight when the signal came
    assert process.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health/live")


def test_shared_worker_socket_sends_small_responses_at_once() -> None:
    """--workers N: uvicorn's shared socket is marked TCP, so accepted connections get TCP_NODELAY
    (without it every response waited ~40 ms for the client's delayed ACK)."""
    import uvicorn

    from forgeml.deploy.server.runner import tcp_listener

    listener = tcp_listener(uvicorn.Config(app=None, host="127.0.0.1", port=free_port()))
    try:
        assert listener.proto == socket.IPPROTO_TCP
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        assert accepted.proto == socket.IPPROTO_TCP  # what asyncio checks before setting TCP_NODELAY
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        accepted.close()
        client.close()
    finally:
        listener.close()


def test_two_workers_serve_and_drain(bundle: Path, tmp_path: Path) -> None:
    process, base = start(bundle, "workers=2", log=tmp_path / "server.log")
    try:
        with httpx.Client() as client:  # one keep-alive connection, sequential requests
            for _ in range(10):
                response = client.post(f"{base}/v1/predict", json={"rows": [ROW]})
                assert response.status_code == 200, response.text
    finally:
        assert stop(process) == 0
