"""The Optuna study behind ``forgeml tune``: storage, sampler, pruner, and the worker loop.

Each worker (this process, ``--jobs`` more on this machine, or the same command on other machines)
opens the same study in storage and asks it for trials until the study holds ``tune.trials``
finished or running ones. Optuna hands each trial number to exactly one worker, so no trial runs
twice. A trial is a normal run folder, ``runs/<name>/trials/<n>/``, trained by ``forgeml.train``.

Crashes: a worker killed mid-trial leaves its trial RUNNING. The journal file (the default) has no
heartbeat, so each trial records ``host:pid`` of its worker, and any worker on the same host that
finds the process gone marks the trial failed and enqueues its parameters once more (the journal
orders the writes, so when two workers notice at once only the first one's update applies and
only it enqueues). An SQL storage uses Optuna's own heartbeat and ``RetryFailedTrialCallback``,
which covers workers on other machines. A failed trial never counts towards ``tune.trials``.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from forgeml.config import Config, SearchRange
from forgeml.errors import ConfigError, ForgeError
from forgeml.extras import require
from forgeml.training import NonFiniteLoss
from forgeml.tuning.pruning import PruningCallback
from forgeml.tuning.space import probe, suggest

logger = logging.getLogger(__name__)
TUNE_DIR = "tune"
TRIALS_DIR = "trials"
JOURNAL = "journal.log"
# Validation metrics (forgeml.evaluation.metrics) and whether more is better.
METRIC_MAXIMIZE = {
    **dict.fromkeys(
        ("accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
         "weighted_recall", "weighted_f1", "roc_auc", "pr_auc", "r2", "explained_variance"),
        True,
    ),
    **dict.fromkeys(
        ("log_loss", "brier", "expected_calibration_error", "mse", "rmse", "mae", "median_absolute_error", "mape"),
        False,
    ),
}  # fmt: skip
NETWORK_TYPES = ("mlp", "cnn", "bag_of_embeddings", "text_cnn", "transformer", "pretrained")
START_TIMEOUT = 300.0  # seconds a --jobs worker waits for the others to start (then it goes alone)
CONSECUTIVE_FAILURES = 3  # a worker whose last trials all failed stops: the cause is not the sample


@dataclass(frozen=True)
class Verbs:
    """The public functions a trial needs, handed down by :mod:`forgeml.api` (tuning sits below it)."""

    train: Callable[..., Any]
    evaluate: Callable[..., Any]


@dataclass(frozen=True)
class Plan:
    """What every worker of one tune command needs: picklable, so ``--jobs`` processes get a copy."""

    config: Config
    space: dict[str, SearchRange]
    storage: str | None
    jobs: int
    deadline: float | None  # time.time() after which no new trial starts


def metric_of(config: Config) -> tuple[str | None, bool]:
    """The metric to optimise (None: the task's headline, accuracy or R², known after the first trial)
    and whether to maximise it."""
    metric = config.tune.metric
    if metric is None:
        return None, True
    if metric not in METRIC_MAXIMIZE:
        close = difflib.get_close_matches(metric, list(METRIC_MAXIMIZE), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"tune.metric: unknown validation metric {metric!r}.{hint} Choose one of {', '.join(METRIC_MAXIMIZE)}.",
            key="tune.metric",
        )
    return metric, METRIC_MAXIMIZE[metric]


def tune_dir(config: Config) -> Path:
    return config.run_dir() / TUNE_DIR


def open_storage(config: Config, storage: str | None) -> Any:
    """The Optuna storage: a journal file (default ``runs/<name>/tune/journal.log``) or an SQLAlchemy URL.

    It is opened here, before any trial, so an unreachable database is one ConfigError (exit 2).
    """
    optuna = require("optuna", "tune", "forgeml tune")
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    if storage is not None and "://" in storage:
        kwargs = {"connect_args": {"connect_timeout": 10}} if storage.startswith("postgresql") else {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", optuna.exceptions.ExperimentalWarning
                )  # heartbeats: stable since 2.9
                return RDBStorage(
                    storage,
                    engine_kwargs=kwargs,
                    heartbeat_interval=30,
                    grace_period=90,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
        except Exception as exc:  # sqlalchemy's OperationalError, a missing driver, a malformed URL
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"--storage {_redacted(storage)}: cannot open the study's database ({reason}). Check the host, "
                "port, credentials and that the database exists; leave --storage out for a local journal file.",
                key="--storage",
            ) from None
    path = Path(storage) if storage is not None else tune_dir(config) / JOURNAL
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except (OSError, optuna.exceptions.OptunaError) as exc:
        raise ConfigError(
            f"--storage {path}: cannot write the study's journal file there ({exc}). Pick a writable path.",
            key="--storage",
        ) from None


def _redacted(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db`` (errors never print a password)."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def load_study(plan: Plan, *, worker: int = 0) -> Any:
    """Create or continue the study named ``config.name`` (TPE seeded from ``seed``, the worker and the trials so far)."""
    optuna = require("optuna", "tune", "forgeml tune")
    config = plan.config
    metric, maximize = metric_of(config)
    storage = open_storage(config, plan.storage)
    pruner: Any = {
        "median": optuna.pruners.MedianPruner(
            n_startup_trials=5, n_warmup_steps=2
        ),  # epoch 1: too noisy to judge
        "hyperband": optuna.pruners.HyperbandPruner(min_resource=1),
        "none": optuna.pruners.NopPruner(),
    }[config.tune.pruner]
    sampler = optuna.samplers.TPESampler(seed=config.seed, constant_liar=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=storage,
        study_name=config.name,
        sampler=sampler,
        pruner=pruner,
        direction="maximize" if maximize else "minimize",
        load_if_exists=True,
    )
    recorded = study.user_attrs.get("metric", "")
    wanted = metric or ""
    if "metric" in study.user_attrs and recorded != wanted:
        raise ConfigError(
            f"the study {config.name!r} in this storage optimises {recorded or 'the headline metric'}, the config "
            f"asks for {wanted or 'the headline metric'}. Give the config another name, or --storage another file.",
            key="tune.metric",
        )
    if "metric" not in study.user_attrs:
        study.set_user_attr("metric", wanted)
    # The seed also counts the worker and the trials already in the study: a second worker, or a study
    # continued after a crash, would otherwise replay the first one's random start-up trials.
    reseed = (config.seed + worker * 7919 + len(study.trials)) % 2**32
    study.sampler = optuna.samplers.TPESampler(seed=reseed, constant_liar=True)
    return study


def run_worker(
    plan: Plan, verbs: Verbs, *, worker: int = 0, console: Console | None = None, start: Any = None
) -> int:
    """Ask the study for trials and train them until it holds ``tune.trials`` or time is up; trials run.

    ``start`` (a barrier of the ``--jobs`` workers) lets them begin together once each has opened the
    study, so a worker that imports faster does not take every trial of a short search alone.
    """
    study = load_study(plan, worker=worker)
    if start is not None:
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=START_TIMEOUT)
    quiet = Console(file=io.StringIO())
    gate_log = logging.getLogger("forgeml.checks.runner")
    level = gate_log.level
    try:
        with warnings.catch_warnings():
            # ask/tell with a heartbeat is what we do on purpose (optimize() cannot train our run folders),
            # and Optuna's stale-trial check has been "experimental" since 2.9
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used", UserWarning)
            warnings.filterwarnings("ignore", category=_experimental_warning())
            return _trials(study, plan, verbs, quiet, console, gate_log)
    finally:
        gate_log.setLevel(level)


def _experimental_warning() -> type[Warning]:
    from optuna.exceptions import ExperimentalWarning

    return ExperimentalWarning


def _trials(
    study: Any, plan: Plan, verbs: Verbs, quiet: Console, console: Console | None, gate_log: Any
) -> int:
    """The worker's loop: a trial at a time while the study wants more and time is left; how many ran."""
    done = failures = 0
    while plan.deadline is None or time.time() < plan.deadline:
        _fail_dead_trials(study)
        if _counted(study) >= plan.config.tune.trials:
            break
        trial = study.ask()
        outcome = _run_trial(study, trial, plan, verbs, quiet)
        done += 1
        if done == 1:  # every trial reads the same data: its check warnings were said once, by trial one
            gate_log.setLevel(max(gate_log.level, logging.ERROR))
        failures = failures + 1 if outcome is None else 0
        if console is not None:
            console.print(_trial_line(trial.number, outcome, study), soft_wrap=True)
        if failures >= CONSECUTIVE_FAILURES:
            raise ConfigError(
                f"the last {failures} trials of {plan.config.name!r} failed; the last: "
                f"{study.trials[trial.number].user_attrs.get('error')}. Fix that and run forgeml tune again (the "
                "study continues).",
                key="tune",
            )
    return done


def _run_trial(study: Any, trial: Any, plan: Plan, verbs: Verbs, console: Console) -> float | None:
    """Train one trial and tell the study; the value, or None when it failed."""
    from optuna.storages._heartbeat import get_heartbeat_thread  # no public name; optimize() uses it too
    from optuna.trial import TrialState

    config = plan.config
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    try:
        values = suggest(trial, plan.space)
        settings = {"output_dir": str(config.run_dir() / TRIALS_DIR), "name": str(trial.number)}
        if plan.jobs > 1 and config.train.threads == 0:  # share the cores; recorded, so best.yaml repeats it
            settings["train.threads"] = max(1, (os.cpu_count() or 1) // plan.jobs)
        trial_config = probe(_base(config), values | settings, origin=f"trial {trial.number}")
        trial.set_user_attr("settings", values)
        pruning = None
        if config.model.type in NETWORK_TYPES and config.tune.pruner != "none":
            pruning = PruningCallback(trial, maximize=study.direction.name == "MAXIMIZE")
        # an SQL storage's heartbeat (what Optuna's optimize() runs): a worker that dies stops beating
        with get_heartbeat_thread(trial._trial_id, study._storage):
            run = verbs.train(trial_config, callbacks=[pruning] if pruning else None, console=console)
        value = _record(trial, run, config)
    except (ConfigError, NonFiniteLoss) as exc:  # this sample cannot train (heads vs width, lr too high)
        trial.set_user_attr("error", str(exc))
        study.tell(trial, state=TrialState.FAIL)
        return None
    except BaseException as exc:  # bad data, a bug, Ctrl-C: the trial fails and the error goes up
        trial.set_user_attr("error", str(exc) or type(exc).__name__)
        study.tell(trial, state=TrialState.FAIL)
        raise
    if pruning is not None and pruning.pruned_at is not None:
        trial.set_user_attr("pruned_at", pruning.pruned_at)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, value)
    return value


def _base(config: Config) -> dict[str, Any]:
    from forgeml.config import config_json

    return config_json(config)


def _record(trial: Any, run: Any, config: Config) -> float:
    """Store the trial's validation metrics and run folder on it; return the tuned metric's value."""
    manifest = json.loads((run.bundle_path / "bundle.json").read_text(encoding="utf-8"))
    validation = (manifest.get("metrics") or {}).get("validation") or {}
    values = validation.get("metrics") or {}
    if not values:
        raise ForgeError(
            f"{config.name}: no validation rows, and tune compares trials on the validation split only. "
            "Set data.split.validation (e.g. 0.15) or data.validation_source."
        )
    metric = config.tune.metric or ("r2" if validation.get("task") == "regression" else "accuracy")
    if metric not in values:
        raise ForgeError(
            f"tune.metric {metric!r} is not measured for this task ({validation.get('task')}); "
            f"choose one of {', '.join(sorted(values))}."
        )
    trial.set_user_attr("metric", metric)
    trial.set_user_attr("validation", values)
    trial.set_user_attr("run_dir", str(run.path))
    trial.set_user_attr("epochs", len(run.result.history))
    trial.set_user_attr("seconds", round(run.result.seconds, 3))
    return float(values[metric])


def _counted(study: Any) -> int:
    """Trials that count towards ``tune.trials``: finished well, pruned, or running now (failed ones do not)."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def _fail_dead_trials(study: Any) -> None:
    """Mark failed the RUNNING trials whose worker on this host is gone (kill -9), and retry each once."""
    import optuna
    from optuna.trial import TrialState

    if not isinstance(study._storage, optuna.storages.JournalStorage):
        optuna.storages.fail_stale_trials(study)  # SQL storage: Optuna's heartbeat decides
        return
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        where, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if where != host or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "error", f"its worker (pid {pid}) died")
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first and retries it
        if "retry_of" not in trial.user_attrs:  # once: a trial that kills its worker twice is skipped
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        logger.warning("trial %d: its worker (pid %s) is gone; marked failed", trial.number, pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _trial_line(number: int, value: float | None, study: Any) -> str:
    trial = study.trials[number]
    if value is None:
        return f"trial {number}: failed ({trial.user_attrs.get('error', '')})"
    metric = trial.user_attrs.get("metric", "value")
    pruned = trial.user_attrs.get("pruned_at")
    note = f", pruned at epoch {pruned}" if pruned else ""
    return (
        f"trial {number}: validation {metric} {value:.4f}{note} ({trial.user_attrs.get('seconds', 0):.1f}s)"
    )
