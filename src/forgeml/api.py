"""The public Python API: each function is one CLI verb (``forgeml train`` calls ``train``).

The stages are chained here and only here; each stage module stays ignorant of the ones after it.
Every function takes any kind of model; each asks the kind once (``config.kind`` for a config or a
run, the manifest's ``kind`` for a bundle) and goes down that kind's path.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from rich.console import Console

from forgeml import atomic, tracking
from forgeml.bundle.integrity import check_bundle
from forgeml.bundle.predictive import read_predictor_bundle, write_bundle
from forgeml.bundle.predictor import Predictor
from forgeml.check_options import CheckOptions, check_options
from forgeml.checks import DataReport, gate
from forgeml.checks import check as check_data
from forgeml.checks.fixes import fix_table
from forgeml.checks.images import fix_images
from forgeml.checks.render import write_reports
from forgeml.compression.options import CompressOptions
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
from forgeml.tuning.options import TuneOptions, tune_options

if TYPE_CHECKING:
    from forgeml.checks.lm import LMDataReport
    from forgeml.compression import Compression
    from forgeml.evaluation.lm import LMEvaluation
    from forgeml.training.plan import Plan
    from forgeml.tuning.report import Outcome

logger = logging.getLogger(__name__)
__all__ = ["BUNDLE_DIR", "PredictorRun", "Run"]  # re-exported: forgeml.Run is any kind's run
Function = TypeVar("Function", bound=Callable[..., Any])


def _takes(options: type[BaseModel]) -> Callable[[Function], Function]:
    """Show the fields of ``options`` as the function's keyword options (``help()``, ``inspect``).

    The function takes them as ``**options`` and validates them with that model, the one the CLI
    generates its flags from, so a verb and its function cannot offer different options.
    """

    def decorate(function: Function) -> Function:
        signature = inspect.signature(function)
        kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        fields = [
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=field.default, annotation=field.annotation
            )
            for name, field in options.model_fields.items()
        ]
        function.__signature__ = signature.replace(parameters=[*kept, *fields])  # type: ignore[attr-defined]
        return function

    return decorate


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
    tracking.check(config)
    if config.kind == CAUSAL_LM:
        from forgeml.training.lm import train_lm

        return train_lm(
            config, callbacks=callbacks, console=console, resume=resume, force_resume=force_resume
        )
    if config.check.enabled:
        gate(config.data, config.check, run_dir=config.run_dir())
    splits = load_data(config.data, seed=config.seed)
    pipeline = fit_features(splits.train, config.features, splits.task, backbone=config.image_backbone)
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
        metrics={"validation": validation, "stopped": result.stop_reason},
    )
    tracking.log_run(run_dir, config)  # track.mlflow: a warning at worst, never a failed run
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
        run_dir, bundle.model, bundle.pipeline, rows, splits.train.target, config, name=name,
        members=splits.train if name is None else None,  # the membership audit: train rows vs test rows
    )  # fmt: skip
    if name is None:  # report.html was rendered afresh: keep the section `forgeml compress` added
        from forgeml.compression.report import restore_run_report

        restore_run_report(run_dir)
    return evaluation


def compare(runs: list[str | Path], *, output: str | Path) -> Path:
    """One HTML page with several runs' metrics and learning curves side by side."""
    return compare_runs([Path(run) for run in runs], Path(output))


@_takes(CompressOptions)
def compress(run: Run | str | Path, *, console: Console | None = None, **options: Any) -> Compression:
    """Pruned, quantized and distilled variants of a run, each a bundle under ``runs/<name>/compressed/``.

    ``options`` are the fields of :class:`~forgeml.compression.CompressOptions` (the flags of
    ``forgeml compress``): ``prune``, ``quantize``, ``distill`` (a student YAML file, or a number
    like ``distill_width``), ``max_drop`` (also chains prune -> distill -> quantize and recommends
    the smallest variant whose test metric drops by at most that much), ... Bad values raise
    ConfigError naming the flag.
    """
    from forgeml.compression import compress_options, compress_run

    chosen = compress_options(**options)
    return compress_run(run.path if isinstance(run, Run) else Path(run), chosen, console=console)


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
    evaluation = evaluate(trained)
    tracking.log_run(trained.path, trained.config)  # adds the test metrics and report.html
    return trained, evaluation


