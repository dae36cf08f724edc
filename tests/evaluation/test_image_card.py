"""The model card of an image classifier: thumbnails per class, the most confidently wrong test images
and integrated-gradient maps in colour, all inline PNGs; the card renders in Chromium."""

from __future__ import annotations

import base64
import io
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forgeml.evaluation import Evaluation
from forgeml.evaluation.image_examples import PER_CLASS, WRONG

sys.path.insert(0, str(Path(__file__).parents[1] / "images"))
from image_fixtures import make_shapes, run_shapes

from conftest import launch_chromium, needs_chromium

SIZE = 16
LABELS = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> tuple[Evaluation, str]:
    """3 shapes x 20 PNGs, 1 epoch: a weak model, so the test split has wrong predictions to show."""
    root = tmp_path_factory.mktemp("card")
    _, evaluation = run_shapes(
        root,
        make_shapes(root / "photos", 20),
        "shapes_card",
        size=SIZE,
        split={"test": 0.3},
        train={"epochs": 1, "batch_size": 16, "learning_rate": 0.005},
        evaluate={"bootstrap": 0},
    )
    return evaluation, evaluation.report_path.read_text(encoding="utf-8")


class _Page(HTMLParser):
    """The card's images, each with the classes of the figure and the div it sits in."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict[str, str]] = []
        self.images: list[tuple[dict[str, str], dict[str, str], dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "img":
            div = next((item for item in reversed(self.stack) if item["tag"] == "div"), {})
            figure = next((item for item in reversed(self.stack) if item["tag"] == "figure"), {})
            self.images.append((div, figure, values))
        elif tag in ("div", "figure"):
            self.stack.append({"tag": tag, **values})

    def handle_endtag(self, tag: str) -> None:
        if tag in ("div", "figure"):
            while self.stack and self.stack.pop()["tag"] != tag:
                pass


def _parsed(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _pixels(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def _truth_and_said(evaluation: Evaluation) -> tuple[np.ndarray, int]:
    matrix = np.array(evaluation.metrics.confusion_matrix)
    return matrix.sum(axis=1), int(matrix.sum() - np.trace(matrix))


def test_card_shows_thumbnails_per_class(card: tuple[Evaluation, str]) -> None:
    evaluation, html = card
    per_class, _ = _truth_and_said(evaluation)
    images = _parsed(html).images
    for index, label in enumerate(LABELS):
        thumbs = [img for div, _, img in images if div.get("data-class") == label]
        assert len(thumbs) == min(PER_CLASS, int(per_class[index])) > 0, label
        for img in thumbs:
            assert _pixels(img["src"]).shape == (SIZE, SIZE, 3)  # the model's own pixels, at its size


def test_card_shows_the_most_confidently_wrong_images(card: tuple[Evaluation, str]) -> None:
    evaluation, html = card
    _, wrong = _truth_and_said(evaluation)
    assert wrong > 0  # the fixture's 1-epoch model must leave some: else this test checks nothing
    shown = [
        (figure, img) for div, figure, img in _parsed(html).images if div.get("class") == "wrong-examples"
    ]
    assert len(shown) == min(WRONG, wrong)
    assert all("wrong" in figure["class"].split() for figure, _ in shown)
    assert evaluation.images is not None
    confidences = [item.probability for item in evaluation.images.wrong]
    assert confidences == sorted(confidences, reverse=True)
    for item in evaluation.images.wrong:
        assert item.truth != item.said
        assert f"{item.name}: true {item.truth}, said {item.said} ({item.probability:.0%})" in html
    assert 'alt="Most confidently wrong"' not in html  # the matplotlib grid is not drawn a second time


def test_card_draws_attribution_maps_in_colour(card: tuple[Evaluation, str]) -> None:
    evaluation, html = card
    pairs = [img for div, _, img in _parsed(html).images if div.get("class") == "pair"]
    assert evaluation.images is not None and len(evaluation.images.attributed) == 6
    assert len(pairs) == 2 * 6  # the image and its map
    for image, overlay in zip(pairs[::2], pairs[1::2], strict=True):
        assert overlay["alt"] == f"attribution map of {image['alt']}"
        colour = _pixels(overlay["src"]).astype(int)
        assert np.abs(colour[..., 0] - colour[..., 2]).max() > 60  # coloured, not a grey copy
        assert not np.array_equal(colour, _pixels(image["src"]).astype(int))
    first = evaluation.images.attributed[0].image
    assert first.wrong and first.name == evaluation.images.wrong[0].name  # the worst mistake explained first


@pytest.mark.slow
@needs_chromium
def test_image_card_renders_in_chromium(card: tuple[Evaluation, str]) -> None:
    import playwright.sync_api as playwright

    evaluation, _ = card
    errors: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = launch_chromium(driver)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(evaluation.report_path.resolve().as_uri(), wait_until="load")
            widths = page.eval_on_selector_all(
                "figure.thumb img", "images => images.map(i => [i.complete, i.naturalWidth, i.width])"
            )
        finally:
            browser.close()
    assert errors == []
    assert len(widths) >= 3 * PER_CLASS
    assert all(complete and natural == SIZE and shown == 96 for complete, natural, shown in widths)
