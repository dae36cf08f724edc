"""``forgeml train`` and ``forgeml run``: a config in, :func:`forgeml.api.train` / :func:`forgeml.api.run`, a summary out.

Importing this module does not import torch (the CLI builds its parser on every call).

Exit codes of ``forgeml train``: 0 done; 2 bad input (ConfigError and friends, e.g. a refused
resume); 143 stopped by SIGTERM and 130 by SIGINT after writing a checkpoint (resume with
``--resume``); a second signal exits at once with the same code. With ``--nproc`` the code is
torchrun's (1 when a worker failed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from forgeml.cli.options import add_set_flag

DISTRIBUTED_HELP = "several processes (torchrun); every rank takes batch_size / N rows of each batch"


def register_train(commands: argparse._SubParsersAction) -> None:
    """Add ``forgeml train`` and ``forgeml run`` (every stage in order) to the CLI."""
    for name, handler, text in (
        ("train", _train, "train a model from a config"),
        ("run", _run, "every stage in order: train, evaluate, bundle"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("config", type=Path, help="the YAML config file")
        add_set_flag(command, "train.learning_rate=3e-4")
        add_train_arguments(command)
        command.set_defaults(handler=handler)


def _train(args: argparse.Namespace) -> int:
    return _train_or_run(args, "train")


def _run(args: argparse.Namespace) -> int:
    return _train_or_run(args, "run")


def _train_or_run(args: argparse.Namespace, verb: str) -> int:
    """`forgeml train` and `forgeml run` differ only in the API call and the evaluation summary."""
    if (code := distributed_launch(args, verb)) is not None:
        return code
    from forgeml import api
    from forgeml.bundle.integrity import bundle_digest
    from forgeml.cli import console, error_console
    from forgeml.cli.evaluate import print_evaluation
    from forgeml.config import load_config
    from forgeml.training import TrainingInterrupted

    call = api.train if verb == "train" else api.run
    config = load_config(args.config, overrides(args))
    try:
        result = call(config, console=console, resume=args.resume, force_resume=args.force_resume)
    except TrainingInterrupted as stopped:
        error_console.print(str(stopped))
        return stopped.exit_code
    run = result if verb == "train" else result[0]
    if verb == "run":
        print_evaluation(result[1], "test")
    console.print(run.summary())
    if run.result.is_main:  # ranks > 0 of a torchrun job write no bundle, so they have no digest to print
        console.print(f"bundle digest: {bundle_digest(run.bundle_path)}")
    print_leaderboard(result[1].leaderboard if verb == "run" else getattr(run.model, "leaderboard", ()))
    if run.config.train.profile_steps:
        console.print(
            f"profiler trace: {run.path / 'profile'} (tensorboard --logdir {run.path / 'profile'}, "
            "with torch-tb-profiler; or open the .pt.trace.json in ui.perfetto.dev); top operators in top_ops.txt"
        )
    return 0


def print_leaderboard(rows: list[dict[str, object]] | tuple[dict[str, object], ...]) -> None:
    """model.type auto: one line per candidate (ensemble first); nothing for a single model.

    ``rows`` are the training leaderboard (``forgeml train``) or the evaluation's, which adds the test
    metric (``forgeml run``).
    """
    from forgeml.cli import console

    if not rows:
        return

    def number(value: object, digits: str) -> str:
        return "-" if value is None else format(value, digits)

    tested = any(row.get("test_metric") is not None for row in rows)
    metric = str(rows[0].get("metric", "metric"))
    console.print(
        f"{'candidate':<10} {'weight':>6} {'valid loss':>10} {'test ' + metric if tested else '':>13} "
        f"{'fit s':>7} {'predict s':>9}"
    )
    for row in rows:
        console.print(
            f"{row['model']!s:<10} {number(row['weight'], '.2f'):>6} {number(row['validation_loss'], '.4f'):>10} "
            f"{number(row.get('test_metric'), '.4f') if tested else '':>13} {number(row['fit_seconds'], '.1f'):>7} "
            f"{number(row['predict_seconds'], '.3f'):>9}" + (f"  {row['note']}" if row.get("note") else "")
        )


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """``--resume``, ``--force-resume``, ``--deterministic``, ``--profile`` and torchrun's launch flags."""
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue from the run folder's last complete checkpoint (or from CHECKPOINT)",
    )
    parser.add_argument(
        "--force-resume", action="store_true", help="resume even though the config or data changed"
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic kernels (same as train.deterministic=true)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="write a PyTorch profiler trace of 5 steps to runs/<name>/profile (train.profile_steps=5)",
    )
    group = parser.add_argument_group("distributed", DISTRIBUTED_HELP)
    group.add_argument("--nproc", type=int, default=1, help="processes on this machine (one per GPU)")
    group.add_argument("--nnodes", help="machines, or MIN:MAX for an elastic job (torchrun --nnodes)")
    group.add_argument("--node-rank", type=int, help="this machine's index (torchrun --node-rank)")
    group.add_argument("--master-addr", help="address of the node-rank-0 machine (torchrun --master-addr)")
    group.add_argument("--master-port", type=int, help="its port (torchrun --master-port)")
    group.add_argument("--rdzv-endpoint", help="HOST:PORT of a c10d rendezvous (torchrun --rdzv-endpoint)")
    group.add_argument(
        "--max-restarts", type=int, help="restart the job this often after a failure; restarts resume"
    )


def distributed_launch(args: argparse.Namespace, verb: str) -> int | None:
    """When ``--nproc``/``--nnodes`` ask for several processes, run torchrun and return its exit code."""
    if args.nproc <= 1 and args.nnodes in (None, "1"):
        return None
    from forgeml.training.distributed import launch, torchrun_command

    worker = [verb, str(Path(args.config).resolve())]
    worker += [f"--set={override}" for override in args.overrides]
    if args.resume is True:
        worker.append("--resume")
    elif args.resume:
        worker.append(f"--resume={Path(args.resume).resolve()}")
    worker += ["--force-resume"] * args.force_resume + ["--deterministic"] * args.deterministic
    worker += ["--profile"] * args.profile
    return launch(torchrun_command(max(1, args.nproc), worker, vars(args)))


def overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` overrides plus the ones flags stand for (``--deterministic``)."""
    flags = ["train.deterministic=true"] * args.deterministic + ["train.profile_steps=5"] * args.profile
    return [*args.overrides, *flags]
