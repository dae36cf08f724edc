"""``forgeml plan CONFIG``: parameters, FLOPs, memory and an epoch-time estimate, before training.

Importing this module does not import torch; :func:`forgeml.api.plan` does when the verb runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from forgeml.cli.options import add_set_flag


def register_plan(commands: argparse._SubParsersAction) -> None:
    """Add ``forgeml plan`` to the CLI."""
    parser = commands.add_parser(
        "plan", help="parameters, FLOPs, memory and epoch time of a config, measured before training"
    )
    parser.add_argument("config", type=Path, help="the YAML config file")
    add_set_flag(parser, "train.batch_size=64")
    parser.add_argument("--batches", type=int, default=5, help="batches timed for the epoch estimate")
    parser.set_defaults(handler=_plan)


def _plan(args: argparse.Namespace) -> int:
    from rich.console import Console

    from forgeml import api
    from forgeml.config import load_config
    from forgeml.training.plan import render_plan

    plan = api.plan(load_config(args.config, args.overrides), batches=args.batches)
    Console(highlight=False).print(render_plan(plan))
    return 0
