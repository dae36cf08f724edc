"""What ``forgeml tune`` leaves in ``runs/<name>/tune/``: best.yaml, leaderboard.csv and report.html.

The report embeds Optuna's own matplotlib plots (optimisation history, parameter importances,
parallel coordinates) as PNG data URIs, so it opens offline. Trials are ranked on the validation
split; the test split is scored once, for the best trial, here, after the search has ended.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from forgeml import atomic, tracking
from forgeml.config import config_from_dict, dump_config
from forgeml.errors import ForgeError
from forgeml.evaluation.report import png_data_uri
from forgeml.templates import render
from forgeml.tuning.study import Plan, Verbs, tune_dir

logger = logging.getLogger(__name__)
STATES = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
    "WAITING": "waiting",
}


@dataclass(frozen=True)
class Outcome:
    """The finished search: its leaderboard (best first), the best trial and where the outputs are."""

    study: str
    metric: str
    maximize: bool
    rows: list[dict[str, Any]]
    best_number: int
    best_value: float
    best_config: Path
    report_path: Path
    leaderboard_path: Path
    test_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, state: str) -> int:
        return sum(row["state"] == state for row in self.rows)

    def summary(self) -> dict[str, float]:
        """Numbers for the study's tracking run: best validation value, test metrics, trial counts."""
        numbers = {f"best_validation_{self.metric}": self.best_value, "seconds": self.seconds}
        numbers |= {f"test_{name}": value for name, value in self.test_metrics.items()}
        return numbers | {
            f"trials_{state}": float(self.count(state)) for state in ("complete", "pruned", "failed")
        }


def write_outputs(
    study: Any, plan: Plan, verbs: Verbs, *, seconds: float, failed_workers: list[str]
) -> Outcome:
    """best.yaml, the test score of the best trial, leaderboard.csv and report.html."""
    from optuna.trial import TrialState

    config, folder = plan.config, tune_dir(plan.config)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        errors = [t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs]
        raise ForgeError(
            f"no trial of {config.name!r} finished ({len(study.trials)} in the study"
            + (f"; the last error: {errors[-1]}" if errors else "")
            + "). Raise tune.timeout or tune.trials and run forgeml tune again: the study continues."
        )
    best = study.best_trial
    maximize = study.direction.name == "MAXIMIZE"
    best_config = folder / "best.yaml"
    _write_best(Path(best.user_attrs["run_dir"]), config, best_config)
    evaluation = verbs.evaluate(best.user_attrs["run_dir"])  # the test split, once, for the chosen model
    tracking.log_run(
        Path(best.user_attrs["run_dir"]), config
    )  # its MLflow run gains the test metrics and card
    rows = leaderboard(study, maximize)
    outcome = Outcome(
        study=config.name,
        metric=best.user_attrs["metric"],
        maximize=maximize,
        rows=rows,
        best_number=best.number,
        best_value=float(best.value),
        best_config=best_config,
        report_path=folder / "report.html",
        leaderboard_path=folder / "leaderboard.csv",
        test_metrics=dict(evaluation.metrics.values),
        seconds=seconds,
    )
    atomic.write_text(outcome.leaderboard_path, _csv(rows))
    atomic.write_text(outcome.report_path, _html(study, outcome, plan, failed_workers))
    return outcome


def _write_best(run_dir: Path, config: Any, path: Path) -> None:
    """The best trial's resolved config under the study's own output folder, as ``<name>-best``."""
    raw = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    raw |= {"name": f"{config.name}-best", "output_dir": config.output_dir}
    atomic.write_text(path, dump_config(config_from_dict(raw, origin=str(run_dir / "config.yaml"))))


def leaderboard(study: Any, maximize: bool) -> list[dict[str, Any]]:
    """Every trial, finished ones best first, then pruned (best first), then the rest by number."""
    order = {"complete": 0, "pruned": 1}

    def key(row: dict[str, Any]) -> tuple[int, float, int]:
        value = row["value"] if row["value"] is not None else float("inf")
        return (
            order.get(row["state"], 2),
            (-value if maximize else value) if row["state"] in order else 0,
            row["trial"],
        )

    rows = [
        {
            "trial": trial.number,
            "state": STATES.get(trial.state.name, trial.state.name.lower()),
            # a pruned trial's value in Optuna is its last epoch report (a loss, negated when maximising):
            # show the validation metric of the model its run folder holds instead
            "value": trial.value if trial.state.name == "COMPLETE" else _last_value(trial),
            "epochs": trial.user_attrs.get("epochs"),
            "seconds": trial.user_attrs.get("seconds"),
            "settings": trial.user_attrs.get("settings") or trial.params,
            "note": _note(trial),
        }
        for trial in study.trials
    ]
    return sorted(rows, key=key)


def _last_value(trial: Any) -> float | None:
    """A pruned trial's validation metric when it was measured (its run folder's model), else None."""
    metric = trial.user_attrs.get("metric")
    return (trial.user_attrs.get("validation") or {}).get(metric) if metric else None


def _note(trial: Any) -> str:
    if "pruned_at" in trial.user_attrs:
        return f"pruned at epoch {trial.user_attrs['pruned_at']}"
    if "retry_of" in trial.user_attrs:
        return f"retry of trial {trial.user_attrs['retry_of']}"
    return str(trial.user_attrs.get("error", ""))[:200]


def describe(settings: dict[str, Any]) -> str:
    """``train.learning_rate=0.001368, model.hidden=[64]``: a trial's settings, floats to 4 digits."""
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in settings.items()
    )


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "state", "value", "epochs", "seconds", "settings", "note"])
    for row in rows:
        writer.writerow([row["trial"], row["state"], row["value"], row["epochs"], row["seconds"],
                         json.dumps(row["settings"], sort_keys=True), row["note"]])  # fmt: skip
    return buffer.getvalue()


def _html(study: Any, outcome: Outcome, plan: Plan, failed_workers: list[str]) -> str:
    from optuna.visualization import matplotlib as plots

    figures = [
        ("Optimisation history", _plot(plots.plot_optimization_history, study)),
        ("Parameter importances", _plot(plots.plot_param_importances, study)),
        ("Parallel coordinates", _plot(plots.plot_parallel_coordinate, study)),
    ]
    header = ["trial", "state", f"validation {outcome.metric}", "epochs", "seconds", "settings", "note"]
    table = [
        [row["trial"], row["state"], row["value"], row["epochs"], row["seconds"],
         describe(row["settings"]), row["note"]]
        for row in outcome.rows
    ]  # fmt: skip
    return render(
        "tune_report.html.j2",
        outcome=outcome,
        config=plan.config,
        direction="higher is better" if outcome.maximize else "lower is better",
        header=header,
        table=table,
        figures=figures,
        failed_workers=failed_workers,
        best_yaml=outcome.best_config.read_text(encoding="utf-8"),
        test=sorted(outcome.test_metrics.items()),
    )


def _plot(draw: Callable[..., Any], study: Any) -> str | None:
    """One of Optuna's matplotlib plots as a PNG data URI; None when it cannot be drawn (too few trials)."""
    from matplotlib import pyplot

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            axes = draw(study)
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        buffer = io.BytesIO()
        figure.set_size_inches(9, 4.5)  # the parallel-coordinates axes need the width
        figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        pyplot.close(figure)
        return png_data_uri(buffer.getvalue())
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. importances need 2 finished trials
        logger.info("tune report: %s not drawn (%s)", getattr(draw, "__name__", draw), exc)
        return None
