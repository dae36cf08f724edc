"""The command line: argv -> config -> the API function of the same name -> a short summary.

A ForgeError (bad input) prints one clear line and exits 2; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from forgeml.errors import ForgeError

console = Console(highlight=False, soft_wrap=True)
error_console = Console(stderr=True, highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s"
    )
    try:
        return int(args.handler(args) or 0)
    except ForgeError as exc:
        if args.verbose:
            error_console.print_exception()
        error_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
        )
        return getattr(exc, "exit_code", 2)  # 2: bad input; DataQualityError: 1, the data itself is dirty
    except KeyboardInterrupt:
        error_console.print("interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forgeml", description="From raw data to a deployed model with one config file."
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="show info logs and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from forgeml.training.command import add_train_arguments

    for name, handler, text in (
        ("train", _train, "train a model from a config"),
        ("run", _run, "every stage in order: train, evaluate, bundle"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("config", type=Path, help="the YAML config file")
        command.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key, e.g. train.learning_rate=3e-4",
        )
        add_train_arguments(command)
        command.set_defaults(handler=handler)

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

    predict = commands.add_parser("predict", help="batch prediction with a bundle")
    predict.add_argument("bundle", type=Path, help="a bundle folder, e.g. runs/digits_cnn/bundle")
    predict.add_argument("input", type=Path, help="CSV, Parquet, JSON Lines or .npz input")
    predict.add_argument(
        "-o", "--output", type=Path, required=True, help="output file: .csv, .parquet or .jsonl"
    )
    predict.set_defaults(handler=_predict)

    _register_optional(commands)
    for sub in commands.choices.values():  # --verbose also works after the verb
        sub.add_argument(
            "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def _register_optional(commands: argparse._SubParsersAction) -> None:
    """Verbs whose parsers live beside their stage (they import no torch until they run)."""
    from forgeml.checks.command import register_check
    from forgeml.commands.compress import register_compress
    from forgeml.commands.deploy import register_deploy
    from forgeml.scratch.command import register_explain
    from forgeml.training.command import register_plan

    register_check(commands)
    register_deploy(commands)
    register_compress(commands)
    register_plan(commands)
    register_explain(commands)


def _train(args: argparse.Namespace) -> int:
    return _train_or_run(args, "train")


def _run(args: argparse.Namespace) -> int:
    return _train_or_run(args, "run")


def _train_or_run(args: argparse.Namespace, verb: str) -> int:
    """`forgeml train` and `forgeml run` differ only in the API call and the evaluation summary."""
    from forgeml.training.command import distributed_launch, overrides

    if (code := distributed_launch(args, verb)) is not None:
        return code
    from forgeml import api
    from forgeml.config import load_config
    from forgeml.training import TrainingInterrupted

    call = api.train if verb == "train" else api.run
    try:
        result = call(
            load_config(args.config, overrides(args)),
            console=console,
            resume=args.resume,
            force_resume=args.force_resume,
        )
    except TrainingInterrupted as stopped:
        error_console.print(str(stopped))
        return stopped.exit_code
    run = result if verb == "train" else result[0]
    if verb == "run":
        _print_evaluation(result[1], "test")
    console.print(run.summary())
    if run.config.train.profile_steps:
        console.print(
            f"profiler trace: {run.path / 'profile'} (tensorboard --logdir {run.path / 'profile'}, "
            "with torch-tb-profiler; or open the .pt.trace.json in ui.perfetto.dev); top operators in top_ops.txt"
        )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from forgeml import api

    evaluation = api.evaluate(
        args.run, data=args.data, slices=args.slices.split(",") if args.slices else None
    )
    _print_evaluation(evaluation, str(args.data or "test"))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from forgeml import api

    console.print(f"wrote {api.compare(args.runs, output=args.output)}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from forgeml import api

    summary = api.predict(args.bundle, args.input, args.output)
    console.print(f"wrote {summary.rows} predictions to {summary.output} ({summary.engine})")
    return 0


def _print_evaluation(evaluation, title: str) -> None:
    """The headline with its interval and the baseline, flagged slices, then where the full report is."""
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


if __name__ == "__main__":
    sys.exit(main())
