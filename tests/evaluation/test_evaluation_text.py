"""The model card of a text model lists the test texts it got most confidently wrong, as HTML, and
highlights the tokens of the first test texts by their attributions (English here; Chinese in
test_evaluation_chinese.py)."""

import io
import sys
from pathlib import Path

import pytest
from markupsafe import escape
from rich.console import Console

import forgeml
from conftest import write_config
from forgeml.config import load_config

sys.path.insert(0, str(Path(__file__).parents[1] / "text"))
from text_fixtures import NEGATIVE, POSITIVE

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.slow
def test_text_report_shows_the_most_confidently_wrong_texts(tmp_path: Path) -> None:
    config = load_config(
        write_config(
            tmp_path / "text.yaml",
            str(EXAMPLES / "data" / "reviews.csv"),
            data={"target": "label"},
            features={"text_columns": ["review"], "text": {"max_length": 32}},
            model={"type": "bag_of_embeddings"},
            train={"epochs": 3, "threads": 1},
            evaluate={"bootstrap": 0, "permutation_repeats": 0},
        )  # fmt: skip
    )
    run, evaluation = forgeml.run(config, console=Console(file=io.StringIO()))
    assert evaluation.metrics.values["accuracy"] < 1.0  # something is wrong, so the table has rows
    html = evaluation.report_path.read_text(encoding="utf-8")
    assert "Most confidently wrong texts" in html and '<table class="texts">' in html
    wrong = evaluation.wrong_texts[0]
    assert f"<td>{escape(wrong.text)}</td>" in html  # the text itself, not an image of it
    assert 'alt="Most confidently wrong texts"' not in html
    attributions = evaluation.attributions
    assert attributions is not None and len(attributions.texts) == 8
    words = {
        piece.lower() for text in attributions.texts for piece, weight in text.pieces if weight is not None
    }
    assert {"great", "terrible", "東", "京"} <= words  # tokens mapped back onto the words of the text
    agree = []  # a sentiment word pushes towards the class it stands for
    for text in attributions.texts:
        for piece, weight in text.pieces:
            if weight is not None and piece.lower() in set(POSITIVE) | set(NEGATIVE):
                agree.append((weight > 0) == ((piece.lower() in POSITIVE) == (text.said == "pos")))
    assert len(agree) >= 20 and sum(agree) >= 0.9 * len(agree)
    assert html.count('<span class="tok"') >= 40
