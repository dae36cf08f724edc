"""Acceptance: the digits model card opens offline in headless Chromium with every plot rendered."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import launch_chromium, needs_chromium
from forgeml import api
from forgeml.config import load_config
from forgeml.evaluation import Evaluation, compare_runs, evaluate_run

EXAMPLES = Path(__file__).parents[2] / "examples"
# The card's sections in reading order, for every data kind (issue #23): how good, why, on what data,
# then the config, folded.
CARD_ORDER = [
    "summary",
    "metrics",
    "training-curves",
    "plots",
    "slices",
    "explanations",
    "data-report",
    "intended-use-and-limitations",
    "environment",
    "config",
]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    output = tmp_path_factory.mktemp("runs")
    config = load_config(
        EXAMPLES / "digits_cnn.yaml", [f"output_dir={output}", "train.epochs=3", "evaluate.bootstrap=200"]
    )
    run = api.train(config)
    return evaluate_run(run.path, run.model, run.pipeline, run.splits.test, run.splits.train.target, config)


@pytest.mark.slow
def test_digits_card_is_small_and_has_image_plots(digits: Evaluation) -> None:
    html = digits.report_path.read_text()
    assert digits.report_path.stat().st_size < 5 * 1024 * 1024
    for section in (
        "Summary",
        "Config",
        "Training curves",
        "Metrics",
        "Slices",
        "Explanations",
        "Environment",
    ):
        assert f">{section}</h2>" in html
    assert "Most confidently wrong" in html and "Saliency" in html
    order = re.findall(r'<section><h2 id="([a-z-]+)">', html)
    assert [name for name in order if name in CARD_ORDER] == CARD_ORDER
    assert '<h2 id="config">Config</h2><details><summary>' in html
    assert "http://" not in html and "https://" not in html
    assert digits.attributions is not None and digits.attributions.saliency is not None


@pytest.mark.slow
@needs_chromium  # CI installs chromium (.ci/run): there a missing browser fails, never skips
def test_card_renders_in_chromium_without_errors_or_network(digits: Evaluation) -> None:
    import playwright.sync_api as playwright

    url = digits.report_path.resolve().as_uri()
    requests: list[str] = []
    errors: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = launch_chromium(driver)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on(
                "console", lambda message: errors.append(message.text) if message.type == "error" else None
            )
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url, wait_until="load")
            sizes = page.eval_on_selector_all(
                "img", "images => images.map(i => [i.complete, i.naturalWidth])"
            )
            shots = [element.screenshot() for element in page.query_selector_all("img")]
            page.screenshot(full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert [request for request in requests if request != url and not request.startswith("data:")] == []
    assert len(sizes) >= 6
    assert all(complete and width > 0 for complete, width in sizes)
    for shot in shots:
        pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"), dtype=np.float64)
        assert pixels.var() > 0


@pytest.mark.slow
def test_compare_runs_shows_both(digits: Evaluation, tmp_path: Path) -> None:
    other = tmp_path / "digits_copy"
    shutil.copytree(digits.report_path.parent, other)
    page = compare_runs([digits.report_path.parent, other], tmp_path / "compare.html")
    html = page.read_text()
    assert "digits_cnn" in html and "digits_copy" in html
    assert html.count("<img") == 3  # the overlay and one curve per run
    assert "accuracy interval" in html
