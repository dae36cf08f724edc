"""Validation loss and perplexity over answer tokens, sample answers, and the HTML report."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from forgeml.llm.data import IGNORE_INDEX, Example, LMTensors, prompt_ids
from forgeml.llm.generate import Sampling, TextGenerator


@dataclass(frozen=True)
class LossReport:
    """Mean answer-token cross-entropy (nats) and its exponential, over ``tokens`` answer tokens."""

    loss: float
    perplexity: float
    tokens: int

    def to_json(self) -> dict[str, float | int]:
        return {"loss": round(self.loss, 6), "perplexity": round(self.perplexity, 4), "tokens": self.tokens}


@torch.inference_mode()
def answer_token_loss(model: nn.Module, data: LMTensors, *, batch_size: int = 8) -> LossReport:
    """Token-weighted mean loss over every answer token of ``data`` (each batch cut to its longest row)."""
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(data), batch_size):
        mask = data.attention_mask[start : start + batch_size]
        length = int(mask.sum(dim=1).max())
        ids = data.input_ids[start : start + batch_size, :length]
        labels = data.labels[start : start + batch_size, :length]
        logits = model(input_ids=ids, attention_mask=mask[:, :length], use_cache=False).logits  # (B, L, V)
        target = labels[:, 1:].reshape(-1)
        total += float(
            F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                target,
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
        )
        tokens += int((target != IGNORE_INDEX).sum())
    loss = total / max(tokens, 1)
    return LossReport(loss, math.exp(min(loss, 50.0)), tokens)


def sample_prompts(
    prompts: list[str], validation: list[Example], train: list[Example], count: int
) -> list[str]:
    """The configured prompts, else the first user messages of the validation (or training) examples."""
    if prompts:
        return prompts
    chats = [e for e in (validation or train) if e.messages and e.messages[0].role in ("user", "system")]
    return [
        next(m.content for m in e.messages if m.role == "user")
        for e in chats
        if any(m.role == "user" for m in e.messages)
    ][:count]


def answers(
    model: nn.Module, tokenizer: Any, template: str, prompts: list[str], *, max_new_tokens: int
) -> list[str]:
    """Greedy answers to each prompt as a one-turn chat."""
    generator = TextGenerator(model, tokenizer)
    sampling = Sampling(max_new_tokens=max_new_tokens)
    return [
        generator.complete(
            prompt_ids(tokenizer, template, [{"role": "user", "content": p}]), sampling
        ).text.strip()
        for p in prompts
    ]


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
