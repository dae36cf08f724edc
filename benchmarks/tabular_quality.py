"""The tabular quality suite (issue #16): forgeml's table models against hand-written baselines.

For each public table (benchmarks/tabular_data.py; manifest and groups in benchmarks/README.md,
"Benchmark tables") and each seed, the rows are split once (65% train, 15% validation, 20% test,
stratified for classifiers) and every contender runs on that split, interleaved per table and seed
so a busy machine slows all of them alike:

================  ==========================================================================
lightgbm          the "three-line LightGBM": text columns as pandas categoricals,
                  ``LGBMClassifier()`` / ``LGBMRegressor()`` defaults, fit on train+validation
sklearn-hgb       ``HistGradientBoosting{Classifier,Regressor}(categorical_features="from_dtype")``
                  defaults, fit on train+validation
forgeml           a config with only ``data.source``, ``data.target`` and ``data.test_source``
                  (whatever the default model is), through ``forgeml.train`` like a user
forgeml-mlp       the same with ``model: {type: mlp}``
forgeml-gbm       ... ``model: {type: gbm}``
forgeml-auto      ... ``model: {type: auto}``
forgeml-mlp-      the MLP default before issue #16 (commit b0675d2), reproduced by a config:
b0675d2           ``hidden: [64, 32]``, one network, standard scaling, every category kept, no column left
                  out, 20 epochs of batch 32 at a constant 1e-3 (its untrimmed strings are not
                  reproduced). The MLP's gap to LightGBM is measured against it.
--variant NAME=J  a forgeml config variant for tuning: the JSON object J merged into the config
                  above (e.g. ``gbm-lr05={"model": {"type": "gbm"}, "train": {"learning_rate": 0.05}}``)
autogluon         ``TabularPredictor(...).fit(train+validation, presets="medium_quality")`` in its
                  own virtual environment (benchmarks/tabular_autogluon.py), if one is given
================  ==========================================================================

forgeml reads the split from files in a temporary folder exactly as a user's config would:
``data.source`` holds the train+validation rows (forgeml picks its own validation rows from them,
with the run's seed) and ``data.test_source`` the test rows. If the cleaning gate blocks a table, the
run is repeated with ``check.allow`` set to the blocking check ids, and the report says which. A
model type that the installed forgeml does not know (``gbm`` and ``auto`` while they are being
built) is reported as "not available", so the suite runs on any checkout.

Every contender's test predictions are scored here by the same code: accuracy and log loss for
classifiers, R^2 and RMSE for regression. Fit seconds are the wall time of the fit call
(``forgeml.train`` includes the data gate, feature fitting and writing the bundle; AutoGluon's is
timed inside its worker), predict seconds the test set's predictions from a loaded model.

    .venv/bin/python benchmarks/tabular_quality.py --quick     # smoke: 1 seed, the 2 smallest tuning tables
    .venv/bin/python benchmarks/tabular_quality.py --group tuning --contenders lightgbm,sklearn-hgb
    .venv/bin/python benchmarks/tabular_quality.py --group all --autogluon-python /tmp/ag/bin/python
    .venv/bin/python benchmarks/tabular_quality.py --merge A.json B.json --output joined   # runs made apart

Writes benchmarks/results/tabular_quality.md and .json (after each table, so a long run that is
stopped keeps what it measured), with issue #16's two bars per table: auto at or above LightGBM, and
the share of the old MLP's gap to LightGBM that today's MLP closed. Mean rank: per table the contenders that ran are ranked by their
mean test metric (1 = best, ties share), then the ranks are averaged over the group's tables.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tabular_data import GROUPS, Table, describe, load_table, select, split_table

RESULTS = Path(__file__).parent / "results"
AUTOGLUON_WORKER = Path(__file__).parent / "tabular_autogluon.py"
CONTENDERS = (
    "lightgbm", "sklearn-hgb", "forgeml", "forgeml-mlp", "forgeml-gbm", "forgeml-auto", "forgeml-mlp-b0675d2",
    "autogluon",
)  # fmt: skip
FORGEML_MODELS = {"forgeml": None, "forgeml-mlp": "mlp", "forgeml-gbm": "gbm", "forgeml-auto": "auto"}
# The MLP default before issue #16 (b0675d2's schema defaults) as a config on today's forgeml
ORIGINAL_MLP = {
    # one network: b0675d2 had no submodels. Until 2026-12-08 this config left submodels at auto, so from
    # 75ba626 (the ninth to thirteenth groups) it had 4 on tables under 4,000 training rows (docs/tables.md)
    "model": {"type": "mlp", "hidden": [64, 32], "numeric_embedding": "none", "submodels": 1},
    "features": {"numeric": {"scale": "standard"}, "categorical": {"min_frequency": 1}, "leave_out": []},
    # the engine's training defaults, which a table mlp no longer gets (config.TABLE_MLP_DEFAULTS)
    "train": {
        "epochs": 20,
        "batch_size": 32,
        "learning_rate": 1e-3,
        "schedule": None,
        "early_stopping": {"patience": 5, "monitor": "loss"},  # the validation loss, as before monitor existed
    },
}
VARIANTS: dict[str, dict[str, Any]] = {"forgeml-mlp-b0675d2": ORIGINAL_MLP}  # --variant adds to these
# Measured with pip 24 on 2026-12-06 (`pip install -c constraints.txt autogluon.tabular`):
AUTOGLUON_PIN_CONFLICT = (
    "autogluon.tabular does not install beside constraints.txt: every release conflicts "
    "(1.6.x needs pandas<2.4.0, we pin pandas==3.1.1; 1.0-1.5 need numpy<2.4, we pin numpy==2.4.6); "
    "give --autogluon-python a separate venv's interpreter to run it"
)
# On a machine shared with other work, one thread per contender avoids OpenMP threads spinning on
# descheduled peers (measured on a loaded 2-core machine: HistGradientBoosting 4.7 s with 2 threads,
# 0.56 s with 1; LightGBM on 5,000 x 17 random rows 37.7 s with its default of 2 threads, 0.95 s with 1).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PRIMARY = {"binary": "accuracy", "multiclass": "accuracy", "regression": "r2"}
SECONDARY = {"binary": "log_loss", "multiclass": "log_loss", "regression": "rmse"}
PROBABILITY_FLOOR = 1e-15


@dataclass
class Prediction:
    """One contender's test predictions: labels (or values), class probabilities, and timings."""

    values: np.ndarray
    probabilities: np.ndarray | None  # (rows, classes) in ``classes`` order, classifiers only
    classes: list[str] | None
    fit_s: float
    predict_s: float
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Record:
    table: str
    group: str
    task: str
    seed: int
    contender: str
    status: str  # ok | not available | failed
    reason: str = ""
    metric: float | None = None  # accuracy or R^2
    metric2: float | None = None  # log loss or RMSE
    fit_s: float | None = None
    predict_s: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


