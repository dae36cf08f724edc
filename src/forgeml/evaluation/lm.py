"""Evaluate a fine-tuned language model: the report with base vs fine-tuned answers side by side.

Validation loss and perplexity are measured during training (before and after, in metrics.json);
evaluation generates the fine-tuned model's answers to the prompts the base model answered then,
and writes ``samples.json`` and ``report.html`` (``templates/lm_report.html.j2``, autoescaped: the
prompts and answers are user and model text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml import atomic, templates
from forgeml.bundle.causal_lm import read_lm_bundle
from forgeml.config import load_config
from forgeml.models.generate import answers
from forgeml.training.lm import BASE_SAMPLES, LMRun
from forgeml.training.run import BUNDLE_DIR


@dataclass(frozen=True)
class LMEvaluation:
    """What evaluating a language-model run wrote: the report, the samples, and the run's metrics."""

    metrics: dict[str, Any]  # validation loss and perplexity before/after, and training figures
    samples: list[dict[str, str]]  # prompt, base answer, fine-tuned answer
    report_path: Path
    samples_path: Path

    def summary(self) -> str:
        """What the CLI prints."""
        return f"report: {self.report_path}"


def evaluate_lm(run: LMRun | str | Path) -> LMEvaluation:
    """Write ``report.html``: loss and perplexity before/after, and base vs fine-tuned sample answers."""
    if isinstance(run, LMRun):
        run_dir, config, model, tokenizer, template = run.path, run.config, run.model, run.tokenizer, run.template
    else:
        run_dir = Path(run)
        config = load_config(run_dir / "config.yaml")
        bundle = read_lm_bundle(run_dir / BUNDLE_DIR)
        model, tokenizer, template = bundle.model, bundle.tokenizer, bundle.template
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    base = json.loads((run_dir / BASE_SAMPLES).read_text(encoding="utf-8"))
    tuned = answers(model, tokenizer, template, list(base), max_new_tokens=config.evaluate.max_new_tokens)
    samples = [
        {"prompt": prompt, "base": answer, "fine_tuned": mine}
        for (prompt, answer), mine in zip(base.items(), tuned, strict=True)
    ]
    samples_path = run_dir / "samples.json"
    atomic.write_text(samples_path, json.dumps(samples, indent=2))
    path = run_dir / "report.html"
    atomic.write_text(path, report_html(config.name, metrics, samples))
    return LMEvaluation(metrics, samples, path, samples_path)


def report_html(name: str, metrics: dict[str, Any], samples: list[dict[str, str]]) -> str:
    """One self-contained page: loss and perplexity before/after, and the base vs fine-tuned answers."""
    return templates.render(
        "lm_report.html.j2",
        run_name=name,
        before=metrics.get("before", {}),
        after=metrics.get("after", {}),
        measures=(("validation loss", "loss"), ("perplexity", "perplexity"), ("answer tokens", "tokens")),
        training=metrics.get("training", {}),
        samples=samples,
    )
