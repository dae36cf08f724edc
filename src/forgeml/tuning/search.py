"""The search itself: check, open the study, run the workers, write the outputs."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from forgeml import tracking
from forgeml.config import Config
from forgeml.tuning.options import TuneOptions
from forgeml.tuning.report import Outcome, write_outputs
from forgeml.tuning.space import search_space
from forgeml.tuning.study import Plan, Verbs, load_study, metric_of, run_worker, tune_dir


@dataclass(frozen=True)
class _Worker:
    plan: Plan
    verbs: Verbs
    index: int
    parent_run: str | None
    start: Any


def tune_study(
    config: Config, options: TuneOptions, verbs: Verbs, *, console: Console | None = None
) -> Outcome:
    """Search, then write the outputs; every check of the space and the storage happens before a trial."""
    started = time.time()
    space = search_space(config)
    metric_of(config)
    deadline = started + config.tune.timeout if config.tune.timeout is not None else None
    plan = Plan(config, space, options.storage, options.jobs, deadline)
    load_study(plan)  # opens (or creates) the study: an unreachable storage fails here, exit 2
    parent = tracking.start_parent(tune_dir(config), config)
    context = multiprocessing.get_context("spawn")  # fork would copy torch's threads and locks
    start = context.Barrier(options.jobs) if options.jobs > 1 else None
    helpers = [
        context.Process(
            target=_work, args=(_Worker(plan, verbs, index, parent, start),), name=f"forgeml-tune-{index}"
        )
        for index in range(1, options.jobs)
    ]
    for helper in helpers:
        helper.start()
    try:
        with tracking.nested_under(parent):
            run_worker(plan, verbs, worker=0, console=console, start=start)
    finally:
        for helper in helpers:
            helper.join()
    failed = [helper.name for helper in helpers if helper.exitcode]
    study = load_study(plan)
    outcome = write_outputs(study, plan, verbs, seconds=time.time() - started, failed_workers=failed)
    tracking.finish_parent(
        tune_dir(config), config, outcome.summary(), [outcome.report_path, outcome.best_config]
    )
    return outcome


def _work(worker: _Worker) -> None:
    """A ``--jobs`` helper process: the same loop, its own sampler seed, no console output."""
    with tracking.nested_under(worker.parent_run):
        run_worker(worker.plan, worker.verbs, worker=worker.index, start=worker.start)
