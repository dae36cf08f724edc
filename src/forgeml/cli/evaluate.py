"""``forgeml evaluate`` and ``forgeml compare``: a run's scores, and several runs side by side."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register_evaluate(commands: argparse._SubParsersAction) -> None:
    """Add ``forgeml evaluate`` and ``forgeml compare`` to the CLI."""
    evaluate = commands.add_parser("evaluate", help="score a run's bundle on its test split or a file")
    evaluate.add_argument("run", type=Path, help="a run folder, e.g. runs/digits_cnn")
    evaluate.add_argument(
        "--data", type=Path, help="a labelled file to evaluate on instead of the test split"
    )
    evaluate.add_argument("--slices", help="comma-separated columns to score slice by slice, e.g. city,age")
    evaluate.set_defaults(handler=_evaluate)

    compare = commands.add_parser(
        "compare", help="several runs' metrics and curves side by side in one HTML page"
    )
    compare.add_argument("runs", type=Path, nargs="+", help="run folders, e.g. runs/a runs/b")
    compare.add_argument(
        "-o", "--output", type=Path, default=Path("compare.html"), help="the HTML page to write"
    )
    compare.set_defaults(handler=_compare)


def _evaluate(args: argparse.Namespace) -> int:
    from forgeml import api

    evaluation = api.evaluate(
        args.run, data=args.data, slices=args.slices.split(",") if args.slices else None
    )
    print_evaluation(evaluation, str(args.data or "test"))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from forgeml import api
    from forgeml.cli import console

    console.print(f"wrote {api.compare(args.runs, output=args.output)}")
    return 0


def print_evaluation(evaluation: Any, title: str) -> None:
    """The headline with its interval and the baseline, flagged slices, then where the full report is."""
    from forgeml.cli import console
    from forgeml.evaluation.lm import LMEvaluation

    if isinstance(evaluation, LMEvaluation):  # a language model's report: it says what it wrote
        console.print(evaluation.summary())
        return
    name, value = evaluation.metrics.headline
    interval = evaluation.interval
    spread = f" (95% interval {interval.low:.4f} to {interval.high:.4f})" if interval is not None else ""
    baseline = evaluation.baseline.values.get(name)
    versus = f"; baseline {baseline:.4f}" if baseline is not None else ""
    console.print(f"{title} ({evaluation.metrics.rows} rows): {name} {value:.4f}{spread}{versus}")
    for item in evaluation.flagged_slices:
        console.print(
            f"  slice {item.column}={item.value} trails overall by {item.gap:.4f} ({item.rows} rows)"
        )
    console.print(f"metrics: {evaluation.metrics_path}; report: {evaluation.report_path}")
