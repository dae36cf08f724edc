"""The model card of a text model lists the test texts it got most confidently wrong."""

import base64
import io
from pathlib import Path

import pytest
from rich.console import Console

import forgeml
from conftest import write_config
from forgeml.config import load_config

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
    assert "Most confidently wrong texts" in html
    start = html.index("Most confidently wrong texts")
    image = html[start:].split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    assert base64.b64decode(image).startswith(b"\x89PNG")