class NotAvailable(Exception):
    """The contender cannot run on this checkout (say why once; the suite goes on)."""


# ------------------------------------------------------------------------------------------ scoring


def label_key(value: object) -> str:
    """A class label as one string whoever produced it (5, 5.0, np.int64(5), "5" and "5.0" are one class).

    "5.0" is a column name's spelling: a class column with a missing value is read as floats, so the
    probability columns come back as ``probability_5.0`` (personality_education)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        try:
            value = float(value) if "." in value else value
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def score(table: Table, truth: pd.Series, prediction: Prediction) -> tuple[float, float]:
    from sklearn.metrics import log_loss, mean_squared_error, r2_score

    if table.task == "regression":
        values = prediction.values.astype(float)
        return float(r2_score(truth, values)), float(math.sqrt(mean_squared_error(truth, values)))
    keys = np.array([label_key(v) for v in truth])
    predicted = np.array([label_key(v) for v in prediction.values])
    accuracy = float(np.mean(keys == predicted))
    assert prediction.probabilities is not None and prediction.classes is not None
    probabilities = np.clip(prediction.probabilities.astype(float), PROBABILITY_FLOOR, 1.0)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return accuracy, float(log_loss(keys, probabilities, labels=prediction.classes))


def from_probability_frame(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """``probability_<label>`` columns (forgeml's and the AutoGluon worker's layout) as a matrix."""
    columns = [c for c in frame.columns if c.startswith("probability_")]
    return frame[columns].to_numpy(dtype=float), [c.removeprefix("probability_") for c in columns]


# --------------------------------------------------------------------------- hand-written baselines


def tree_frames(fit: pd.DataFrame, test: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features with text columns as pandas categoricals, the test's categories those of the fit rows."""
    x_fit, x_test = fit.drop(columns=[target]), test.drop(columns=[target])
    for column in x_fit.columns:
        if not pd.api.types.is_numeric_dtype(x_fit[column]):
            categories = x_fit[column].astype("category").cat.categories
            x_fit[column] = pd.Categorical(x_fit[column], categories=categories)
            x_test[column] = pd.Categorical(x_test[column], categories=categories)
    return x_fit, x_test


