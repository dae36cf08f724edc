"""``forgeml check``: report on a data file or a config's data, optionally clean it.

The options are :class:`forgeml.check_options.CheckOptions`, the same :func:`forgeml.api.check`
takes; ``--json`` and ``--schema`` only choose how the report is printed.
Exit codes: 0 clean (warnings allowed), 1 blocking problems, 2 bad invocation (the API raises
ConfigError/DataError and ``cli.main`` prints it and exits 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from forgeml.check_options import CHECK_FLAGS, CheckOptions
from forgeml.cli.options import add_option_flags, given

if TYPE_CHECKING:
    from forgeml.checks.lm import LMDataReport

_DESCRIPTION = """\
Infer the schema of a table and run the data-quality checks (ids and severities: forgeml.checks.catalogue).
DATA is a .csv/.tsv/.parquet/.jsonl/.npz file or sklearn:<name>; a .yaml/.yml is a config whose data
section and check.allow are used (a language-model config gets the examples' checks). Exit 0: no blocking problems; 1: blocking problems; 2: bad input."""


def register_check(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``check`` sub-command to ``subparsers`` and set its handler; return the sub-parser."""
    parser = subparsers.add_parser(
        "check", help="data quality report; --fix writes a cleaned copy", description=_DESCRIPTION
    )
    parser.add_argument("source", metavar="data", help="a data file, sklearn:<name>, or a YAML config")
    add_option_flags(parser, CheckOptions, flags=CHECK_FLAGS)
    parser.add_argument(
        "--json", action="store_true", help="print the JSON report to stdout instead of tables"
    )
    parser.add_argument(
        "--schema", action="store_true", help="also print the inferred kind and evidence of every column"
    )
    parser.set_defaults(handler=run_check)
    return parser


def run_check(args: argparse.Namespace) -> int:
    """Check (and with --fix, clean then re-check) the data; return the exit code."""
    from rich.console import Console

    from forgeml import api
    from forgeml.checks.render import print_report, report_json
    from forgeml.checks.report import DataReport

    console = Console(file=sys.stdout, highlight=False)
    report = api.check(args.source, console=None if args.json else console, **given(args, CheckOptions))
    if not isinstance(report, DataReport):  # a language model's examples: no table, no columns
        return _print_lm(report, args)
    if args.json:
        sys.stdout.write(report_json(report))
    else:
        print_report(report, console, schema=args.schema)
    return 0 if report.passed else 1


def _print_lm(report: LMDataReport, args: argparse.Namespace) -> int:
    from rich.console import Console

    from forgeml.checks.lm import print_lm_report
    from forgeml.errors import ConfigError

    if args.schema:
        raise ConfigError(
            f"--schema: not used for a language-model config ({args.source}); the config's "
            "data.source and data.validation_source say what to check. Drop the option."
        )
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        print_lm_report(report, Console(file=sys.stdout, highlight=False, soft_wrap=True))
    return 0 if report.passed else 1
