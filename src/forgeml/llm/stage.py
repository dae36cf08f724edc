"""Fine-tune a causal LM from one config: gate the data, tokenize, train with the engine, bundle.

``train_lm(config)`` writes ``runs/<name>/``: ``config.yaml``, ``data_report.json``,
``checkpoints/``, ``history.csv``, ``metrics.json`` (validation loss and perplexity before and
after) and ``bundle/`` (adapters merged). ``evaluate_lm(run)`` adds ``report.html`` with sample
answers of the base and the fine-tuned model side by side.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from torch import nn

from forgeml import atomic
from forgeml.errors import ConfigError
from forgeml.llm.bundle import read_lm_bundle, write_lm_bundle
from forgeml.llm.checks import check_examples, gate_report
from forgeml.llm.config import LMConfig, load_lm_config
from forgeml.llm.data import Example, LMTensors, chat_template, encode_all, training_examples
from forgeml.llm.evaluation import answer_token_loss, answers, report_html, sample_prompts
from forgeml.llm.model import (
    CausalLMModule,
    answer_loss,
    load_model,
    load_tokenizer,
    merged,
    trainable_parameters,
    with_lora,
)
from forgeml.training.callbacks import Callback, ProgressReporter, TrainState
from forgeml.training.logs import CSVLogger, TensorBoardLogger
from forgeml.training.loop import TensorData, TrainResult, fit, seed_everything, set_threads
from forgeml.training.stage import make_session

logger = logging.getLogger(__name__)
BUNDLE_DIR = "bundle"
BASE_SAMPLES = "samples_base.json"


@dataclass(frozen=True)
class LMRun:
    """A finished fine-tuning run: folder, config, merged model, tokenizer, engine result, metrics."""

    path: Path
    config: LMConfig
    model: nn.Module
    tokenizer: Any
    template: str
    result: TrainResult
    metrics: dict[str, Any]
    validation: list[Example] = field(default_factory=list)
    train_examples: list[Example] = field(default_factory=list)

    @property
    def bundle_path(self) -> Path:
        return self.path / BUNDLE_DIR


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
    config: LMConfig | str | Path,
    *,
    callbacks: list[Callback] | None = None,
    console: Console | None = None,
    resume: bool | str | Path = False,
    force_resume: bool = False,
) -> LMRun:
    """Gate, tokenize, measure the base model, fine-tune (LoRA or full), measure again, write the bundle."""
    config = config if isinstance(config, LMConfig) else load_lm_config(config)
    run_dir = config.run_dir()
    set_threads(config.train.threads)
    tokenizer = load_tokenizer(config.model)
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
    model = load_model(config.model)
    before = _validation(model, validation_rows, config)
    prompts = sample_prompts(
        config.evaluate.prompts, validation_examples, train_examples, config.evaluate.samples
    )
    base_answers = answers(model, tokenizer, template, prompts, max_new_tokens=config.evaluate.max_new_tokens)
    if config.model.lora is not None:
        model = with_lora(model, config.model.lora)
    trainable, total = trainable_parameters(model)
    logger.info("training %d of %d parameters", trainable, total)
    throughput = _Throughput()
    session = make_session(
        run_dir, config.model_dump(mode="json"), config.train, resume=resume, force_resume=force_resume
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
            run_dir, config, final, tokenizer, template, result, {}, validation_examples, train_examples
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
        run_dir, config, final, tokenizer, template, result, metrics, validation_examples, train_examples
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(
        run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    )
    atomic.write_text(run_dir / "history.csv", _history_csv(result))
    atomic.write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    atomic.write_text(
        run_dir / BASE_SAMPLES, json.dumps(dict(zip(prompts, base_answers, strict=True)), indent=2)
    )
    write_lm_bundle(run_dir / BUNDLE_DIR, final, tokenizer, config, template=template, metrics=metrics)
    return run


def evaluate_lm(run: LMRun | str | Path) -> Path:
    """Write ``report.html``: loss and perplexity before/after, and base vs fine-tuned sample answers."""
    if isinstance(run, LMRun):
        run_dir, config, model, tokenizer, template = (
            run.path,
            run.config,
            run.model,
            run.tokenizer,
            run.template,
        )
    else:
        run_dir = Path(run)
        config = load_lm_config(run_dir / "config.yaml")
        bundle = read_lm_bundle(run_dir / BUNDLE_DIR)
        model, tokenizer, template = bundle.model, bundle.tokenizer, bundle.template
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    base = json.loads((run_dir / BASE_SAMPLES).read_text(encoding="utf-8"))
    tuned = answers(model, tokenizer, template, list(base), max_new_tokens=config.evaluate.max_new_tokens)
    samples = [
        {"prompt": prompt, "base": answer, "fine_tuned": mine}
        for (prompt, answer), mine in zip(base.items(), tuned, strict=True)
    ]
    atomic.write_text(run_dir / "samples.json", json.dumps(samples, indent=2))
    path = run_dir / "report.html"
    atomic.write_text(path, report_html(config.name, metrics, samples))
    return path


def _examples(config: LMConfig) -> tuple[list[Example], list[Example]]:
    return training_examples(config.data, seed=config.seed)


def _validation(model: nn.Module, rows: LMTensors, config: LMConfig) -> dict[str, Any]:
    if not len(rows):
        return {}
    return answer_token_loss(model, rows, batch_size=config.evaluate.batch_size).to_json()


def _history_csv(result: TrainResult) -> str:
    lines = ["epoch,train_loss,seconds"]
    lines += [f"{r.epoch},{r.train_loss:.6g},{r.seconds:.4f}" for r in result.history]
    return "\n".join(lines) + "\n"
