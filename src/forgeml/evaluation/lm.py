"""Evaluate a fine-tuned language model: the report with base vs fine-tuned answers side by side.

Validation loss and perplexity are measured during training (before and after, in metrics.json);
evaluation generates the fine-tuned model's answers to the prompts the base model answered then,
and writes ``samples.json`` and ``report.html``.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml import atomic
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
    before, after = metrics.get("before", {}), metrics.get("after", {})
    rows = "".join(
        f"<tr><th>{label}</th><td>{_number(before.get(key))}</td><td>{_number(after.get(key))}</td></tr>"
        for label, key in (
            ("validation loss", "loss"),
            ("perplexity", "perplexity"),
            ("answer tokens", "tokens"),
        )
    )
    training = metrics.get("training", {})
    facts = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in training.items())
    table = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            *(html.escape(sample.get(key, "")) for key in ("prompt", "base", "fine_tuned"))
        )
        for sample in samples
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}: fine-tuning report</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;width:100%;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.4em;text-align:left;
vertical-align:top;white-space:pre-wrap}}th{{background:#f4f4f4}}</style></head><body>
<h1>{html.escape(name)}: language-model fine-tuning</h1>
<h2>Validation (answer tokens only)</h2>
<table><tr><th></th><th>base model</th><th>fine-tuned</th></tr>{rows}</table>
<ul>{facts}</ul>
<h2>Sample answers (greedy)</h2>
<table><tr><th>prompt</th><th>base model</th><th>fine-tuned</th></tr>{table}</table>
</body></html>
"""


def _number(value: object) -> str:
    return (
        f"{value:.4g}" if isinstance(value, float) else html.escape(str(value if value is not None else "-"))
    )
