"""Every benchmark in one command, each in its own process, in an order that shares one warm machine.

Run: .venv/bin/python benchmarks/run_all.py [--quick] [--only training_speed,inference]
``--quick`` runs each with small sizes to check that it works (its figures mean little); the full
run takes about 40 minutes on 2 cores. Each script prints its own table and writes
benchmarks/results/<name>.json; this one adds benchmarks/results/summary.json with the headline
ratios. Run nothing else on the machine meanwhile: every figure is a ratio measured within one
script's interleaved rounds, but a busy machine still widens their spread.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
# name -> (full-run arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "ceiling": ([], []),
    "training_speed": (["--repeats", "5"], ["--repeats", "1", "--epochs", "2", "--rows", "320"]),
    "training_overhead": (["--repeats", "5"], ["--repeats", "1", "--epochs", "1", "--rows", "640"]),
    "tabular_speed": ([], ["--quick"]),
    "scaling": ([], ["--quick"]),
    "inference": (["--rounds", "5"], ["--rounds", "1", "--seconds", "0.2"]),
    "serve_load": (["--rounds", "3"], ["--rounds", "1", "--seconds", "1"]),
    "compression": ([], ["--rounds", "1", "--calls", "5"]),
    "check_speed": ([], ["--rows", "100000"]),
    "text_throughput": ([], ["--texts", "200"]),
    "llm_throughput": ([], ["--new-tokens", "8", "--repeats", "1", "--train-steps", "2"]),
}


def headline() -> dict[str, object]:
    """The acceptance ratios, read back from the scripts' JSON files (absent ones are skipped)."""

    def read(name: str) -> dict | None:
        file = RESULTS / f"{name}.json"
        return json.loads(file.read_text()) if file.exists() else None

    summary: dict[str, object] = {}
    if training := read("training_speed"):
        contenders = training["contenders"]
        forgeml = contenders.get("forgeml", {}).get("images_per_second")
        for other in ("hand", "hand+malloc", "lightning"):
            if forgeml and other in contenders:
                summary[f"training: forgeml / {other}"] = forgeml / contenders[other]["images_per_second"]
        if "forgeml" in contenders:
            summary["training: forgeml fraction of fp32 peak"] = contenders["forgeml"]["fraction_of_peak"]
    if inference := read("inference"):
        for model, values in inference["microseconds_per_call"].items():
            summary[f"inference ({model}): Predictor / bare ORT batch throughput"] = values[
                "predictor_vs_bare_onnx_batch_throughput"
            ]
    if serving := read("serve_load"):
        small = serving.get("small_model", {})
        if "forgeml, 1 worker" in small:
            summary["serving: forgeml / bare throughput at 64 clients"] = small["forgeml, 1 worker"][
                "64:rps_ratio"
            ]
        heavy = serving.get("wide_cnn", {})
        if "wide CNN, batching on" in heavy:
            summary["serving (wide CNN): batching on / off at 64 clients"] = heavy["wide CNN, batching on"][
                "64:rps_ratio"
            ]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: check that each one runs")
    parser.add_argument("--only", help="comma-separated benchmark names")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    failed = []
    for name in names:
        full, quick = BENCHMARKS[name]
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)])
        print(f"--- {name}: exit {done.returncode}, {time.perf_counter() - started:.0f} s", flush=True)
        if done.returncode != 0:
            failed.append(name)
    RESULTS.mkdir(exist_ok=True)
    summary = headline()
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n=== headline ratios ===")
    for key, value in summary.items():
        print(f"{key:70} {value:.2f}")
    if failed:
        print(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
