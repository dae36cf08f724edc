"""The try-it page of a model trained on image files, in headless Chromium: a chosen or dropped photo
is posted as it is to /v1/predict/image and the top classes come back with their probabilities."""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import pytest

import forgeml
from conftest import CHROMIUM_MISSING, launch_chromium, start_server, stop_server

sys.path.insert(0, str(Path(__file__).parents[1] / "images"))
from image_fixtures import make_shapes, run_shapes, shape_image

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    if CHROMIUM_MISSING:
        pytest.skip("chromium is not installed")
    root = tmp_path_factory.mktemp("page")
    photos = make_shapes(root / "photos", 10)
    run, _ = run_shapes(
        root, photos, "shapes_page", train={"epochs": 2, "batch_size": 8}, evaluate={"bootstrap": 0}
    )
    process, base = start_server(run.path / "bundle", log=root / "server.log")
    yield run.path / "bundle", base
    assert stop_server(process) == 0


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser.new_page()
        browser.close()


def _ranked(page) -> list[tuple[str, float]]:
    rows = page.eval_on_selector_all(
        "#probabilities tr", "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])"
    )
    return [(label, float(value.rstrip("%"))) for label, value in rows]


def test_a_chosen_photo_shows_the_top_classes(served, page, tmp_path: Path) -> None:
    bundle, base = served
    photo = tmp_path / "photo.jpg"
    shape_image("triangle", 77, size=(120, 90)).save(
        photo, quality=90
    )  # larger than the model: the server resizes
    expected = forgeml.load(bundle).predict(tmp_path)  # the Predictor on the same file, decoded the same way
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.url) if request.method == "POST" else None)
    page.goto(base + "/")
    page.set_input_files("#image-file", str(photo))  # the page predicts as soon as a photo is chosen
    page.wait_for_selector("#result .prediction")
    assert posted == [base + "/v1/predict/image"]
    assert page.is_visible("#photo") and not page.is_visible("#preview")
    said = page.inner_text("#result .prediction")
    assert said == expected["prediction"][0]
    ranked = _ranked(page)
    assert [label for label, _ in ranked][0] == said and len(ranked) == 3
    assert [value for _, value in ranked] == sorted((value for _, value in ranked), reverse=True)
    for label, value in ranked:
        assert value == pytest.approx(100 * expected[f"probability_{label}"][0], abs=0.051)


def test_a_dropped_photo_and_a_file_that_is_not_an_image(served, page, tmp_path: Path) -> None:
    bundle, base = served
    buffer = io.BytesIO()
    shape_image("circle", 12).save(buffer, format="PNG")
    (tmp_path / "drop.png").write_bytes(buffer.getvalue())
    expected = forgeml.load(bundle).predict(tmp_path)["prediction"][0]
    page.goto(base + "/")
    drop = """([name, data, type]) => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer(); transfer.items.add(new File([bytes], name, {type}));
        document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));
    }"""
    page.evaluate(drop, ["drop.png", base64.b64encode(buffer.getvalue()).decode(), "image/png"])
    page.wait_for_selector("#result .prediction")
    assert page.inner_text("#result .prediction") == expected
    page.evaluate(drop, ["notes.png", base64.b64encode(b"just some text").decode(), "image/png"])
    page.wait_for_selector("#result .error")
    message = page.inner_text("#result .error")
    assert "not" in message and "image" in message  # the server's 422, shown as it said it
    assert page.locator("#probabilities").count() == 0
