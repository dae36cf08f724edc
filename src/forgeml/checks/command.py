"""The ``forgeml check`` sub-command: report on a data file or a config's data, optionally clean it.

Exit codes: 0 clean (warnings allowed), 1 blocking problems, 2 bad invocation (the handler raises
ConfigError/DataError and ``cli.main`` prints it and exits 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from forgeml import atomic
from forgeml.checks.fixes import fix_table
from forgeml.checks.render import print_report, report_json, write_reports
from forgeml.checks.runner import check
from forgeml.config import CAUSAL_LM, Config, load_config
from forgeml.errors import ConfigError

_DESCRIPTION = """\
Infer the schema of a table and run the data-quality checks (ids and severities: forgeml.checks.catalogue).
DATA is a .csv/.tsv/.parquet/.jsonl/.npz file or sklearn:<name>; a .yaml/.yml is a config whose data
section and check.allow are used (a language-model config gets the examples' checks). Exit 0: no blocking problems; 1: blocking problems; 2: bad input."""


def register_check(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``check`` sub-command to ``subparsers`` and set its handler; return the sub-parser."""
    parser = subparsers.add_parser(
        "check", help="data quality report; --fix writes a cleaned copy", description=_DESCRIPTION
    )
    parser.add_argument("data", help="a data file, sklearn:<name>, or a YAML config")
    parser.add_argument("--target", help="the label column (a config's data.target is used otherwise)")
    parser.add_argument("--test", dest="test_source", help="a test file: adds the train/test overlap check")
    parser.add_argument("--fix", action="store_true", help="write a cleaned copy to -o and check it")
    parser.add_argument(
        "-o", "--output", type=Path, help="the cleaned file (.csv, .parquet or .jsonl) for --fix"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the JSON report to stdout instead of tables"
    )
    parser.add_argument(
        "--schema", action="store_true", help="also print the inferred kind and evidence of every column"
    )
    parser.add_argument("--report-dir", type=Path, help="also write data_report.json and .html here")
    parser.set_defaults(handler=run_check)
    return parser


def run_check(args: argparse.Namespace) -> int:
    """Check (and with --fix, clean then re-check) the data; return the exit code."""
    config = load_config(args.data) if Path(args.data).suffix.lower() in (".yaml", ".yml") else None
    if config is not None and config.kind == CAUSAL_LM:
        return _check_lm(args, config)
    source, target, test_source, allow, task = _resolve(args, config)
    console = Console(file=sys.stdout, highlight=False)
    if args.fix:
        if args.output is None:
            raise ConfigError(
                "--fix needs -o OUT: the cleaned copy is written to a new file (.csv, .parquet or .jsonl)."
            )
        result = fix_table(source, args.output, target=target, task=task)
        if not args.json:
            console.print(
                f"wrote {result.rows_out} of {result.rows_in} rows to {result.output}; fix log: {result.log_path}",
                soft_wrap=True,
            )
        source = str(result.output)
    report = check(source, target=target, test_source=test_source, allow=allow, task=task)
    if args.report_dir is not None:
        write_reports(report, args.report_dir)
    if args.json:
        sys.stdout.write(report_json(report))
    else:
        print_report(report, console, schema=args.schema)
    return 0 if report.passed else 1


def _resolve(
    args: argparse.Namespace, config: Config | None
) -> tuple[str, str | None, str | None, list[str], str]:
    """Source, target, test file, allowed ids and task: from the arguments, or from a config file."""
    if config is None:
        return args.data, args.target, args.test_source, [], "auto"
    data = config.data
    return (
        data.source,
        args.target or data.target,
        args.test_source or data.test_source,
        list(config.check.allow),
        data.task,
    )


def _check_lm(args: argparse.Namespace, config: Config) -> int:
    """The LM data gate on the config's examples, printed (or ``--json``): 0 clean, 1 blocking findings."""
    from forgeml.checks.lm import check_lm_config, print_lm_report  # transformers loads only here

    _refuse_table_options(args)
    report = check_lm_config(config)
    if args.report_dir is not None:
        atomic.write_text(Path(args.report_dir) / "data_report.json", json.dumps(report.to_json(), indent=2))
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        print_lm_report(report, Console(file=sys.stdout, highlight=False, soft_wrap=True))
    return 0 if report.passed else 1


def _refuse_table_options(args: argparse.Namespace) -> None:
    if args.fix:
        raise ConfigError(
            f"--fix cleans tables only; {args.data} is a language-model config (model.type: causal_lm). "
            "Edit the lines `forgeml check` lists, or accept their ids with check.allow in the config."
        )
    given = [
        flag
        for flag, value in (("--target", args.target), ("--test", args.test_source), ("-o", args.output))
        if value is not None
    ] + (["--schema"] if args.schema else [])
    if given:
        raise ConfigError(
            f"{', '.join(given)}: not used for a language-model config ({args.data}); the config's "
            "data.source and data.validation_source say what to check. Drop the option."
        )
