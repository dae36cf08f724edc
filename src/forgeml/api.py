"""The public Python API: each function is one CLI verb (``forgeml train`` calls ``train``).

The stages are chained here and only here; each stage module stays ignorant of the ones after it.
Every function takes any kind of model; each asks the kind once (``config.kind`` for a config or a
run, the manifest's ``kind`` for a bundle) and goes down that kind's path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from forgeml import atomic
from forgeml.bundle.predictive import read_predictor_bundle, write_bundle
from forgeml.bundle.predictor import Predictor
from forgeml.checks import DataReport, gate
from forgeml.checks import check as check_data
from forgeml.config import CAUSAL_LM, Config, ServeConfig, config_json, dump_config, load_config
from forgeml.data import load_data, load_source
from forgeml.deploy.predict import PredictSummary, predict_file
from forgeml.deploy.verify import VerifyReport
from forgeml.errors import ConfigError
from forgeml.evaluation import Evaluation, compare_runs, evaluate_model, evaluate_run
from forgeml.features import fit_features
from forgeml.training import Callback, TrainResult, train_model
from forgeml.training.run import BUNDLE_DIR, PredictorRun, Run
from forgeml.training.stage import make_session

if TYPE_CHECKING:
    from forgeml.compression import Compression
    from forgeml.evaluation.lm import LMEvaluation

logger = logging.getLogger(__name__)
__all__ = ["BUNDLE_DIR", "PredictorRun", "Run"]  # re-exported: forgeml.Run is any kind's run


def train(
    config: Config | str | Path,
    *,
    callbacks: list[Callback] | None = None,
    console: Console | None = None,
    resume: bool | str | Path = False,
    force_resume: bool = False,
) -> Run:
    """Check the data (the cleaning gate), split it, fit features on train, train, write the run folder.

    The gate runs first: blocking data problems raise DataQualityError before any epoch, and the
    data report is saved in the run folder either way. Checkpoints go to ``runs/<name>/checkpoints``;
    ``resume=True`` continues from the last one (an error when there is none), a path from that file,
    and ``train.resume: auto`` continues when one exists. A changed config or data is refused
    (ConfigError naming the keys) unless ``force_resume``. Under torchrun only rank 0 writes files.
    A language model (``model.type: causal_lm``) is fine-tuned instead and returns an ``LMRun``.
    """
    config = _as_config(config)
    if config.kind == CAUSAL_LM:
        from forgeml.training.lm import train_lm

        return train_lm(config, callbacks=callbacks, console=console, resume=resume, force_resume=force_resume)
    if config.check.enabled:
        gate(config.data, config.check, run_dir=config.run_dir())
    splits = load_data(config.data, seed=config.seed)
    pipeline = fit_features(splits.train, config.features, splits.task)
    session = make_session(
        config.run_dir(),
        config_json(config),
        config.train,
        resume=resume,
        force_resume=force_resume,
    )
    result = train_model(
        pipeline,
        splits.train,
        splits.validation,
        config.model,
        config.train,
        seed=config.seed,
        callbacks=callbacks,
        console=console,
        session=session,
    )
    run_dir = config.run_dir()
    if not result.is_main:  # ranks > 0 of a torchrun job: rank 0 writes the run folder
        return PredictorRun(run_dir, config, result.model, result, pipeline, splits)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(run_dir / "config.yaml", dump_config(config))
    atomic.write_text(run_dir / "history.csv", _history_csv(result))
    validation = (
        evaluate_model(result.model, pipeline, splits.validation).to_json() if len(splits.validation) else {}
    )
    write_bundle(
        run_dir / BUNDLE_DIR,
        result.model,
        pipeline,
        config.model,
        target=config.data.target,
        metrics={"validation": validation},
    )
    return PredictorRun(run_dir, config, result.model, result, pipeline, splits)


def evaluate(
    run: Run | str | Path, *, data: str | Path | None = None, slices: list[str] | None = None
) -> Evaluation | LMEvaluation:
    """Score a run's bundle on its test split (re-derived from its saved config and seed) or on ``data``.

    Writes ``metrics.json`` and the model card ``report.html`` into the run folder (for a ``data``
    file: ``metrics-<name>.json`` and ``report-<name>.html``). ``slices`` overrides ``evaluate.slices``.
    A language-model run gets ``report.html`` with the base and fine-tuned answers side by side.
    """
    run_dir = run.path if isinstance(run, Run) else Path(run)
    config = run.config if isinstance(run, Run) else _saved_config(run_dir)
    if config.kind == CAUSAL_LM:
        from forgeml.evaluation.lm import evaluate_lm
        from forgeml.training.lm import LMRun

        if data is not None or slices is not None:
            raise ConfigError(
                "--data and --slices score prediction models; a language model's report compares "
                "its answers before and after fine-tuning (set evaluate.prompts in the config)."
            )
        return evaluate_lm(run if isinstance(run, LMRun) else run_dir)
    bundle = read_predictor_bundle(run_dir / BUNDLE_DIR)
    if slices is not None:
        config = config.model_copy(update={"evaluate": config.evaluate.model_copy(update={"slices": slices})})
    # The training split is needed too: the baseline row is the training majority class (or mean).
    splits = run.splits if isinstance(run, PredictorRun) else load_data(config.data, seed=config.seed)
    if data is None:
        rows, name = splits.test, None
    else:
        rows, name = load_source(str(data), bundle.manifest["task"].get("target")), Path(data).stem
    evaluation = evaluate_run(
        run_dir, bundle.model, bundle.pipeline, rows, splits.train.target, config, name=name
    )
    if name is None:  # report.html was rendered afresh: keep the section `forgeml compress` added
        from forgeml.compression.report import restore_run_report

        restore_run_report(run_dir)
    return evaluation


def compare(runs: list[str | Path], *, output: str | Path) -> Path:
    """One HTML page with several runs' metrics and learning curves side by side."""
    return compare_runs([Path(run) for run in runs], Path(output))


