"""The training options of ``forgeml train``/``forgeml run`` and the ``forgeml plan`` sub-command.

Importing this module does not import torch (the CLI builds its parser on every call).

Exit codes of ``forgeml train``: 0 done; 2 bad input (ConfigError and friends, e.g. a refused
resume); 143 stopped by SIGTERM and 130 by SIGINT after writing a checkpoint (resume with
``--resume``); a second signal exits at once with the same code. With ``--nproc`` the code is
torchrun's (1 when a worker failed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

DISTRIBUTED_HELP = "several processes (torchrun); every rank takes batch_size / N rows of each batch"


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


def register_plan(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``forgeml plan CONFIG``: parameters, FLOPs, memory and an epoch-time estimate, before training."""
    parser = subparsers.add_parser(
        "plan", help="parameters, FLOPs, memory and epoch time of a config, measured before training"
    )
    parser.add_argument("config", type=Path, help="the YAML config file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key",
    )
    parser.add_argument("--batches", type=int, default=5, help="batches timed for the epoch estimate")
    parser.set_defaults(handler=_plan)
    return parser


def _plan(args: argparse.Namespace) -> int:
    from forgeml.config import load_config
    from forgeml.training.plan import plan_config, render_plan

    plan = plan_config(load_config(args.config, args.overrides), timed_batches=args.batches)
    Console(highlight=False).print(render_plan(plan))
    return 0
