"""AutoGluon's ``medium_quality`` preset on one split: the worker that tabular_quality.py runs.

AutoGluon does not install beside forgeml's pins (constraints.txt pins pandas 3 and numpy 2.4;
autogluon.tabular needs pandas<2.4 and numpy<2.4), so it lives in its own virtual environment and
this script runs there, in a subprocess, importing nothing of forgeml and nothing of the harness::

    <autogluon venv>/bin/python benchmarks/tabular_autogluon.py JOB.json

JOB.json holds ``train`` (the train+validation rows, parquet), ``test`` (parquet), ``target``,
``task`` (binary|multiclass|regression), ``time_limit`` (seconds, or null), ``num_cpus`` ("auto" or a
count) and ``output``
(a folder). AutoGluon picks its own validation rows inside ``train``, like any contender given the
same file. The worker writes ``predictions.parquet`` (``prediction`` and, for classifiers, one
``probability_<label>`` column per class) and ``timing.json`` (fit and predict seconds, versions).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

PROBLEM_TYPES = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}
EVAL_METRICS = {"binary": "accuracy", "multiclass": "accuracy", "regression": "r2"}


def main(job_path: str) -> None:
    import pandas as pd
    from autogluon.tabular import TabularPredictor, __version__

    job = json.loads(Path(job_path).read_text())
    output = Path(job["output"])
    train = pd.read_parquet(job["train"])
    test = pd.read_parquet(job["test"]).drop(columns=[job["target"]])
    task = job["task"]
    predictor = TabularPredictor(
        label=job["target"],
        problem_type=PROBLEM_TYPES[task],
        eval_metric=EVAL_METRICS[task],
        path=str(output / "model"),
        verbosity=0,
    )
    start = time.perf_counter()
    predictor.fit(train, presets="medium_quality", time_limit=job["time_limit"], num_cpus=job["num_cpus"])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    if task == "regression":
        frame = pd.DataFrame({"prediction": predictor.predict(test).to_numpy()})
    else:
        probabilities = predictor.predict_proba(test)
        labels = list(probabilities.columns)
        frame = pd.DataFrame({"prediction": probabilities.to_numpy().argmax(axis=1)})
        frame["prediction"] = [labels[i] for i in frame["prediction"]]
        for label in labels:
            frame[f"probability_{label}"] = probabilities[label].to_numpy()
    predict_seconds = time.perf_counter() - start
    frame.to_parquet(output / "predictions.parquet")
    timing = {
        "fit_s": fit_seconds,
        "predict_s": predict_seconds,
        "autogluon": __version__,
        "models": len(predictor.model_names()),
        "best": predictor.model_best,
    }
    (output / "timing.json").write_text(json.dumps(timing))


if __name__ == "__main__":
    main(sys.argv[1])
