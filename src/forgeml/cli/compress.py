"""``forgeml compress RUN [--prune 0.5] [--quantize int8] [--distill student.yaml | --distill-width 0.5] [--max-drop 0.01]``.

The flags are generated from :class:`forgeml.compression.CompressOptions`, the same options
:func:`forgeml.api.compress` takes. Values reach it as text and are checked there (one error naming
the flag and the fix, exit 2), not by argparse, so every bad value reads the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from forgeml.cli.options import add_option_flags, given
from forgeml.compression.options import CompressOptions


def register_compress(commands: argparse._SubParsersAction) -> None:
    """Add ``forgeml compress`` to the CLI."""
    parser = commands.add_parser(
        "compress", help="pruned, quantized and distilled variants of a run, each a bundle, in one table"
    )
    parser.add_argument("run", type=Path, help="a run folder, e.g. runs/digits_cnn")
    add_option_flags(parser, CompressOptions)
    parser.set_defaults(handler=_compress)


def _compress(args: argparse.Namespace) -> int:
    from rich.console import Console

    from forgeml import api
    from forgeml.bundle.integrity import bundle_digest
    from forgeml.cli import console
    from forgeml.compression.report import rich_table

    result = api.compress(args.run, console=console, **given(args, CompressOptions))
    table = rich_table(result.variants, result.recommended)
    # piped output gets rich's 80 columns, which would cut this 8-column table: give it room
    (console if console.is_terminal else Console(file=console.file, width=120)).print(table)
    for variant in result.variants:  # each variant is a bundle of its own: pin the one you deploy
        console.print(f"bundle digest ({variant.name}): {bundle_digest(variant.path)}")
    if result.recommended is not None:
        console.print(f"recommended (drop <= {result.max_drop:g}): {result.recommended.path}")
    console.print(f"summary: {result.summary_path}; report: {result.report_path}")
    return 0