def compress(
    run: Run | str | Path,
    *,
    prune: float | None = None,
    quantize: str | None = None,
    distill: str | Path | float | None = None,
    distill_width: float | None = None,
    max_drop: float | None = None,
    prune_method: str = "structured",
    finetune_epochs: int = 5,
    temperature: float = 4.0,
    alpha: float = 0.7,
    console: Console | None = None,
) -> Compression:
    """Pruned, quantized and distilled variants of a run, each a bundle under ``runs/<name>/compressed/``.

    ``distill``: a student YAML file, or a number (the teacher's widths scaled, like ``distill_width``).
    ``max_drop`` also chains prune -> distill -> quantize and recommends the smallest variant whose
    test metric drops by at most that much. Bad values raise ConfigError naming the flag.
    """
    from forgeml.compression import compress_options, compress_run

    options = compress_options(
        prune=prune, quantize=quantize, distill=distill, distill_width=distill_width, max_drop=max_drop,
        prune_method=prune_method, finetune_epochs=finetune_epochs, temperature=temperature, alpha=alpha,
    )  # fmt: skip
    return compress_run(run.path if isinstance(run, Run) else Path(run), options, console=console)


def run(
    config: Config | str | Path,
    *,
    callbacks: list[Callback] | None = None,
    console: Console | None = None,
    resume: bool | str | Path = False,
    force_resume: bool = False,
) -> tuple[Run, Evaluation | LMEvaluation]:
    """Every stage in order: data, features, train, evaluate (metrics and model card), bundle.

    ``resume`` and ``force_resume`` are those of :func:`train`.
    """
    trained = train(config, callbacks=callbacks, console=console, resume=resume, force_resume=force_resume)
    return trained, evaluate(trained)


def check(
    source: str | Path,
    *,
    target: str | None = None,
    test_source: str | Path | None = None,
    allow: tuple[str, ...] = (),
) -> DataReport:
    """The data-quality report of ``source`` (and ``test_source``): schema, findings, severities."""
    return check_data(
        str(source), target=target, test_source=None if test_source is None else str(test_source), allow=allow
    )


def predict(
    bundle: str | Path, source: str | Path, output: str | Path, *, progress: bool | None = None
) -> PredictSummary:
    """Predict every row of ``source`` with ``bundle`` and write ``output`` (CSV, Parquet or JSON Lines).

    CSV and Parquet inputs stream in chunks (bounded memory); the output is written atomically.
    ONNX Runtime runs when the bundle has model.onnx, PyTorch otherwise.
    """
    return predict_file(bundle, source, output, progress=progress)


def load(bundle: str | Path, *, engine: str = "auto", unseen: str = "unknown") -> Predictor:
    """A :class:`Predictor` for ``bundle``, checked against its manifest: ``forgeml.load(path).predict(rows)``.

    ``engine``: "auto" (ONNX Runtime if the bundle has model.onnx), "onnx" or "torch".
    ``unseen``: "unknown" maps unseen categories to the unknown bucket as in training; "reject" raises.
    """
    return Predictor.from_bundle(bundle, engine=engine, unseen=unseen)


def export(run_or_bundle: Run | str | Path, *, format: str = "onnx") -> Path:
    """Write ``model.onnx`` (model + imputation, scaling, one-hot, image scaling) into the bundle.

    Takes a run (or its folder) or a bundle folder; bundle.json gains the file's sha256 and a
    description of the graph's inputs. Returns the ONNX file's path.
    """
    from forgeml.bundle.onnx_export import export as export_onnx

    if format != "onnx":
        raise ConfigError(f"export format {format!r} is not supported; use onnx.")
    path = run_or_bundle.bundle_path if isinstance(run_or_bundle, Run) else Path(run_or_bundle)
    if not (path / "bundle.json").is_file() and (path / BUNDLE_DIR / "bundle.json").is_file():
        path = path / BUNDLE_DIR
    return export_onnx(path)


def serve(bundle: str | Path, *, config: ServeConfig | None = None, **settings: object) -> None:
    """Serve ``bundle`` over HTTP until SIGTERM/SIGINT: ``forgeml.serve("bundle/", port=8000)``.

    ``settings`` override fields of ``config`` (host, port, workers, max_queue, ...); see ServeConfig.
    """
    from forgeml.deploy.serving import serve_bundle

    serve_bundle(bundle, config.model_dump(exclude_unset=True) if config is not None else {}, settings)


def verify(
    bundle: str | Path, *, data: str | Path, url: str | None = None, rows: int | None = None
) -> VerifyReport:
    """Replay ``data`` through a server (``url``, or one started on a free loopback port), the Predictor
    and the PyTorch model; the report holds the largest difference between each pair."""
    from forgeml.deploy.verify import verify as verify_bundle

    return verify_bundle(bundle, data, url=url, rows=rows)


def _as_config(config: Config | str | Path) -> Config:
    return config if isinstance(config, Config) else load_config(config)


def _saved_config(run_dir: Path) -> Config:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{run_dir}: not a run folder (config.yaml is missing). Pass runs/<name> as written by forgeml train."
        )
    return load_config(path)


def _history_csv(result: TrainResult) -> str:
    lines = ["epoch,train_loss,val_loss,seconds"]
    lines += [
        f"{r.epoch},{r.train_loss:.6g},{'' if r.val_loss is None else f'{r.val_loss:.6g}'},{r.seconds:.4f}"
        for r in result.history
    ]
    return "\n".join(lines) + "\n"
