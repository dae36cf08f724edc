"""Metrics through prometheus_client: one registry per app, and correct totals with --workers N."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import forgeml
from forgeml.deploy.server import runner
from forgeml.deploy.server.metrics import Metrics
from forgeml.deploy.verify import free_port, wait_ready


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics answer, keyed by name and labels (parsed, so label order is free)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


PREDICT_200 = (
    "forgeml_requests_total",
    frozenset({("route", "/v1/predict"), ("method", "POST"), ("status", "200")}),
)


def test_each_app_counts_its_own_requests() -> None:
    first, second = Metrics(), Metrics()
    first.request("/v1/predict", "POST", 200, 0.003)
    first.reject("queue_full")
    first.batch(5)
    first.inflight += 1
    first.model_load_seconds = 1.5
    got = samples(first.render())
    assert got[PREDICT_200] == 1
    assert got[("forgeml_rejected_total", frozenset({("reason", "queue_full")}))] == 1
    assert got[("forgeml_predicted_rows_total", frozenset())] == 5
    assert got[("forgeml_batch_rows_bucket", frozenset({("le", "8.0")}))] == 1
    assert (
        got[
            (
                "forgeml_request_duration_seconds_bucket",
                frozenset({("route", "/v1/predict"), ("le", "0.001")}),
            )
        ]
        == 0
    )
    assert (got[("forgeml_inflight", frozenset())], got[("forgeml_model_load_seconds", frozenset())]) == (
        1,
        1.5,
    )
    assert PREDICT_200 not in samples(second.render())
    assert first.inflight == 1 and second.inflight == 0


def test_supervisor_marks_gone_workers_dead(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that died or was replaced is marked dead, so its live gauges stop counting."""

    class Worker:
        def __init__(self, pid: int) -> None:
            self.pid = pid

    marked: list[int] = []
    monkeypatch.setattr(runner.multiprocess, "mark_process_dead", marked.append)
    monkeypatch.setattr(runner.Multiprocess, "keep_subprocess_alive", lambda self: None)
    supervisor = runner._Supervisor.__new__(runner._Supervisor)  # no signal handlers, no sockets
    supervisor.processes = [Worker(10), Worker(11)]
    supervisor.keep_subprocess_alive()
    assert marked == []
    supervisor.processes = [Worker(10), Worker(12)]  # 11 died; uvicorn started 12 in its place
    supervisor.keep_subprocess_alive()
    assert marked == [11]


def test_shared_metrics_folder_is_private_and_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with runner.shared_metrics_folder() as folder:
        assert folder.is_dir() and not any(folder.iterdir())
        assert runner.os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(folder)
    assert not folder.exists() and "PROMETHEUS_MULTIPROC_DIR" not in runner.os.environ


@pytest.mark.slow
def test_two_workers_report_the_total_of_both(tmp_path: Path) -> None:
    from conftest import mixed_table_config

    run = forgeml.train(mixed_table_config(tmp_path, train={"epochs": 2}))
    forgeml.api.export(run)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w+")
    command = [sys.executable, "-m", "forgeml", "serve", str(run.bundle_path), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--set", "workers=2"], stdout=subprocess.DEVNULL, stderr=log, text=True
    )
    try:
        wait_ready(base, process, log=log)
        row = {"age": 41.0, "income": 52000.0, "city": "paris", "plan": "pro"}
        sent = 24
        for _ in range(sent):  # a new connection each time: either worker may accept it
            assert httpx.post(f"{base}/v1/predict", json={"rows": [row]}).status_code == 200
        for _ in range(6):  # whichever worker answers /metrics reports both workers' requests
            got = samples(httpx.get(f"{base}/metrics").text)
            assert got[PREDICT_200] == sent
            assert got[("forgeml_predicted_rows_total", frozenset())] == sent
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
