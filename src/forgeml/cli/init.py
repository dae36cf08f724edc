"""``forgeml init DATA [--target COL] [--test FILE] [-o FILE]``: the starter config for a data file.

A thin handler over :func:`forgeml.api.init`, which asks :mod:`forgeml.checks.init` for the text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register_init(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``init`` sub-command to ``subparsers`` and set its handler; return the sub-parser."""
    parser = subparsers.add_parser(
        "init",
        help="write a starter config for a data file",
        description="Check DATA once and write the config a newcomer edits: source, target, task, the "
        "columns left out and why, and the usual settings commented out at their defaults.",
    )
    parser.add_argument(
        "source", metavar="data", help="a .csv/.tsv/.parquet/.jsonl/.npz file or sklearn:<name>"
    )
    parser.add_argument("--target", help="the label column (default: a table's last column)")
    parser.add_argument("--test", dest="test_source", help="a separate test file")
    parser.add_argument(
        "-o", "--output", type=Path, help="the config file to write (default: print it); never overwritten"
    )
    parser.set_defaults(handler=run_init)
    return parser


def run_init(args: argparse.Namespace) -> int:
    """Print the config, or write it to -o and say where."""
    from forgeml import api

    text = api.init(args.source, target=args.target, test_source=args.test_source, output=args.output)
    sys.stdout.write(
        text if args.output is None else f"wrote {args.output}; edit it, then: forgeml run {args.output}\n"
    )
    return 0
