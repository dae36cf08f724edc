"""Run tracking in MLflow (``track.mlflow`` in the config; the ``forgeml[track]`` extra).

The run folder stays the source of truth: tracking copies what a finished run folder holds into an
MLflow run, after the fact: the resolved config (flattened) as params, ``history.csv`` as per-epoch
metrics, the bundle's validation metrics and ``metrics.json``'s test metrics, ``report.html``,
``data_report.html`` and the bundle as artifacts, and tags for the data fingerprint and the git
commit. The MLflow run id is kept in ``<run>/mlflow.json``, so a later stage (``forgeml run``'s
evaluation) adds to the same MLflow run what it wrote. Tune trials are nested under the study's run.

Logging never fails training: any error (server down, bad URI) is one warning, and the run
folder has everything. TensorBoard event files stay ``train.tensorboard``'s job.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from forgeml import atomic
from forgeml.config import Config, config_json
from forgeml.extras import require
from forgeml.training.checkpoint import flatten

logger = logging.getLogger(__name__)
STATE_FILE = "mlflow.json"
PARAM_LIMIT = 6000  # characters MLflow keeps of a param value
_parent: contextvars.ContextVar[str | None] = contextvars.ContextVar("forgeml_mlflow_parent", default=None)


def check(config: Config) -> None:
    """Before any work: ``track.mlflow`` needs mlflow installed (MissingExtraError, exit 2)."""
    if config.track.mlflow is not None:
        require("mlflow", "track", "track.mlflow", key="track.mlflow")


def log_run(run_dir: Path, config: Config) -> str | None:
    """Copy the run folder into MLflow (what was not logged yet); the MLflow run id, or None."""
    if config.track.mlflow is None:
        return None
    return _safely(lambda: _log_folder(run_dir, config, _parent.get()), run_dir)


def start_parent(folder: Path, config: Config) -> str | None:
    """The study's MLflow run (created once, found again when the study continues); None when off."""
    if config.track.mlflow is None:
        return None
    return _safely(lambda: _session(folder, config, None, run_name=f"{config.name} (tune)")[1], folder)


def finish_parent(folder: Path, config: Config, metrics: dict[str, float], files: list[Path]) -> None:
    """The study's outcome on its run: the tune settings, best and test metrics, report and best.yaml."""
    if config.track.mlflow is None:
        return

    def log() -> str:
        client, run_id, state = _session(folder, config, None, run_name=f"{config.name} (tune)")
        if "params" not in state["logged"]:
            _log_params(
                client, run_id, {"tune": config_json(config)["tune"], "model.type": config.model.type}
            )
            state["logged"].append("params")
        client.log_batch(run_id, metrics=[_metric(name, value, 0) for name, value in metrics.items()])
        for path in files:
            client.log_artifact(run_id, str(path))
        _save(folder, state)
        client.set_terminated(run_id)
        return run_id

    _safely(log, folder)


@contextlib.contextmanager
def nested_under(run_id: str | None) -> Iterator[None]:
    """Runs logged inside this block become children of ``run_id`` (tune trials under their study)."""
    token = _parent.set(run_id)
    try:
        yield
    finally:
        _parent.reset(token)


def _safely(work: Any, where: Path) -> Any:
    try:
        return work()
    except Exception as exc:  # logging must never fail training: one warning, the run folder has it all
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        logger.warning("MLflow logging of %s failed (%s); the run folder holds everything.", where, reason)
        return None


