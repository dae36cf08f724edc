"""Token-by-token generation with the KV cache, streaming text pieces, stop strings and a seed.

A short loop over ``model(..., past_key_values=...)`` rather than ``model.generate``: each request
gets its own ``torch.Generator`` (a seed repeats an answer even while other requests run), the
loop checks a cancel flag and a deadline between tokens (timeouts and disconnected clients free the
worker at once), and text is streamed as it is decoded, held back only while it could still turn
into a stop string or an unfinished UTF-8 character.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from forgeml.data.lm import prompt_ids

FinishReason = Literal["stop", "length", "timeout", "cancelled"]


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen: temperature 0 is greedy; ``top_p`` keeps the smallest likely set."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass
class Completion:
    """Generated text and why it ended; counts in tokens."""

    text: str = ""
    finish_reason: FinishReason = "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


@dataclass
class Control:
    """Shared with the serving side: set ``cancelled`` to stop; ``deadline`` is a perf_counter time."""

    deadline: float = float("inf")
    cancelled: threading.Event = field(default_factory=threading.Event)


class TextGenerator:
    """Generates continuations of token ids with a Hugging Face causal LM (eval mode, no gradients)."""

    def __init__(self, model: nn.Module, tokenizer: Any) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        ids = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(i) for i in [*ids, tokenizer.eos_token_id] if i is not None}
        # transformers 5 renamed past_key_values to cache (the old name warns, then goes in 5.40)
        parameters = inspect.signature(model.forward).parameters
        self._cache_name = "cache" if "cache" in parameters else "past_key_values"

    def complete(self, prompt: list[int], sampling: Sampling, control: Control | None = None) -> Completion:
        """The whole answer at once (the pieces of :meth:`stream` joined)."""
        result = Completion()
        pieces = list(self.stream(prompt, sampling, control, result))
        result.text = "".join(pieces)
        return result

    def stream(
        self,
        prompt: list[int],
        sampling: Sampling,
        control: Control | None = None,
        result: Completion | None = None,
    ) -> Iterator[str]:
        """Yield text pieces as they are decoded; ``result`` gets the finish reason and token counts."""
        started = time.perf_counter()
        control = control or Control()
        result = result if result is not None else Completion()
        result.prompt_tokens = len(prompt)
        generator = torch.Generator().manual_seed(sampling.seed) if sampling.seed is not None else None
        tokens: list[int] = []
        text = ""
        sent = 0  # characters of the decoded answer already yielded
        reason: FinishReason = "length"
        with torch.inference_mode():
            logits, past = self._forward(torch.tensor([prompt]), None)
            for _ in range(sampling.max_new_tokens):
                if control.cancelled.is_set():
                    reason = "cancelled"
                    break
                if time.perf_counter() > control.deadline:
                    reason = "timeout"
                    break
                token = _choose(logits, sampling, generator)
                if token in self.eos_ids:
                    reason = "stop"
                    break
                tokens.append(token)
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                cut = _first_stop(text, sampling.stop)
                if cut is not None:
                    text, reason = text[:cut], "stop"
                    break
                ready = _safe_end(text, sampling.stop)
                if ready > sent:
                    yield text[sent:ready]
                    sent = ready
                logits, past = self._forward(torch.tensor([[token]]), past)
        if reason != "cancelled" and len(text) > sent:
            yield text[sent:]  # what was held back: it never became a stop string
        result.finish_reason = reason
        result.completion_tokens = len(tokens)
        result.seconds = time.perf_counter() - started

    def _forward(self, ids: torch.Tensor, past: Any) -> tuple[torch.Tensor, Any]:
        # logits_to_keep=1: only the last position's logits (the vocabulary projection of a long
        # prompt is the costliest part of the first pass otherwise)
        output = self.model(input_ids=ids, use_cache=True, logits_to_keep=1, **{self._cache_name: past})
        return output.logits[0, -1].float(), getattr(output, self._cache_name)  # (V,)


def _choose(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None) -> int:
    """Greedy at temperature 0; otherwise sample from the tempered, nucleus-filtered distribution."""
    if sampling.temperature == 0:
        return int(logits.argmax())
    # In float64 and from the largest logit down: a tiny temperature (1e-94 is valid) underflowed to 0
    # in float32, and logits / 0 made NaN probabilities (a 500 from torch.multinomial).
    probabilities = torch.softmax((logits.double() - logits.max()) / sampling.temperature, dim=-1)  # (V,)
    if sampling.top_p < 1.0:
        sorted_p, order = probabilities.sort(descending=True)
        outside = sorted_p.cumsum(0) - sorted_p > sampling.top_p  # tokens after the nucleus is full
        sorted_p[outside] = 0.0
        probabilities = torch.zeros_like(probabilities).scatter(0, order, sorted_p)
    return int(torch.multinomial(probabilities, 1, generator=generator))


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [index for index in (text.find(stop) for stop in stops if stop) if index >= 0]
    return min(found) if found else None


def _safe_end(text: str, stops: tuple[str, ...]) -> int:
    """How much of ``text`` can be sent: not a trailing partial character, nor a possible stop prefix."""
    end = len(text.rstrip("\ufffd"))  # an unfinished multi-byte character decodes as U+FFFD
    head = text[:end]
    hold = max(
        (size for stop in stops for size in range(1, min(len(stop), end + 1)) if head.endswith(stop[:size])),
        default=0,
    )
    return end - hold


def answers(
    model: nn.Module, tokenizer: Any, template: str, prompts: list[str], *, max_new_tokens: int
) -> list[str]:
    """Greedy answers to each prompt as a one-turn chat (the samples of the fine-tuning report)."""
    generator = TextGenerator(model, tokenizer)
    sampling = Sampling(max_new_tokens=max_new_tokens)
    return [
        generator.complete(
            prompt_ids(tokenizer, template, [{"role": "user", "content": p}]), sampling
        ).text.strip()
        for p in prompts
    ]
