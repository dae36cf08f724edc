"""``forgeml train`` / ``run`` / ``check`` for a config with ``model.type: causal_lm``, and
``forgeml serve`` for an LM bundle.

The verbs stay the same as for tabular models (one CLI, as in Ludwig): the CLI peeks at
``model.type`` (or the bundle's format) and hands such configs and bundles here, so ``--set``,
``--resume``, ``--nproc``, ``--json`` and the serve flags work unchanged. No stage may import
forgeml.llm, which is why the routing sits in :mod:`forgeml.cli` and not in the stages' handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from forgeml.errors import ConfigError


def train_or_run(args: argparse.Namespace, verb: str) -> int:
    """Fine-tune (and for ``run`` also write report.html); print the before/after figures."""
    from forgeml.cli import console, error_console
    from forgeml.llm.config import load_lm_config
    from forgeml.llm.stage import evaluate_lm, train_lm
    from forgeml.training import TrainingInterrupted
    from forgeml.training.command import overrides

    try:
        run = train_lm(
            load_lm_config(args.config, overrides(args)),
            console=console,
            resume=args.resume,
            force_resume=args.force_resume,
        )
    except TrainingInterrupted as stopped:
        error_console.print(str(stopped))
        return stopped.exit_code
    before, after = run.metrics["before"], run.metrics["after"]
    if before and after:
        console.print(
            f"validation loss {before['loss']:.4f} -> {after['loss']:.4f}; "
            f"perplexity {before['perplexity']:.2f} -> {after['perplexity']:.2f}"
        )
    training = run.metrics["training"]
    console.print(
        f"trained {training['steps']} steps in {run.result.seconds:.1f}s ({training['steps_per_second']:.2f} steps/s); "
        f"run folder: {run.path}; bundle: {run.bundle_path}"
    )
    if verb == "run":
        console.print(f"report: {evaluate_lm(run)}")
    return 0


def check(args: argparse.Namespace) -> int:
    """The LM data gate on the config's data, printed (or ``--json``): 0 clean, 1 blocking findings."""
    from forgeml import atomic
    from forgeml.cli import console
    from forgeml.llm.checks import check_lm_config, print_report

    _refuse_table_options(args)
    report = check_lm_config(args.data)
    if args.report_dir is not None:
        atomic.write_text(Path(args.report_dir) / "data_report.json", json.dumps(report.to_json(), indent=2))
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        print_report(report, console)
    return 0 if report.passed else 1


def serve(args: argparse.Namespace) -> int:
    """Serve an LM bundle: ``--config``'s serve section, then ``--set`` (any LMServeConfig key), then the flags."""
    from forgeml.deploy.command import serve_settings
    from forgeml.llm.serving import lm_serve_config, run_lm_server

    # what forgeml.serve(bundle, **settings) does, minus keyword arguments (a key named `bundle` or
    # `config` would collide with its parameters instead of being reported as unknown)
    settings = _config_serve_section(args.config) if args.config is not None else {}
    run_lm_server(args.bundle, lm_serve_config(args.bundle, None, settings | serve_settings(args)))
    return 0


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


def _config_serve_section(path: Path) -> dict[str, Any]:
    """The serve keys a config sets explicitly (an LM or a tabular config); unset ones keep the bundle's."""
    from forgeml.config import load_config
    from forgeml.llm.config import is_lm_config, load_lm_config

    section = load_lm_config(path).serve if is_lm_config(path) else load_config(path).serve
    return section.model_dump(exclude_unset=True)
