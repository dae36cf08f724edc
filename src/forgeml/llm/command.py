"""``forgeml train`` / ``forgeml run`` for a config with ``model.type: causal_lm``.

The verbs stay the same as for tabular models (one CLI, as in Ludwig): the CLI peeks at
``model.type`` and hands such configs here, so ``--set``, ``--resume`` and ``--nproc`` work unchanged.
"""

from __future__ import annotations

import argparse


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
