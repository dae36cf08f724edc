"""Issue #7's acceptance on the two examples, fixed seeds, CPU, one thread.

digits CNN and breast-cancer MLP: int8 cuts model.onnx >= 3.5x with a drop <= 1 point; 50%
structured pruning + fine-tuning cuts parameters >= 40% with a drop <= 1 point;
a distilled student with <= 1/4 of the parameters stays within 2 points; --max-drop 0.01 never
recommends a variant whose measured drop exceeds 0.01. Every variant is a bundle that loads.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

import forgeml
from forgeml.compression import Compression
from forgeml.config import load_config

EXAMPLES = Path(__file__).parents[2] / "examples"


def _compressed(tmp_path: Path, example: str, **options: object) -> Compression:
    config = load_config(EXAMPLES / f"{example}.yaml", [f"output_dir={tmp_path}", "train.threads=1"])
    run = forgeml.train(config, console=Console(file=io.StringIO()))
    return forgeml.compress(run, prune=0.5, quantize="int8", **options)


def _check_common(result: Compression) -> None:
    base = result.variant("baseline")
    pruned, int8, student = result.variant("prune"), result.variant("int8"), result.variant("distill")
    assert base.model_bytes / int8.model_bytes >= 3.5 and int8.drop <= 0.01, (base, int8)
    assert pruned.parameters <= 0.6 * base.parameters and pruned.drop <= 0.01, pruned
    assert student.parameters <= base.parameters / 4 and student.drop <= 0.02, student
    for variant in result.variants:  # each is a normal bundle: it loads, verifies and predicts
        assert variant.path.parent == result.folder and variant.engine == "onnxruntime"
        forgeml.load(variant.path)
    summary = json.loads(result.summary_path.read_text())
    assert [row["name"] for row in summary["variants"]][0] == "baseline"


def _check_budget(result: Compression) -> None:
    # the budget: never a variant that drops more than 0.01, and the smallest of those that do not
    assert result.recommended is not None and result.recommended.drop <= 0.01
    within = [variant for variant in result.variants if variant.drop <= 0.01]
    assert result.recommended.model_bytes == min(variant.model_bytes for variant in within)
    choice = json.loads((result.folder / "recommended.json").read_text())
    assert choice["name"] == result.recommended.name and choice["metric"]["drop"] <= 0.01
    assert {variant.name for variant in result.variants} >= {"prune+distill", "prune+distill+int8"}


@pytest.mark.slow
def test_digits_cnn_meets_the_compression_budget(tmp_path: Path) -> None:
    result = _compressed(tmp_path, "digits_cnn", distill=EXAMPLES / "digits_cnn_student.yaml")
    _check_common(result)


@pytest.mark.slow
def test_breast_cancer_mlp_meets_the_compression_budget(tmp_path: Path) -> None:
    result = _compressed(tmp_path, "breast_cancer_mlp", distill=0.2, max_drop=0.01)
    _check_common(result)
    _check_budget(result)  # --max-drop on real variants, the chain included (here: the cheaper model)