@_takes(TuneOptions)
def tune(config: Config | str | Path, *, console: Console | None = None, **options: Any) -> Outcome:
    """Search hyperparameters with Optuna (``config.tune``); each trial is a run under ``runs/<name>/trials/``.

    ``options`` are the fields of :class:`~forgeml.tuning.options.TuneOptions` (the flags of ``forgeml tune``):
    ``storage`` (a journal file or an SQLAlchemy URL shared by several machines) and ``jobs`` (worker
    processes here). Writes ``runs/<name>/tune/best.yaml``, ``leaderboard.csv`` and ``report.html``;
    the test split is scored once, for the best trial. Running it again continues the study.
    """
    from forgeml.tuning.search import tune_study
    from forgeml.tuning.study import Verbs

    chosen = tune_options(**options)
    return tune_study(_as_config(config), chosen, Verbs(train=train, evaluate=evaluate), console=console)


@_takes(CheckOptions)
def check(source: str | Path, *, console: Console | None = None, **options: Any) -> DataReport | LMDataReport:
    """The data-quality report of ``source``: a data file, ``sklearn:<name>`` or a YAML config.

    ``options`` are the fields of :class:`~forgeml.check_options.CheckOptions` (the flags of
    ``forgeml check``). A config supplies data.source, target, test_source and check.allow (options
    win; ``allow`` adds ids); a language-model config gets its examples' checks. ``fix`` writes a
    cleaned copy to ``output`` (said on ``console``) and checks the copy.
    """
    chosen = check_options(**options)
    config = load_config(source) if Path(source).suffix.lower() in (".yaml", ".yml") else None
    if config is not None and chosen.allow:
        allow = [*config.check.allow, *chosen.allow]
        config = config.model_copy(update={"check": config.check.model_copy(update={"allow": allow})})
    if config is not None and config.kind == CAUSAL_LM:
        return _check_lm(config, chosen, source)
    data = config.data if config is not None else None
    source = data.source if data is not None else str(source)
    target = chosen.target or (data.target if data is not None else None)
    test_source = chosen.test_source or (data.test_source if data is not None else None)
    task = data.task if data is not None else "auto"
    if chosen.fix and (listed := fix_images(source)) is not None:  # image files: a list, nothing moved
        if console is not None:
            console.print(f"listed {listed[1]} files to leave out in {listed[0]}", soft_wrap=True)
    elif chosen.fix:
        if chosen.output is None:
            raise ConfigError(
                "--fix needs -o OUT: the cleaned copy is written to a new file (.csv, .parquet or .jsonl)."
            )
        fixed = fix_table(source, chosen.output, target=target, task=task, test_source=test_source)
        if console is not None:
            console.print(
                f"wrote {fixed.rows_out} of {fixed.rows_in} rows to {fixed.output}; fix log: {fixed.log_path}",
                soft_wrap=True,
            )
        source = str(fixed.output)
    allow = config.check.allow if config is not None else chosen.allow
    test = None if test_source is None else str(test_source)
    thresholds = config.check.thresholds if config is not None else None
    report = check_data(source, target=target, test_source=test, allow=allow, task=task, thresholds=thresholds)
    if chosen.report_dir is not None:
        write_reports(report, chosen.report_dir)
    return report


def init(
    source: str | Path,
    *,
    target: str | None = None,
    test_source: str | Path | None = None,
    output: str | Path | None = None,
) -> str:
    """The starter config for ``source`` as YAML text (``forgeml.checks.init``); also written to ``output``.

    An existing ``output`` is not overwritten (ConfigError): it may be a config someone edited.
    """
    from forgeml.checks.init import starter_config

    text = starter_config(source, target=target, test_source=test_source)
    if output is not None:
        if Path(output).exists():
            raise ConfigError(f"{output} exists; choose another file with -o, or delete it first.")
        atomic.write_text(Path(output), text)
    return text


def plan(config: Config | str | Path, *, batches: int = 5) -> Plan:
    """Parameters, FLOPs, memory and an epoch-time estimate (``batches`` timed) of a config, before training."""
    from forgeml.training.plan import plan_config

    return plan_config(_as_config(config), timed_batches=batches)


def predict(
    bundle: str | Path,
    source: str | Path,
    output: str | Path,
    *,
    progress: bool | None = None,
    digest: str | None = None,
    verify_key: str | Path | None = None,
) -> PredictSummary:
    """Predict every row of ``source`` with ``bundle`` and write ``output`` (CSV, Parquet or JSON Lines).

    CSV and Parquet inputs stream in chunks (bounded memory); the output is written atomically.
    ONNX Runtime runs when the bundle has model.onnx, PyTorch otherwise. ``digest`` and
    ``verify_key`` refuse a bundle that is not the one pinned or signed (see :func:`load`).
    """
    check_bundle(bundle, digest=digest, verify_key=verify_key)
    return predict_file(bundle, source, output, progress=progress)


