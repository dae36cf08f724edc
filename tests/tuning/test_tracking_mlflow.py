"""Tracking in MLflow: a run folder copied into a local folder store, a real `mlflow server` on loopback
(SQLite backend) receiving a tune study with its trials nested, and a server that is down costing a warning."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from conftest import mixed_table_config
from forgeml import api
from forgeml.config import load_config
from forgeml.deploy.verify import free_port

QUICK = {"bootstrap": 0, "permutation_repeats": 0}


@pytest.fixture(scope="module", autouse=True)
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """Started first, so it boots while the folder-store test runs; `ready` waits on its /health."""
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = folder / "server.log"
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job runner: we log runs only
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{folder}/mlflow.db", "--default-artifact-root", str(folder / "artifacts")]  # fmt: skip
    with log.open("wb") as handle:
        # its own process group: mlflow server runs uvicorn as a child, and teardown ends both
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the group this fixture started; its database is thrown away
        process.wait(timeout=30)


def ready(server: tuple[subprocess.Popen[bytes], str, Path]) -> str:
    process, url, log = server
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url
        time.sleep(0.2)  # between health probes
    raise AssertionError(f"mlflow server not healthy after 180 s: {log.read_text()[-3000:]}")


def test_a_training_run_is_copied_into_a_folder_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # file:./mlruns is relative to where forgeml runs
    config = mixed_table_config(tmp_path, train={"epochs": 3}, track={"mlflow": {"experiment": "churn"}})
    run = api.train(load_config(config))
    client = MlflowClient(tracking_uri="file:./mlruns")
    [logged] = client.search_runs([client.get_experiment_by_name("churn").experiment_id])
    assert (
        logged.data.params["train.learning_rate"] == "0.01" and logged.data.params["model.hidden"] == "[16]"
    )
    assert [m.step for m in client.get_metric_history(logged.info.run_id, "val_loss")] == [1, 2, 3]
    assert "validation_accuracy" in logged.data.metrics
    assert len(logged.data.tags["forgeml.data_fingerprint"]) == 64
    assert {item.path for item in client.list_artifacts(logged.info.run_id)} == {"data_report.html", "bundle"}
    bundle = {item.path for item in client.list_artifacts(logged.info.run_id, "bundle")}
    assert "bundle/bundle.json" in bundle and "bundle/weights.safetensors" in bundle
    assert json.loads((run.path / "mlflow.json").read_text())["run_id"] == logged.info.run_id


def test_a_server_that_is_down_costs_a_warning_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = f"http://127.0.0.1:{free_port()}"
    config = mixed_table_config(tmp_path, train={"epochs": 1}, track={"mlflow": {"tracking_uri": down}})
    with caplog.at_level(logging.WARNING, logger="forgeml.tracking"):
        run = api.train(load_config(config))
    assert (run.bundle_path / "bundle.json").is_file()
    assert any("MLflow logging" in record.getMessage() for record in caplog.records)


@pytest.mark.slow  # the server boots in about 4 s of CPU
def test_tune_trials_are_nested_under_the_study_on_a_real_server_with_an_sql_study(
    server, tmp_path: Path
) -> None:
    url = ready(server)
    config = mixed_table_config(
        tmp_path,
        train={"epochs": 2},
        evaluate=QUICK,
        tune={"trials": 2, "space": {"train.learning_rate": {"log_uniform": [1e-3, 1e-1]}}},
        track={"mlflow": {"tracking_uri": url, "experiment": "tune"}},
    )
    # the study in an SQL database (Optuna's RDBStorage, as on a cluster), the runs on the MLflow server
    outcome = api.tune(load_config(config), storage=f"sqlite:///{tmp_path}/study.db")
    assert (tmp_path / "study.db").is_file() and not (
        tmp_path / "runs" / "tiny" / "tune" / "journal.log"
    ).exists()
    client = MlflowClient(tracking_uri=url)
    runs = client.search_runs([client.get_experiment_by_name("tune").experiment_id])
    [study] = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    trials = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == study.info.run_id]
    assert sorted(run.info.run_name for run in trials) == ["0", "1"]
    assert study.data.metrics["best_validation_accuracy"] == outcome.best_value
    assert "test_accuracy" in study.data.metrics
    assert {"report.html", "best.yaml"} <= {item.path for item in client.list_artifacts(study.info.run_id)}
    for trial in trials:
        assert "train.learning_rate" in trial.data.params and "val_loss" in trial.data.metrics
        assert "bundle" in {item.path for item in client.list_artifacts(trial.info.run_id)}
    # the best trial's run gained what scoring it on the test split wrote (as forgeml run's evaluation adds)
    [best] = [run for run in trials if run.info.run_name == str(outcome.best_number)]
    assert best.data.metrics["test_accuracy"] == outcome.test_metrics["accuracy"]
    assert "report.html" in {item.path for item in client.list_artifacts(best.info.run_id)}