def run_hand(
    contender: str, table: Table, fit: pd.DataFrame, test: pd.DataFrame, seed: int, threads: int = 0
) -> Prediction:
    x_fit, x_test = tree_frames(fit, test, table.target)
    y_fit = fit[table.target]
    if table.task != "regression":
        y_fit = y_fit.map(label_key)
    model = hand_model(contender, table.task, seed, threads)
    start = time.perf_counter()
    model.fit(x_fit, y_fit)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    if table.task == "regression":
        values, probabilities, classes = model.predict(x_test), None, None
    else:
        probabilities = model.predict_proba(x_test)
        classes = [str(c) for c in model.classes_]
        values = np.asarray(classes)[probabilities.argmax(axis=1)]
    predict_s = time.perf_counter() - start
    return Prediction(np.asarray(values), probabilities, classes, fit_s, predict_s)


def hand_model(contender: str, task: str, seed: int, threads: int = 0) -> Any:
    """The library's defaults; only the seed, LightGBM's log level and (with --threads) threads are set."""
    if contender == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMRegressor if task == "regression" else lightgbm.LGBMClassifier
        # LightGBM ignores OMP_NUM_THREADS: its n_jobs=None means one thread per physical core.
        return cls(random_state=seed, verbose=-1, **({"n_jobs": threads} if threads else {}))
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return cls(categorical_features="from_dtype", random_state=seed)


# ---------------------------------------------------------------------------------------- forgeml


def forgeml_available(model_type: str | None) -> str | None:
    """None when the installed forgeml accepts ``model.type``; otherwise its error, one line."""
    if model_type is None:
        return None
    try:
        from forgeml.config import config_from_dict

        config_from_dict({"data": {"source": "rows.csv", "target": "y"}, "model": {"type": model_type}})
    except Exception as error:
        return f"model.type {model_type!r} is not in this forgeml: {first_line(error)}"
    return None


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, nested dicts key by key."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def run_forgeml(
    model_type: str | None,
    table: Table,
    paths: dict[str, Path],
    test: pd.DataFrame,
    seed: int,
    name: str,
    threads: int = 0,
    variant: dict[str, Any] | None = None,
) -> Prediction:
    from rich.console import Console

    import forgeml
    from forgeml.config import config_from_dict
    from forgeml.errors import DataQualityError

    raw: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "output_dir": str(paths["runs"]),
        "data": {"source": str(paths["source"]), "target": table.target, "test_source": str(paths["test"])},
    }
    if model_type is not None:
        raw["model"] = {"type": model_type}
    if threads:  # forgeml sets torch's thread count itself; only --threads adds this key
        raw["train"] = {"threads": threads}
    raw = merged(raw, variant or {})
    notes: dict[str, Any] = {}
    console = Console(file=io.StringIO(), width=120)
    start = time.perf_counter()
    try:
        run = forgeml.train(config_from_dict(raw), console=console)
    except DataQualityError as error:  # a user would allow what the gate blocks; say which
        report = getattr(error, "report", None)
        allowed = sorted({finding.id for finding in getattr(report, "blocking", ())})
        if not allowed:
            raise
        notes["allowed"] = allowed
        raw["check"] = {"allow": allowed}
        start = time.perf_counter()
        run = forgeml.train(config_from_dict(raw), console=console)
    fit_s = time.perf_counter() - start
    notes["model_type"] = getattr(run.config.model, "type", None)
    board = getattr(run.model, "leaderboard", None) or []  # auto: what the budget left out, and the weights
    notes["skipped"] = [row["model"] for row in board if str(row.get("note", "")).startswith("skipped")]
    notes["ensemble"] = next((row["note"] for row in board if row["model"] == "ensemble"), None)
    # a network's validation figures at its kept epoch: what a choice between variants on validation rows would read
    kept = [e for e in run.result.history if e.epoch == run.result.best_epoch]
    if kept:
        notes["validation"] = {"loss": kept[0].val_loss, "error": kept[0].val_error}
    predictor = forgeml.load(run.bundle_path)
    rows = test.drop(columns=[table.target])
    start = time.perf_counter()
    frame = predictor.predict(rows)
    predict_s = time.perf_counter() - start
    if table.task == "regression":
        return Prediction(frame["prediction"].to_numpy(), None, None, fit_s, predict_s, notes)
    probabilities, classes = from_probability_frame(frame)
    return Prediction(
        frame["prediction"].to_numpy(),
        probabilities,
        [label_key(c) for c in classes],
        fit_s,
        predict_s,
        notes,
    )


