"""``compress_run``: build every requested variant of a run as a bundle, measure each, pick one.

Everything is written into a staging folder that replaces ``runs/<name>/compressed/`` only when
all variants are built, so a failure (bad flag, incompatible student, a quantizer error) leaves the
previous ``compressed/`` folder as it was and no partial bundle behind.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from torch import nn

from forgeml import atomic
from forgeml.bundle.encode import Feeds, encode_raw
from forgeml.bundle.predictive import Bundle, read_predictor_bundle, stored_model_config
from forgeml.compression import distill as distillation
from forgeml.compression.measure import VariantResult, measure, with_latencies
from forgeml.compression.options import CompressOptions
from forgeml.compression.prune import check_structured, make_permanent, mask_unstructured, prune_structured
from forgeml.compression.report import COMPRESSED_DIR, SUMMARY, add_to_run_report, write_reports
from forgeml.compression.trees import refuse_for_trees
from forgeml.compression.variants import Candidate, update_metrics, write_variant
from forgeml.config import Config, ModelConfig, load_config
from forgeml.data import RawData, Splits, load_data
from forgeml.errors import ConfigError
from forgeml.features import FeaturePipeline
from forgeml.models import count_parameters
from forgeml.training.loop import Session, fit, set_threads
from forgeml.training.recipe import network_training
from forgeml.training.stage import tensor_data

logger = logging.getLogger(__name__)
RECOMMENDED = "recommended.json"


@dataclass(frozen=True)
class Compression:
    """The variants built (baseline first), the recommended one (with ``max_drop``), and the files."""

    run_dir: Path
    variants: tuple[VariantResult, ...]
    recommended: VariantResult | None
    max_drop: float | None
    summary_path: Path
    report_path: Path

    @property
    def folder(self) -> Path:
        return self.run_dir / COMPRESSED_DIR

    def variant(self, name: str) -> VariantResult:
        return next(item for item in self.variants if item.name == name)


@dataclass(frozen=True)
class _Context:
    run_dir: Path
    config: Config
    teacher: Bundle
    splits: Splits
    options: CompressOptions
    console: Console | None


def compress_run(run_dir: Path, options: CompressOptions, *, console: Console | None = None) -> Compression:
    """Build, measure and compare the variants ``options`` ask for; see the module docstring."""
    config = _run_config(run_dir)
    refuse_for_trees(config, options)  # before any folder is written: nothing here applies to trees
    teacher = read_predictor_bundle(run_dir / "bundle")
    # fine-tuning and distillation train as the teacher did: its table recipe for the keys the run left unset
    resolved = network_training(_model_config(teacher), config.train, teacher.pipeline.input_spec)
    config = config.model_copy(update={"train": resolved})
    student = _student_config(options, teacher) if options.distills else None  # fails fast
    if options.prune is not None and options.prune_method == "structured":
        check_structured(_model_config(teacher))
    context = _Context(run_dir, config, teacher, load_data(config.data, seed=config.seed), options, console)
    if len(context.splits.test) == 0:
        raise ConfigError(
            f"{run_dir}: this run has no test rows, and compress compares variants on the test split. "
            "Set data.split.test above 0 (or data.test_source) and train again.",
            key="data.split.test",
        )
    set_threads(config.train.threads)
    calibration = _calibration(teacher.pipeline, context.splits.train, options.calibration_rows, config.seed)
    with atomic.replace_folder(run_dir / COMPRESSED_DIR) as staging:
        results = _build(staging, context, student, calibration)
        timed = with_latencies(results, context.splits.test)
        final = [result.moved(run_dir / COMPRESSED_DIR / result.name) for result in timed]
        recommended = pick(final, options.max_drop) if options.max_drop is not None else None
        _write_choice(staging, recommended, options.max_drop)
        summary, report = write_reports(staging, run_dir, final, recommended, options.max_drop)
    add_to_run_report(run_dir, final, recommended, options.max_drop)
    return Compression(
        run_dir,
        tuple(final),
        recommended,
        options.max_drop,
        run_dir / COMPRESSED_DIR / summary.name,
        run_dir / COMPRESSED_DIR / report.name,
    )


def _build(
    staging: Path, context: _Context, student: ModelConfig | None, calibration: Feeds
) -> list[VariantResult]:
    """Write every candidate as a bundle in ``staging`` and score it (baseline first)."""
    config, pipeline = context.config, context.teacher.pipeline
    source = {"run": str(context.run_dir), "model": config.model.model_dump(mode="json")}
    results: list[VariantResult] = []
    exported: dict[nn.Module, tuple[bytes, dict[str, Any]]] = {}
    for candidate in _candidates(context, student):
        folder = write_variant(
            staging / candidate.name,
            candidate,
            pipeline,
            target=config.data.target,
            calibration=calibration,
            source=source,
            exported=exported,
        )
        baseline = results[0].metric if results else None
        result = measure(folder, candidate.name, candidate.steps, context.splits.test, baseline)
        assert result.metrics is not None  # measured just now
        update_metrics(folder, {"test": result.metrics.to_json()})
        results.append(result)
        logger.info("built %s: %s %.4f", candidate.name, result.metric_name, result.metric)
    return results


def pick(results: list[VariantResult], max_drop: float) -> VariantResult:
    """The smallest model file (then fewest parameters) whose drop is within ``max_drop``.

    The baseline (drop 0) always qualifies, so there is always an answer.
    """
    within = [result for result in results if result.drop <= max_drop]
    return min(within, key=lambda result: (result.model_bytes, result.parameters))


def _candidates(context: _Context, student: ModelConfig | None):
    """Baseline, then each single step, then (with ``max_drop``) the chain prune -> distill -> quantize."""
    options, teacher = context.options, context.teacher
    baseline = Candidate("baseline", teacher.model, _model_config(teacher))
    yield baseline
    pruned = _pruned(context, baseline) if options.prune is not None else None
    if pruned is not None:
        yield pruned
    distilled = _distilled(context, baseline, student, "distill") if student is not None else None
    if distilled is not None:
        yield distilled
    if options.quantize is not None:
        yield baseline.then_quantized(options.quantize)
    if options.max_drop is None:
        return
    chain = pruned or baseline
    if pruned is not None and student is not None:
        chain_student = _student_config(options, teacher, base=pruned.model_config)
        chain = _distilled(context, pruned, chain_student, "prune+distill")
        yield chain
    elif distilled is not None:
        chain = distilled
    if options.quantize is not None and chain is not baseline:
        yield chain.then_quantized(options.quantize)


def _pruned(context: _Context, source: Candidate) -> Candidate:
    """``source`` pruned as the options say, fine-tuned, masks made permanent."""
    options, pipeline = context.options, context.teacher.pipeline
    amount, method = options.prune or 0.0, options.prune_method
    details: dict[str, Any] = {"pruning": {"amount": amount, "method": method}}
    if method == "structured":
        model, model_config = prune_structured(
            source.model, source.model_config, pipeline.input_spec, pipeline.target_.output_dim, amount
        )
        details["pruning"]["widths"] = model_config.model_dump(mode="json")
    else:
        model = _copy(source.model, source.model_config, pipeline)
        model_config = source.model_config
        mask_unstructured(model, amount, scope=method)
    details["pruning"]["finetune_epochs"] = _finetune(context, model)
    return Candidate("prune", make_permanent(model), model_config, ("prune",), details)


def _finetune(context: _Context, model: nn.Module) -> int:
    """A few epochs of the run's own training on the pruned model (masks, if any, stay in place)."""
    epochs = context.options.finetune_epochs
    if epochs == 0:
        return 0
    config = context.config.train.model_copy(update={"epochs": epochs})
    pipeline, splits = context.teacher.pipeline, context.splits
    train = tensor_data(pipeline, splits.train)
    validation = tensor_data(pipeline, splits.validation) if len(splits.validation) else None
    loss = distillation.run_loss(config, pipeline, train.target)
    callbacks = distillation.loop_callbacks(config, validation is not None, context.console)
    with tempfile.TemporaryDirectory(prefix="forgeml-finetune-") as work:
        result = fit(
            model, train, validation, loss, config, seed=context.config.seed, callbacks=callbacks,
            session=Session(run_dir=Path(work)),
        )  # fmt: skip
    return len(result.history)


