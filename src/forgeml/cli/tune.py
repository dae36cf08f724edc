"""``forgeml tune CONFIG [--storage URL] [--jobs N] [--set KEY=VALUE]``: an Optuna search, then a leaderboard.

The flags are generated from :class:`forgeml.tuning.options.TuneOptions`, the options
:func:`forgeml.api.tune` takes; what to search is the config's ``tune:`` section.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from forgeml.cli.options import add_option_flags, add_set_flag, given
from forgeml.tuning.options import TuneOptions

LEADERBOARD_ROWS = 15


def register_tune(commands: argparse._SubParsersAction) -> None:
    """Add ``forgeml tune`` to the CLI."""
    parser = commands.add_parser(
        "tune", help="search hyperparameters (Optuna); each trial is a run; run it again to continue"
    )
    parser.add_argument(
        "config", type=Path, help="the YAML config file (its tune: section says what to search)"
    )
    add_set_flag(parser, "tune.trials=30")
    add_option_flags(parser, TuneOptions)
    parser.set_defaults(handler=_tune)


def _tune(args: argparse.Namespace) -> int:
    from rich.table import Table

    from forgeml import api
    from forgeml.cli import console
    from forgeml.config import load_config
    from forgeml.tuning.report import describe

    outcome = api.tune(load_config(args.config, args.overrides), console=console, **given(args, TuneOptions))
    table = Table(
        title=f"{outcome.study}: validation {outcome.metric} ({'higher' if outcome.maximize else 'lower'} is better)"
    )
    for column in ("trial", "state", outcome.metric, "epochs", "seconds", "settings"):
        table.add_column(column, overflow="fold")
    for row in outcome.rows[:LEADERBOARD_ROWS]:
        value = "-" if row["value"] is None else f"{row['value']:.4f}"
        table.add_row(str(row["trial"]), row["state"], value, str(row["epochs"] or "-"),
                      f"{row['seconds'] or 0:.1f}", describe(row["settings"]))  # fmt: skip
    console.print(table)
    pruned, failed = outcome.count("pruned"), outcome.count("failed")
    console.print(
        f"{outcome.count('complete')} finished, {pruned} pruned, {failed} failed in {outcome.seconds:.1f}s"
    )
    test = outcome.test_metrics.get(outcome.metric)
    console.print(
        f"best: trial {outcome.best_number}, validation {outcome.metric} {outcome.best_value:.4f}"
        + (f"; test {outcome.metric} {test:.4f} (scored once, for this trial)" if test is not None else "")
    )
    console.print(f"best config: {outcome.best_config} (forgeml run it); report: {outcome.report_path}")
    return 0
