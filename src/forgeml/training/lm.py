"""Fine-tune a causal LM from one config: gate the data, tokenize, train with the engine, bundle.

``train_lm(config)`` writes ``runs/<name>/``: ``config.yaml``, ``data_report.json``,
``checkpoints/``, ``history.csv``, ``metrics.json`` (validation loss and perplexity before and
after) and ``bundle/`` (adapters merged). :func:`forgeml.evaluation.lm.evaluate_lm` adds
``report.html`` with sample answers of the base and the fine-tuned model side by side.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from torch import nn

from forgeml import atomic
from forgeml.bundle.causal_lm import write_lm_bundle
from forgeml.checks.lm import check_examples, gate_report
from forgeml.config import CausalLMConfig, Config, config_json, dump_config, load_config
from forgeml.data.lm import (
    Example,
    LMTensors,
    chat_template,
    encode_all,
    load_tokenizer,
    sample_prompts,
    training_examples,
)
from forgeml.errors import ConfigError
from forgeml.models.causal_lm import (
    CausalLMModule,
    answer_loss,
    answer_token_loss,
    load_model,
    merged,
    trainable_parameters,
    with_lora,
)
from forgeml.models.generate import answers
from forgeml.training.callbacks import Callback, ProgressReporter, TrainState
from forgeml.training.logs import CSVLogger, TensorBoardLogger
from forgeml.training.loop import TensorData, TrainResult, fit, seed_everything, set_threads
from forgeml.training.run import BUNDLE_DIR, Run
from forgeml.training.stage import make_session

logger = logging.getLogger(__name__)
BASE_SAMPLES = "samples_base.json"  # the base model's answers, kept for the report's side-by-side


@dataclass(frozen=True)
class LMRun(Run):
    """A finished fine-tuning run: also the tokenizer, chat template, before/after metrics and examples."""

    tokenizer: Any
    template: str
    metrics: dict[str, Any]
    validation: list[Example] = field(default_factory=list)
    train_examples: list[Example] = field(default_factory=list)

    def summary(self) -> str:
        """Validation loss and perplexity before -> after, then steps, speed and where the files are."""
        lines = []
        before, after = self.metrics.get("before"), self.metrics.get("after")
        if before and after:
            lines.append(
                f"validation loss {before['loss']:.4f} -> {after['loss']:.4f}; "
                f"perplexity {before['perplexity']:.2f} -> {after['perplexity']:.2f}"
            )
        training = self.metrics.get("training", {})
        lines.append(
            f"trained {training.get('steps', 0)} steps in {self.result.seconds:.1f}s "
            f"({training.get('steps_per_second', 0.0):.2f} steps/s); "
            f"run folder: {self.path}; bundle: {self.bundle_path}"
        )
        return "\n".join(lines)


class _Throughput(Callback):
    """Counts steps and answer tokens per second of training (written to metrics.json)."""

    def __init__(self) -> None:
        self.started = self.seconds = 0.0
        self.first_step = self.steps = 0

    def on_train_begin(self, state: TrainState) -> None:
        self.started = time.perf_counter()
        self.first_step = state.global_step

    def on_train_end(self, state: TrainState) -> None:
        self.steps = state.global_step - self.first_step
        self.seconds = time.perf_counter() - self.started


def train_lm(
    config: Config | str | Path,
    *,
    callbacks: list[Callback] | None = None,
    console: Console | None = None,
    resume: bool | str | Path = False,
    force_resume: bool = False,
) -> LMRun:
    """Gate, tokenize, measure the base model, fine-tune (LoRA or full), measure again, write the bundle."""
    config = config if isinstance(config, Config) else load_config(config)
    model_config = config.model
    if not isinstance(model_config, CausalLMConfig):
        raise TypeError(f"train_lm takes a causal_lm config, not model.type {model_config.type}")
    run_dir = config.run_dir()
    set_threads(config.train.threads)
    tokenizer = load_tokenizer(model_config)
    template = chat_template(tokenizer, config.data.chat_template)
    train_examples, validation_examples = _examples(config)
    report = check_examples(
        train_examples,
        validation=validation_examples,
        tokenizer=tokenizer,
        template=template,
        max_length=config.data.max_length,
        allow=config.check.allow,
    )
    gate_report(report, enabled=config.check.enabled, run_dir=run_dir)
    train_rows = encode_all(
        train_examples, tokenizer, template, config.data.max_length, packing=config.data.packing
    )
    validation_rows = encode_all(validation_examples, tokenizer, template, config.data.max_length)
    if not len(train_rows):
        raise ConfigError("no training example has an answer token; check data.source and data.max_length.")
    seed_everything(config.seed)
    model = load_model(model_config)
    before = _validation(model, validation_rows, config)
    prompts = sample_prompts(
        config.evaluate.prompts, validation_examples, train_examples, config.evaluate.samples
    )
    base_answers = answers(model, tokenizer, template, prompts, max_new_tokens=config.evaluate.max_new_tokens)
    if model_config.lora is not None:
        model = with_lora(model, model_config.lora)
    trainable, total = trainable_parameters(model)
    logger.info("training %d of %d parameters", trainable, total)
    throughput = _Throughput()
    session = make_session(
        run_dir, config_json(config), config.train, resume=resume, force_resume=force_resume
    )
    main = session.ranks.is_main
    shipped: list[Callback] = [ProgressReporter(console if main else Console(file=io.StringIO())), throughput]
    if main and config.train.csv_log:
        shipped.append(CSVLogger(run_dir / "train_log.csv"))
    if main and config.train.tensorboard:
        shipped.append(TensorBoardLogger(run_dir / "tensorboard", hyperparameters=session.config))
    seed_everything(config.seed)
    result = fit(
        CausalLMModule(model),
        TensorData((train_rows.input_ids, train_rows.attention_mask), train_rows.labels),
        None,  # validation runs below in small batches: the engine's 1024-row batches of (B, T, V) logits would not fit
        answer_loss,
        config.train,
        seed=config.seed,
        callbacks=[*shipped, *(callbacks or [])],
        session=session,
    )
    final = merged(model)
    if not result.is_main:  # ranks > 0 of a torchrun job: rank 0 measures and writes the run folder
        return LMRun(
            run_dir, config, final, result, tokenizer, template, {}, validation_examples, train_examples
        )
    after = _validation(final, validation_rows, config)
    tokens = int(train_rows.attention_mask.sum()) * config.train.epochs
    metrics = {
        "before": before,
        "after": after,
        "training": {
            "examples": len(train_examples),
            "rows": len(train_rows),
            "answer_tokens": train_rows.answer_tokens,
            "trainable_parameters": trainable,
            "parameters": total,
            "steps": throughput.steps,
            "seconds": round(result.seconds, 2),
            "steps_per_second": round(throughput.steps / max(throughput.seconds, 1e-9), 4),
            "tokens_per_second": round(tokens / max(result.seconds, 1e-9), 1),
        },
    }
    run = LMRun(
        run_dir, config, final, result, tokenizer, template, metrics, validation_examples, train_examples
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(run_dir / "config.yaml", dump_config(config))
    atomic.write_text(run_dir / "history.csv", _history_csv(result))
    atomic.write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    atomic.write_text(
        run_dir / BASE_SAMPLES, json.dumps(dict(zip(prompts, base_answers, strict=True)), indent=2)
    )
    write_lm_bundle(run_dir / BUNDLE_DIR, final, tokenizer, config, template=template, metrics=metrics)
    return run


def _examples(config: Config) -> tuple[list[Example], list[Example]]:
    return training_examples(config.data, seed=config.seed)


def _validation(model: nn.Module, rows: LMTensors, config: Config) -> dict[str, Any]:
    if not len(rows):
        return {}
    return answer_token_loss(model, rows, batch_size=config.evaluate.batch_size).to_json()


def _history_csv(result: TrainResult) -> str:
    lines = ["epoch,train_loss,seconds"]
    lines += [f"{r.epoch},{r.train_loss:.6g},{r.seconds:.4f}" for r in result.history]
    return "\n".join(lines) + "\n"
