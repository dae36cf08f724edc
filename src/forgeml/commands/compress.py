"""``forgeml compress RUN [--prune 0.5] [--quantize int8] [--distill student.yaml | --distill-width 0.5] [--max-drop 0.01]``.

Values reach :func:`forgeml.compression.compress_options` as text and are checked there (one error
naming the flag and the fix, exit 2), not by argparse, so every bad value reads the same. Nothing heavy is imported until the verb runs.
Part of the CLI (it imports :mod:`forgeml.api` and :mod:`forgeml.cli`), so no stage imports it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register_compress(commands: argparse._SubParsersAction) -> None:
    """Add ``forgeml compress`` to the CLI."""
    parser = commands.add_parser(
        "compress", help="pruned, quantized and distilled variants of a run, each a bundle, in one table"
    )
    parser.add_argument("run", type=Path, help="a run folder, e.g. runs/digits_cnn")
    parser.add_argument("--prune", help="fraction to prune, in [0, 1), e.g. 0.5")
    parser.add_argument("--prune-method", default="structured", help="structured (default), global or layer")
    parser.add_argument("--finetune-epochs", default=5,
                        help="epochs of fine-tuning after pruning (default 5; 0: none)")  # fmt: skip
    parser.add_argument(
        "--quantize", help="int8 (static for CNNs, dynamic otherwise), dynamic, static or fp16"
    )
    student = parser.add_mutually_exclusive_group()
    student.add_argument(
        "--distill", metavar="STUDENT.yaml", help="distil into the model section of this file"
    )
    student.add_argument("--distill-width", help="distil into the teacher's architecture with widths scaled by this factor, e.g. 0.5")  # fmt: skip
    parser.add_argument("--temperature", default=4.0, help="distillation temperature (4)")  # fmt: skip
    parser.add_argument("--alpha", default=0.7, help="weight of the teacher's outputs (0.7)")  # fmt: skip
    parser.add_argument("--max-drop", help="largest accepted metric drop; recommends the smallest variant within it")  # fmt: skip
    parser.set_defaults(handler=_compress)


def _compress(args: argparse.Namespace) -> int:
    from rich.console import Console

    from forgeml import api
    from forgeml.cli import console
    from forgeml.compression.report import rich_table

    result = api.compress(
        args.run, prune=args.prune, quantize=args.quantize, distill=args.distill, distill_width=args.distill_width,
        max_drop=args.max_drop, prune_method=args.prune_method, finetune_epochs=args.finetune_epochs,
        temperature=args.temperature, alpha=args.alpha, console=console,
    )  # fmt: skip
    table = rich_table(result.variants, result.recommended)
    # piped output gets rich's 80 columns, which would cut this 8-column table: give it room
    (console if console.is_terminal else Console(file=console.file, width=120)).print(table)
    if result.recommended is not None:
        console.print(f"recommended (drop <= {result.max_drop:g}): {result.recommended.path}")
    console.print(f"summary: {result.summary_path}; report: {result.report_path}")
    return 0
