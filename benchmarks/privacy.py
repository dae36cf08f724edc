"""What differential privacy costs and buys: test accuracy and membership-inference AUC at ε = 1, 3, 8.

For each example config (examples/breast_cancer_mlp.yaml, examples/digits_cnn.yaml) and each seed,
trains the config unchanged (non-private) and with ``train.privacy: {epsilon: E}`` for E in 1, 3, 8
(DP-SGD through Opacus, δ auto, clipping norm 1, the RDP accountant), evaluates each on its test
split, and runs the membership audit (evaluate.privacy_audit): the loss-threshold attack (Yeom et
al. 2018) and the shadow-free likelihood-ratio attack, training rows against test rows.

The private runs use the same config as the non-private one: same network, optimizer, learning
rate, batch size and early stopping; the noise is solved for the config's ``train.epochs``, and ε
spent is what the accountant reports for the steps actually taken (early stopping can spend less).

    python benchmarks/privacy.py                     # 2 seeds, both examples (~15 min on 2 busy cores)
    python benchmarks/privacy.py --seeds 0 --examples breast_cancer_mlp

Writes benchmarks/results/privacy.json and prints the Markdown table that docs/privacy.md holds.
Medians over seeds; the figures are accuracies and AUCs, not timings, so machine load does not move
them (the seconds column does, and is only a rough guide: the machine was shared while it ran).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import time
from pathlib import Path

from forgeml import api
from forgeml.config import load_config

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLES = ("breast_cancer_mlp", "digits_cnn")
EPSILONS = (1.0, 3.0, 8.0)


def one_run(example: str, seed: int, epsilon: float | None, output: Path, extra: list[str]) -> dict:
    """Train and evaluate one setting (``extra``: more --set overrides); return accuracy, ε spent, the audit."""
    name = (
        f"{example}_s{seed}_"
        + ("plain" if epsilon is None else f"eps{epsilon:g}")
        + re.sub(r"[^A-Za-z0-9_.-]+", "-", "".join(extra))
    )[:100]
    overrides = [f"name={name}", f"output_dir={output}", f"seed={seed}", "evaluate.bootstrap=0",
                 "evaluate.permutation_repeats=0", "evaluate.privacy_audit=true"]  # fmt: skip
    if epsilon is not None:  # the twin is this script's own non-private run
        overrides += [f"train.privacy.epsilon={epsilon}", "train.privacy.compare=false"]
    overrides += extra
    config = load_config(ROOT / "examples" / f"{example}.yaml", overrides)
    started = time.perf_counter()
    run = api.train(config)
    seconds = time.perf_counter() - started
    return {"example": example, "seed": seed, "epsilon_target": epsilon, "run_dir": str(run.path),
            "epochs": len(run.result.history), "train_seconds": seconds} | audit_figures(run.path)  # fmt: skip


def audit_figures(run_dir: Path) -> dict:
    """Evaluate a run folder (metrics.json, the card) and read its privacy figures back."""
    audit = api.evaluate(run_dir).to_json()["privacy"]
    model = audit["models"][0]
    spent = audit["training"]
    return {
        "epsilon": None if spent is None else spent["epsilon"],
        "delta": None if spent is None else spent["delta"],
        "noise_multiplier": None if spent is None else spent["noise_multiplier"],
        "accuracy": model["value"],
        "loss_auc": model["loss_threshold"]["auc"],
        "loss_tpr": model["loss_threshold"]["tpr_at_1pct_fpr"],
        "lr_auc": model["likelihood_ratio"]["auc"],
        "lr_tpr": model["likelihood_ratio"]["tpr_at_1pct_fpr"],
        "members": model["members"],
        "non_members": model["non_members"],
    }


def table(rows: list[dict], epsilons: tuple[float, ...] = EPSILONS) -> str:
    """Markdown: one line per example and setting, medians over seeds."""
    lines = [
        "| data | model | ε target | ε spent | δ | noise σ | epochs run | test accuracy | loss-attack AUC | "
        "TPR @1% FPR | LR-attack AUC | TPR @1% FPR | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for example in dict.fromkeys(row["example"] for row in rows):
        for epsilon in (None, *epsilons):
            group = [row for row in rows if row["example"] == example and row["epsilon_target"] == epsilon]
            if not group:
                continue

            def median(key: str, group: list[dict] = group) -> float:
                return statistics.median(row[key] for row in group)

            private = epsilon is not None
            spent = (
                f"{median('epsilon'):.2f} | {median('delta'):.1e} | {median('noise_multiplier'):.2f}"
                if private
                else "∞ | — | —"
            )
            lines.append(
                f"| {example} | {'DP-SGD' if private else 'non-private'} | {epsilon if private else '—'} | "
                f"{spent} | {median('epochs'):g} | "
                f"{median('accuracy'):.3f} | {median('loss_auc'):.3f} | {median('loss_tpr'):.3f} | "
                f"{median('lr_auc'):.3f} | {median('lr_tpr'):.3f} | {median('train_seconds'):.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--examples", nargs="+", default=list(EXAMPLES), choices=EXAMPLES)
    parser.add_argument("--epsilons", type=float, nargs="+", default=list(EPSILONS))
    parser.add_argument("--set", nargs="*", default=[], help="more config overrides for every run, key=value")
    parser.add_argument(
        "--out",
        default="privacy.json",
        help="file name under benchmarks/results/ (--table: several, comma-separated)",
    )
    parser.add_argument(
        "--skip-plain", action="store_true", help="private runs only (another process runs it)"
    )
    parser.add_argument("--table", action="store_true", help="print the table of --out; train nothing")
    parser.add_argument("--reevaluate", action="store_true", help="evaluate the run folders of --out again")
    arguments = parser.parse_args()
    out = RESULTS / arguments.out
    if arguments.reevaluate:
        rows = [row | audit_figures(Path(row["run_dir"])) for row in json.loads(out.read_text())]
        out.write_text(json.dumps(rows, indent=2))
        print(table(rows, tuple(arguments.epsilons)))
        return
    if arguments.table:
        rows = [row for name in arguments.out.split(",") for row in json.loads((RESULTS / name).read_text())]
        print(table(rows, tuple(arguments.epsilons)))
        return
    logging.basicConfig(level=logging.WARNING)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    folder = RESULTS / "privacy_runs"  # kept: --reevaluate scores them again
    for example in arguments.examples:
        for seed in arguments.seeds:
            for epsilon in ([] if arguments.skip_plain else [None]) + arguments.epsilons:
                rows.append(one_run(example, seed, epsilon, folder, arguments.set))
                print(json.dumps(rows[-1]), flush=True)
                out.write_text(json.dumps(rows, indent=2))
    print(table(rows, tuple(arguments.epsilons)))


if __name__ == "__main__":
    main()