# -------------------------------------------------------------------------------------- AutoGluon


def autogluon_available(python: str | None) -> str | None:
    if not python:
        return AUTOGLUON_PIN_CONFLICT
    if not Path(python).exists():
        return f"--autogluon-python {python} does not exist"
    probe = subprocess.run(
        [python, "-c", "import autogluon.tabular"], capture_output=True, text=True, timeout=300, check=False
    )
    if probe.returncode:
        return f"{python} cannot import autogluon.tabular: {(probe.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def run_autogluon(
    python: str, table: Table, paths: dict[str, Path], seed: int, time_limit: float | None, threads: int = 0
) -> Prediction:
    output = paths["folder"] / f"autogluon-{seed}"
    output.mkdir(exist_ok=True)
    job = {
        "train": str(paths["source_parquet"]), "test": str(paths["test_parquet"]), "target": table.target,
        "task": table.task, "time_limit": time_limit, "num_cpus": threads or "auto", "output": str(output),
    }  # fmt: skip
    (output / "job.json").write_text(json.dumps(job))
    limit = None if time_limit is None else 3 * time_limit + 900
    done = subprocess.run(
        [python, str(AUTOGLUON_WORKER), str(output / "job.json")],
        capture_output=True, text=True, timeout=limit, check=False,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(
            f"AutoGluon worker exited {done.returncode}: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
        )
    timing = json.loads((output / "timing.json").read_text())
    frame = pd.read_parquet(output / "predictions.parquet")
    notes = {key: timing[key] for key in ("autogluon", "models", "best")}
    if table.task == "regression":
        return Prediction(
            frame["prediction"].to_numpy(), None, None, timing["fit_s"], timing["predict_s"], notes
        )
    probabilities, classes = from_probability_frame(frame)
    return Prediction(
        frame["prediction"].to_numpy(), probabilities, [label_key(c) for c in classes],
        timing["fit_s"], timing["predict_s"], notes,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- suite


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def write_split(
    folder: Path, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, fmt: str
) -> dict[str, Path]:
    """The split's files: forgeml's source (train+validation) and test in ``fmt``, parquet for AutoGluon."""
    folder.mkdir(parents=True, exist_ok=True)
    source = pd.concat([train, validation], ignore_index=True)
    paths = {"folder": folder, "runs": folder / "runs"}
    for name, frame in (("train", train), ("validation", validation), ("source", source), ("test", test)):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
        paths[f"{name}_parquet"] = folder / f"{name}.parquet"
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        paths[name] = folder / f"{name}.{fmt}"
    return paths


def run_suite(args: argparse.Namespace, tables: list[Table], contenders: list[str]) -> dict[str, Any]:
    unavailable: dict[str, str] = {}
    for contender in contenders:
        if contender in FORGEML_MODELS or contender in VARIANTS:
            reason = forgeml_available(
                FORGEML_MODELS.get(contender, VARIANTS.get(contender, {}).get("model", {}).get("type"))
            )
        elif contender == "autogluon":
            reason = autogluon_available(args.autogluon_python)
        else:
            reason = None
        if reason:
            unavailable[contender] = reason
            print(f"  {contender}: not available: {reason}", flush=True)
    seeds = list(range(args.seeds))
    time_limit = args.autogluon_time_limit or None
    records: list[Record] = []
    manifest: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="forgeml-tabular-quality-") as scratch:
        for table in tables:
            frame = load_table(table)
            manifest.append({"name": table.name, "group": table.group, "task": table.task, "target": table.target,
                             "source": table.source, "sha256": table.sha256, "rows": table.rows,
                             "drop": list(table.drop), **describe(frame, table)})  # fmt: skip
            for seed in seeds:
                train, validation, test = split_table(frame, table, seed)
                fit = pd.concat([train, validation], ignore_index=True)
                paths = write_split(
                    Path(scratch) / table.name / f"seed{seed}", train, validation, test, args.format
                )
                for contender in contenders:
                    record = Record(table.name, table.group, table.task, seed, contender, "ok")
                    if contender in unavailable:
                        record.status, record.reason = "not available", unavailable[contender]
                        records.append(record)
                        continue
                    try:
                        if contender in ("lightgbm", "sklearn-hgb"):
                            prediction = run_hand(contender, table, fit, test, seed, args.threads)
                        elif contender == "autogluon":
                            prediction = run_autogluon(
                                args.autogluon_python, table, paths, seed, time_limit, args.threads
                            )
                        else:
                            name = f"{table.name}-s{seed}-{contender}"
                            prediction = run_forgeml(
                                FORGEML_MODELS.get(contender), table, paths, test, seed, name,
                                args.threads, variant=VARIANTS.get(contender),
                            )  # fmt: skip
                        record.metric, record.metric2 = score(table, test[table.target], prediction)
                        record.fit_s, record.predict_s = prediction.fit_s, prediction.predict_s
                        record.notes = prediction.notes
                    except Exception as error:
                        record.status, record.reason = "failed", first_line(error)
                    records.append(record)
                    print(f"  {describe_record(record)}", flush=True)
            results = assemble(args, tables, contenders, manifest, records, unavailable)
            write_results(results, args.output)
    return results


def describe_record(record: Record) -> str:
    head = f"{record.table:<17} seed {record.seed} {record.contender:<13}"
    if record.status != "ok":
        return f"{head} {record.status}: {record.reason}"
    primary = PRIMARY[record.task]
    extra = f" (allowed {', '.join(record.notes['allowed'])})" if record.notes.get("allowed") else ""
    extra += f" (skipped {', '.join(record.notes['skipped'])})" if record.notes.get("skipped") else ""
    return (
        f"{head} {primary} {record.metric:.4f}  {SECONDARY[record.task]} {record.metric2:.4f}  "
        f"fit {record.fit_s:.2f}s  predict {record.predict_s:.3f}s{extra}"
    )


# ---------------------------------------------------------------------------------------- summary


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(
        values
    ) > 1 else None  # one seed: no sd


def summarize(records: list[Record]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (table, contender): mean and sd over seeds of each measure, or why it did not run."""
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for key in dict.fromkeys((r.table, r.contender) for r in records):
        group = [r for r in records if (r.table, r.contender) == key]
        ok = [r for r in group if r.status == "ok"]
        cell: dict[str, Any] = {"runs": len(ok), "seeds": len(group)}
        for measure in ("metric", "metric2", "fit_s", "predict_s"):
            cell[measure], cell[f"{measure}_sd"] = mean_sd([getattr(r, measure) for r in ok])
        failed = [r for r in group if r.status != "ok"]
        if failed:
            cell["status"], cell["reason"] = failed[0].status, failed[0].reason
        allowed = sorted({a for r in ok for a in r.notes.get("allowed", [])})
        if allowed:
            cell["allowed"] = allowed
        cells[key] = cell
    return cells


def mean_ranks(
    tables: list[Table], contenders: list[str], cells: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any]:
    """Per group: each contender's mean rank over the tables where every seed ran (1 = best)."""
    ranks: dict[str, Any] = {}
    for group in GROUPS:
        per_contender: dict[str, list[float]] = {c: [] for c in contenders}
        for table in (t for t in tables if t.group == group):
            scores = {
                c: cells[(table.name, c)]["metric"]
                for c in contenders
                if cells.get((table.name, c), {}).get("metric") is not None
                and cells[(table.name, c)]["runs"] == cells[(table.name, c)]["seeds"]
            }
            ranked = pd.Series(scores, dtype=float).rank(ascending=False, method="average")
            for contender, rank in ranked.items():
                per_contender[str(contender)].append(float(rank))
        ranks[group] = {
            c: {"mean_rank": float(np.mean(v)), "tables": len(v)} for c, v in per_contender.items() if v
        }
    return ranks


def assemble(
    args: argparse.Namespace,
    tables: list[Table],
    contenders: list[str],
    manifest: list[dict[str, Any]],
    records: list[Record],
    unavailable: dict[str, str],
) -> dict[str, Any]:
    done = {r.table for r in records}
    finished = [t for t in tables if t.name in done]
    cells = summarize(records)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cores": cores(),
            "versions": versions(),
        },  # fmt: skip
        "settings": {
            "seeds": args.seeds,
            "group": args.group,
            "contenders": contenders,
            "format": args.format,
            "threads": args.threads or "library defaults",
            "autogluon_time_limit": args.autogluon_time_limit or None,
            "tables": [t.name for t in tables],
            "finished": [t.name for t in finished],
        },  # fmt: skip
        "unavailable": unavailable,
        "tables": manifest,
        "summary": [{"table": t, "contender": c, **cell} for (t, c), cell in cells.items()],
        "mean_rank": mean_ranks(finished, contenders, cells),
        "runs": [asdict(r) for r in records],
    }


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("forgeml", "lightgbm", "scikit-learn", "torch", "pandas", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


# --------------------------------------------------------------------------------------- markdown


def fmt(mean: float | None, sd: float | None, digits: int) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if sd is not None else f"{mean:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    cells = {(s["table"], s["contender"]): s for s in results["summary"]}
    contenders = results["settings"]["contenders"]
    tables = [t for t in results["tables"] if t["name"] in results["settings"]["finished"]]
    lines = [
        "# Tabular quality suite",
        "",
        f"{results['created']}; {results['machine']['cores']} cores; threads: {results['settings']['threads']}; "
        f"{results['settings']['seeds']} seed(s); "
        f"split 65/15/20 (train/validation/test); contenders fit on train+validation. "
        + ", ".join(f"{k} {v}" for k, v in results["machine"]["versions"].items()),
        "",
    ]
    for group in GROUPS:
        rows = [t for t in tables if t["group"] == group]
        if not rows:
            continue
        header = "| table | task | rows | " + " | ".join(contenders) + " |"
        rule = "|---|---|---|" + "---|" * len(contenders)
        lines += [f"## {group.capitalize()} group: test accuracy (classification) or R² (regression), mean ± sd", "",
                  header, rule]  # fmt: skip
        for t in rows:
            lines.append(f"| {t['name']} | {t['task']} | {t['rows_used']:,} | "
                         + " | ".join(cell_text(cells.get((t["name"], c)), "metric", 4) for c in contenders) + " |")  # fmt: skip
        ranks = results["mean_rank"].get(group, {})
        lines.append("| **mean rank** | | | " + " | ".join(
            f"**{ranks[c]['mean_rank']:.2f}** ({ranks[c]['tables']})" if c in ranks else "n/a" for c in contenders
        ) + " |")  # fmt: skip
        lines += ["", f"### {group.capitalize()}: log loss (classification) or RMSE (regression), lower is better", "",
                  header, rule]  # fmt: skip
        for t in rows:
            lines.append(f"| {t['name']} | {t['task']} | {t['rows_used']:,} | "
                         + " | ".join(cell_text(cells.get((t["name"], c)), "metric2", 4) for c in contenders) + " |")  # fmt: skip
        lines += ["", f"### {group.capitalize()}: fit seconds / predict seconds (test rows), mean over seeds", "",
                  header, rule]  # fmt: skip
        for t in rows:
            lines.append(f"| {t['name']} | {t['task']} | {t['rows_used']:,} | "
                         + " | ".join(time_text(cells.get((t["name"], c))) for c in contenders) + " |")  # fmt: skip
        lines.append("")
        lines += bar_lines(group, rows, cells)
    notes = [f"- **{c}** not available: {reason}" for c, reason in results["unavailable"].items()]
    notes += [f"- {s['table']} / {s['contender']}: {s.get('status')}: {s.get('reason')}"
              for s in results["summary"] if s.get("status") == "failed"]  # fmt: skip
    notes += [f"- {s['table']} / {s['contender']}: the cleaning gate blocked the table; run with check.allow "
              f"{s['allowed']}" for s in results["summary"] if s.get("allowed")]  # fmt: skip
    notes += [f"- {r['table']} seed {r['seed']} / {r['contender']}: train.time_budget skipped "
              f"{', '.join(r['notes']['skipped'])}" for r in results["runs"] if r["notes"].get("skipped")]  # fmt: skip
    if notes:
        lines += ["## Notes", "", *notes, ""]
    return "\n".join(lines)


def bar_lines(group: str, rows: list[dict[str, Any]], cells: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Issue #16's two bars per table: auto at least LightGBM's default, and the share of the MLP's gap to
    LightGBM (the MLP before #16, forgeml-mlp-b0675d2, against today's) that the new defaults closed."""

    def mean(table: str, contender: str) -> float | None:
        cell = cells.get((table, contender))
        return None if cell is None or cell.get("metric") is None else float(cell["metric"])

    lines = [f"### {group.capitalize()}: the bars (auto >= LightGBM; the MLP closes half its gap)", "",
             "| table | LightGBM | auto | auto >= LightGBM | MLP before | MLP now | gap before | gap now | "
             "share closed |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for t in rows:
        lightgbm, auto = mean(t["name"], "lightgbm"), mean(t["name"], "forgeml-auto")
        before, now = mean(t["name"], "forgeml-mlp-b0675d2"), mean(t["name"], "forgeml-mlp")
        if lightgbm is None:
            continue
        meets = "n/a" if auto is None else ("yes" if auto >= lightgbm else f"**no** ({auto - lightgbm:+.4f})")
        if before is None or now is None:
            gap = ["n/a"] * 5
        else:
            was, left = lightgbm - before, lightgbm - now
            share = "no gap before" if was <= 0 else f"{(was - left) / was:.0%}"
            gap = [f"{before:.4f}", f"{now:.4f}", f"{was:+.4f}", f"{left:+.4f}", share]
        auto_text = "n/a" if auto is None else f"{auto:.4f}"
        lines.append(f"| {t['name']} | {lightgbm:.4f} | {auto_text} | {meets} | " + " | ".join(gap) + " |")
    return [*lines, ""]


def cell_text(cell: dict[str, Any] | None, measure: str, digits: int) -> str:
    if cell is None or cell.get(measure) is None:
        return "n/a" if cell is None or cell.get("status") != "failed" else "failed"
    text = fmt(cell[measure], cell[f"{measure}_sd"], digits)
    return text if cell["runs"] == cell["seeds"] else f"{text} ({cell['runs']}/{cell['seeds']} seeds)"


def time_text(cell: dict[str, Any] | None) -> str:
    if cell is None or cell.get("fit_s") is None:
        return "n/a"
    return f"{cell['fit_s']:.2f} / {cell['predict_s']:.3f}"


def write_results(results: dict[str, Any], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    output.with_suffix(".md").write_text(markdown(results))


# -------------------------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", default=None, choices=[*GROUPS, "all"],
                        help="which tables (default all; tuning with --quick)")  # fmt: skip
    parser.add_argument("--tables", default="", help="comma-separated table names (overrides --group)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help=f"comma-separated, from {', '.join(CONTENDERS)}"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 seed, the two smallest selected tables (of the tuning group by default)",
    )
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv"], help="files forgeml reads")
    parser.add_argument("--autogluon-python", default=os.environ.get("FORGEML_AUTOGLUON_PYTHON"),
                        help="python of a venv with autogluon.tabular (env FORGEML_AUTOGLUON_PYTHON)")  # fmt: skip
    parser.add_argument("--autogluon-time-limit", type=float, default=300.0,
                        help="AutoGluon's fit time_limit in seconds, 0 for none (default 300)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS / "tabular_quality",
                        help="writes OUTPUT.md and OUTPUT.json (default benchmarks/results/tabular_quality)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for every contender (OpenMP/BLAS env, forgeml train.threads); "
                             "0 keeps each library's default (default 0)")  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="keep forgeml's log messages")
    parser.add_argument("--merge", nargs="+", type=Path, default=[], metavar="JSON",
                        help="run nothing: join these result files (e.g. AutoGluon's run from its own venv, "
                             "or halves run in parallel) into OUTPUT.md/.json")  # fmt: skip
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help="a forgeml contender NAME whose config has the JSON object merged in "
                             "(repeatable; added to the contenders)")  # fmt: skip
    args = parser.parse_args(argv)
    for text in args.variant:
        name, _, body = text.partition("=")
        try:
            VARIANTS[name.strip()] = json.loads(body)
        except json.JSONDecodeError as error:
            parser.error(f"--variant {name}: not a JSON object: {error}")
    args.output = args.output.with_suffix("")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    return args


def merge(paths: list[Path], output: Path) -> dict[str, Any]:
    """One report from several result files: their runs, tables and contenders joined (later files win)."""
    loaded = [json.loads(path.read_text()) for path in paths]
    records = {(r["table"], r["seed"], r["contender"]): Record(**r) for result in loaded for r in result["runs"]}
    manifest = {t["name"]: t for result in loaded for t in result["tables"]}
    contenders = list(dict.fromkeys(c for result in loaded for c in result["settings"]["contenders"]))
    unavailable = {k: v for result in loaded for k, v in result["unavailable"].items()}
    order = {name: index for index, name in enumerate(t.name for t in select("all"))}
    # each table in the group it had when it was scored (a scored reporting table later moves to tuning)
    tables = [replace(t, group=manifest[t.name]["group"]) for t in select("all", list(manifest))]
    tables.sort(key=lambda t: order[t.name])
    args = argparse.Namespace(**{**loaded[0]["settings"], "autogluon_time_limit": None, "format": "parquet"})
    args.seeds = max(result["settings"]["seeds"] for result in loaded)
    args.threads = loaded[0]["settings"]["threads"] if isinstance(loaded[0]["settings"]["threads"], int) else 0
    results = assemble(args, tables, contenders, [manifest[t.name] for t in tables], list(records.values()),
                       {k: v for k, v in unavailable.items() if not any(r.contender == k for r in records.values() if r.status == "ok")})  # fmt: skip
    results["settings"]["merged_from"] = [str(path) for path in paths]
    write_results(results, output)
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.merge:
        results = merge(args.merge, args.output)
        print(markdown(results))
        print(f"wrote {args.output.with_suffix('.md')} and .json from {len(args.merge)} files")
        return
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    contenders += [name.partition("=")[0].strip() for name in args.variant]
    contenders = list(dict.fromkeys(contenders))  # a variant also named in --contenders runs once
    unknown = [c for c in contenders if c not in CONTENDERS and c not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown contender(s) {', '.join(unknown)}; known: {', '.join(CONTENDERS)}")
    if args.group is None:  # a smoke run never touches the reporting tables unless asked to
        args.group = "tuning" if args.quick else "all"
    tables = select(args.group, [t.strip() for t in args.tables.split(",") if t.strip()])
    if not tables:  # every reporting group is moved to tuning once scored, until the next is chosen
        raise SystemExit(f"--group {args.group} has no tables now; choose them in benchmarks/tabular_data.py")
    if args.threads:  # before lightgbm, sklearn and torch are imported (they are, lazily, per contender)
        for variable in THREAD_VARIABLES:
            os.environ[variable] = str(args.threads)
    if args.quick:
        args.seeds = 1
        tables = sorted(tables, key=lambda t: t.rows)[:2]
    logging.basicConfig(level=logging.WARNING)
    if not args.verbose:
        logging.getLogger("forgeml").setLevel(logging.ERROR)
    print(
        f"tables: {', '.join(t.name for t in tables)}; seeds: {args.seeds}; contenders: {', '.join(contenders)}"
    )
    started = time.perf_counter()
    results = run_suite(args, tables, contenders)
    print(markdown(results))
    print(f"wrote {args.output.with_suffix('.md')} and .json in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
