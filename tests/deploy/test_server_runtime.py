"""Server runtime: cheap model calls run on the event loop, slow ones in the worker; loaded objects are frozen out of the GC."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from forgeml.config import ServeConfig
from forgeml.deploy.server.app import create_app
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


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import forgeml
    from conftest import mixed_table_config

    folder = tmp_path_factory.mktemp("runtime")
    return forgeml.train(mixed_table_config(folder, train={"epochs": 1, "threads": 1})).bundle_path


def test_loaded_server_freezes_its_long_lived_objects_out_of_the_collector(bundle: Path) -> None:
    """Full GC passes over torch's and the model's objects stalled requests for ~300 ms at 64
    clients; once loaded, the server moves them to the permanent generation (gc.freeze)."""
    import gc

    gc.unfreeze()
    try:
        with TestClient(create_app(bundle, ServeConfig())) as client:
            assert client.get("/health/ready").status_code == 200
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # give this test process its collector back


def test_a_model_failure_is_a_500_with_the_request_id_and_the_next_request_is_served(bundle: Path) -> None:
    row = {"age": 41.0, "income": 52000.0, "city": "paris", "plan": "pro"}
    with TestClient(create_app(bundle, ServeConfig())) as client:
        assert client.post("/v1/predict", json={"rows": [row]}).status_code == 200
        engine = client.app.app.state.forgeml.handler.predictor.engine  # Guard -> FastAPI -> state
        working = engine.run
        engine.run = lambda feeds: 1 / 0  # a bug in the model call, not bad input
        failed = client.post("/v1/predict", json={"rows": [row]})
        engine.run = working
        assert failed.status_code == 500
        error = failed.json()["error"]
        assert error["code"] == "internal_error" and error["request_id"] == failed.headers["x-request-id"]
        assert "ZeroDivisionError" not in failed.text  # no internals leak to the client
        assert client.post("/v1/predict", json={"rows": [row]}).json()["predictions"][0]["prediction"] in (
            "yes",
            "no",
        )