def _session(
    folder: Path, config: Config, parent: str | None, *, run_name: str
) -> tuple[Any, str, dict[str, Any]]:
    """An MLflow client, the folder's run id (created on first use) and what was logged already."""
    assert config.track.mlflow is not None
    settings = config.track.mlflow
    if settings.tracking_uri.startswith("file:"):
        # MLflow 3 keeps its folder store in maintenance mode behind this switch; a folder is what was asked for
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault(
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"
    )  # a server that is down: a warning in seconds
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    mlflow = require("mlflow", "track", "track.mlflow", key="track.mlflow")
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    state = _load(folder)
    if state.get("tracking_uri") == settings.tracking_uri and state.get("run_id"):
        return client, state["run_id"], state
    experiment = client.get_experiment_by_name(settings.experiment)
    experiment_id = (
        experiment.experiment_id if experiment else _create_experiment(client, settings.experiment)
    )
    tags = {"forgeml.run_folder": str(folder.resolve())} | _provenance(config)
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    state = {"tracking_uri": settings.tracking_uri, "run_id": run.info.run_id, "logged": []}
    _save(folder, state)
    return client, run.info.run_id, state


def _create_experiment(client: Any, name: str) -> str:
    try:
        return client.create_experiment(name)
    except Exception:  # another process created it a moment ago
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _log_folder(run_dir: Path, config: Config, parent: str | None) -> str:
    client, run_id, state = _session(run_dir, config, parent, run_name=config.name)
    logged: list[str] = state["logged"]
    if "params" not in logged:
        _log_params(client, run_id, config_json(config))
        logged.append("params")
    metrics: list[Any] = []
    if "history" not in logged and (run_dir / "history.csv").is_file():
        metrics += _history(run_dir / "history.csv")
        logged.append("history")
    bundle = run_dir / "bundle" / "bundle.json"
    if "validation" not in logged and bundle.is_file():
        values = (json.loads(bundle.read_text(encoding="utf-8")).get("metrics") or {}).get("validation") or {}
        metrics += [_metric(f"validation_{k}", v, 0) for k, v in (values.get("metrics") or {}).items()]
        logged.append("validation")
    if "test" not in logged and (run_dir / "metrics.json").is_file():
        values = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")).get("metrics") or {}
        metrics += [_metric(f"test_{k}", v, 0) for k, v in values.items()]
        logged.append("test")
    for start in range(0, len(metrics), 1000):  # MLflow's batch limit
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    for name in ("data_report.html", "report.html"):
        if name not in logged and (run_dir / name).is_file():
            client.log_artifact(run_id, str(run_dir / name))
            logged.append(name)
    if "bundle" not in logged and bundle.is_file():
        client.log_artifacts(run_id, str(bundle.parent), artifact_path="bundle")
        logged.append("bundle")
    _save(run_dir, state)
    client.set_terminated(run_id)
    return run_id


def _log_params(client: Any, run_id: str, tree: dict[str, Any]) -> None:
    from mlflow.entities import Param

    params = [
        Param(key, json.dumps(value) if not isinstance(value, str) else value)
        for key, value in flatten(tree).items()
    ]
    params = [Param(p.key, p.value[:PARAM_LIMIT]) for p in params]
    for start in range(0, len(params), 100):  # MLflow's batch limit for params
        client.log_batch(run_id, params=params[start : start + 100])


def _history(path: Path) -> list[Any]:
    metrics = []
    with path.open(encoding="utf-8") as file:
        for row in csv.DictReader(file):
            epoch = int(row["epoch"])
            metrics += [
                _metric(name, row[name], epoch) for name in ("train_loss", "val_loss") if row.get(name)
            ]
    return metrics


def _metric(name: str, value: Any, step: int) -> Any:
    import time

    from mlflow.entities import Metric

    return Metric(name, float(value), int(time.time() * 1000), step)


def _provenance(config: Config) -> dict[str, str]:
    """Tags: a sha256 of the data files (or the built-in set's name) and the git commit of the working folder."""
    digest = hashlib.sha256()
    for source in (config.data.source, config.data.test_source):
        if source is None:
            continue
        path = Path(source)
        if path.is_file():
            with path.open("rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
        else:
            digest.update(source.encode())
    tags = {"forgeml.data_fingerprint": digest.hexdigest()}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        tags["mlflow.source.git.commit"] = commit
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout, or no git: no commit tag
    return tags


def _load(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save(folder: Path, state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_text(folder / STATE_FILE, json.dumps(state, indent=2))