def load(
    bundle: str | Path,
    *,
    engine: str = "auto",
    unseen: str = "unknown",
    digest: str | None = None,
    verify_key: str | Path | None = None,
) -> Predictor:
    """A :class:`Predictor` for ``bundle``, checked against its manifest: ``forgeml.load(path).predict(rows)``.

    ``engine``: "auto" (ONNX Runtime if the bundle has model.onnx), "onnx" or "torch".
    ``unseen``: "unknown" maps unseen categories to the unknown bucket as in training; "reject" raises.
    ``digest``: refuse the bundle unless its digest (over every file and bundle.json, printed by
    train, export and compress; :mod:`forgeml.bundle.integrity`) is this hex.
    ``verify_key``: refuse it unless its ``model.sig`` (from :func:`sign`) verifies with this public key.
    """
    check_bundle(bundle, digest=digest, verify_key=verify_key)
    return Predictor.from_bundle(bundle, engine=engine, unseen=unseen)


def sign(bundle: str | Path, *, key: str | Path) -> Path:
    """Sign ``bundle`` with the elliptic-curve private key file ``key`` (PEM) using OpenSSF model-signing.

    Offline, key mode. Writes ``model.sig`` into the bundle and returns its path; ``serve``,
    ``predict`` and ``load`` check it with ``verify_key=``. Needs ``pip install "forgeml[sign]"``.
    """
    from forgeml.bundle.signing import sign_bundle

    return sign_bundle(bundle, key=key)


def export(run_or_bundle: Run | str | Path, *, format: str = "onnx") -> Path:
    """Write ``model.onnx`` (model + imputation, scaling, one-hot, image scaling) into the bundle.

    Takes a run (or its folder) or a bundle folder; bundle.json gains the file's sha256 and a
    description of the graph's inputs, so the bundle digest changes and a signature (model.sig) is
    dropped: sign the exported bundle again. Returns the ONNX file's path.
    """
    from forgeml.bundle.onnx_export import export as export_onnx

    if format != "onnx":
        raise ConfigError(f"export format {format!r} is not supported; use onnx.")
    path = run_or_bundle.bundle_path if isinstance(run_or_bundle, Run) else Path(run_or_bundle)
    if not (path / "bundle.json").is_file() and (path / BUNDLE_DIR / "bundle.json").is_file():
        path = path / BUNDLE_DIR
    return export_onnx(path)


def serve(
    bundle: str | Path,
    /,
    *,
    config: ServeConfig | None = None,
    digest: str | None = None,
    verify_key: str | Path | None = None,
    **settings: object,
) -> None:
    """Serve ``bundle`` over HTTP until SIGTERM/SIGINT: ``forgeml.serve("bundle/", port=8000)``.

    ``settings`` override fields of ``config`` (host, port, workers, max_queue, ...); see ServeConfig.
    ``bundle`` is positional-only, so a setting of any name reaches the check that names a wrong one.
    ``digest`` and ``verify_key`` (see :func:`load`) are checked before the port opens.
    """
    from forgeml.deploy.serving import serve_bundle

    check_bundle(bundle, digest=digest, verify_key=verify_key)
    serve_bundle(bundle, config.model_dump(exclude_unset=True) if config is not None else {}, settings)


def verify(
    bundle: str | Path, *, data: str | Path, url: str | None = None, rows: int | None = None
) -> VerifyReport:
    """Replay ``data`` through a server (``url``, or one started on a free loopback port), the Predictor
    and the PyTorch model; the report holds the largest difference between each pair."""
    from forgeml.deploy.verify import verify as verify_bundle

    return verify_bundle(bundle, data, url=url, rows=rows)


def _check_lm(config: Config, options: CheckOptions, source: str | Path) -> LMDataReport:
    """The LM data gate on a config's examples; the table options have nothing to act on."""
    from forgeml.checks.lm import check_lm_config  # transformers loads only here

    if options.fix:
        raise ConfigError(
            f"--fix cleans tables only; {source} is a language-model config (model.type: causal_lm). "
            "Edit the lines `forgeml check` lists, or accept their ids with check.allow in the config."
        )
    given = [
        flag
        for flag, value in (
            ("--target", options.target),
            ("--test", options.test_source),
            ("-o", options.output),
        )
        if value is not None
    ]
    if given:
        raise ConfigError(
            f"{', '.join(given)}: not used for a language-model config ({source}); the config's "
            "data.source and data.validation_source say what to check. Drop the option."
        )
    report = check_lm_config(config)
    if options.report_dir is not None:
        atomic.write_text(options.report_dir / "data_report.json", json.dumps(report.to_json(), indent=2))
    return report


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