def _distilled(context: _Context, teacher: Candidate, student: ModelConfig, name: str) -> Candidate:
    """A ``student`` trained on ``teacher``'s outputs with the run's training settings."""
    options, pipeline = context.options, context.teacher.pipeline
    model = distillation.seeded_student(student, pipeline, context.config.seed)
    with tempfile.TemporaryDirectory(prefix="forgeml-distill-") as work:
        result = distillation.distill(
            teacher.model,
            model,
            pipeline,
            context.splits,
            context.config.train,
            seed=context.config.seed,
            temperature=options.temperature,
            alpha=options.alpha,
            work_dir=Path(work),
            console=context.console,
        )
    details = {
        **teacher.details,
        "distillation": {
            "teacher_parameters": count_parameters(teacher.model),
            "student": student.model_dump(mode="json"),
            "temperature": options.temperature,
            "alpha": options.alpha,
            "epochs": len(result.history),
            "best_epoch": result.best_epoch,
        },
    }
    return Candidate(name, result.model, student, (*teacher.steps, "distill"), details)


def _student_config(
    options: CompressOptions, teacher: Bundle, *, base: ModelConfig | None = None
) -> ModelConfig:
    """The student's config (from the file, or the teacher's widths scaled), checked against the data."""
    base = base or _model_config(teacher)
    if options.distill_width is not None:
        student = distillation.student_by_width(base, options.distill_width)
        origin = f"--distill-width {options.distill_width:g}"
    else:
        assert isinstance(options.distill, Path)
        student, origin = distillation.student_from_file(options.distill), f"--distill {options.distill}"
    distillation.check_student(student, teacher.pipeline, origin)
    return student


def _model_config(bundle: Bundle) -> ModelConfig:
    return stored_model_config(bundle.manifest["model"]["config"])


def _copy(model: nn.Module, config: ModelConfig, pipeline: FeaturePipeline) -> nn.Module:
    from forgeml.models import build_model

    clone = build_model(config, pipeline.input_spec, pipeline.target_.output_dim)
    clone.load_state_dict(model.state_dict())
    return clone


def _calibration(pipeline: FeaturePipeline, train: RawData, rows: int, seed: int) -> Feeds:
    """Graph inputs of up to ``rows`` training rows, drawn at random with the run's seed."""
    chosen = np.random.default_rng(seed).permutation(len(train))[:rows]
    return encode_raw(pipeline, train.take(np.sort(chosen)))


def _run_config(run_dir: Path) -> Config:
    path = run_dir / "config.yaml"
    if not path.is_file() or not (run_dir / "bundle").is_dir():
        raise ConfigError(
            f"{run_dir}: not a run folder (config.yaml or bundle/ is missing). Pass runs/<name> as written by forgeml train.",
            key="run",
        )
    return load_config(path)


def _write_choice(folder: Path, recommended: VariantResult | None, max_drop: float | None) -> None:
    if recommended is None:
        return
    choice = {"max_drop": max_drop, **recommended.to_json(), "summary": SUMMARY}
    atomic.write_text(folder / RECOMMENDED, json.dumps(choice, indent=2))
