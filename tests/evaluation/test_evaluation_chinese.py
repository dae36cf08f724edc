"""Chinese text end to end (issue #23): a Chinese BERT by local folder trains, explains, exports and
serves; the card shows the texts and token attributions as HTML, in reading order, and Chromium
draws the Chinese characters with a CJK font (no boxes) on a machine that has none installed."""

from __future__ import annotations

import html
import io
import json
import re
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from test_evaluation_report_browser import CARD_ORDER

import forgeml
from conftest import launch_chromium, needs_chromium, write_config
from forgeml.config import ServeConfig, load_config
from forgeml.evaluation import Evaluation
from forgeml.evaluation.explain import attributions
from forgeml.training.run import PredictorRun as Run

sys.path.insert(0, str(Path(__file__).parents[1] / "text"))
from chinese_fixtures import make_tiny_chinese_bert, sample

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def chinese(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Evaluation, list[str]]:
    folder = tmp_path_factory.mktemp("zh")
    table = sample(200, seed=1)
    table["label"] = table["label"].map({"pos": "好评", "neg": "差评"})  # Chinese labels in the plots too
    table.to_csv(folder / "reviews.csv", index=False)
    bert = make_tiny_chinese_bert(folder / "bert", list(table["review"]))
    config = load_config(
        write_config(
            folder / "zh.yaml",
            str(folder / "reviews.csv"),
            output_dir=folder / "runs",
            data={"target": "label"},
            features={"text_columns": ["review"], "text": {"pretrained": str(bert), "max_length": 48}},
            model={"type": "pretrained", "hidden": [16]},
            train={"epochs": 1, "threads": 1, "batch_size": 32},
            evaluate={"bootstrap": 20, "permutation_repeats": 0},
        )  # fmt: skip
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run, evaluation = forgeml.run(config, console=Console(file=io.StringIO()))
    return run, evaluation, [str(warning.message) for warning in caught]


@pytest.mark.slow
def test_chinese_card_shows_texts_and_token_attributions_as_html(
    chinese: tuple[Run, Evaluation, list[str]],
) -> None:
    run, evaluation, caught = chinese
    page = evaluation.report_path.read_text(encoding="utf-8")
    assert not [message for message in caught if "Glyph" in message]  # the plots found a CJK font
    assert "Most confidently wrong texts" in page and evaluation.wrong_texts
    assert html.escape(evaluation.wrong_texts[0].text, quote=False) in page  # the text itself, selectable
    attributions = evaluation.attributions
    assert attributions is not None and attributions.text_method.startswith(
        "captum.attr.LayerIntegratedGradients"
    )
    assert len(attributions.texts) == 8
    first = attributions.texts[0]
    reviews = set(pd.read_csv(run.path.parents[1] / "reviews.csv")["review"])
    joined = ["".join(piece for piece, _ in text.pieces) for text in attributions.texts]
    assert all(text in reviews for text in joined if not text.endswith("…"))  # the spans tile the text
    tokens = [piece for piece, weight in first.pieces if weight is not None]
    assert all(len(token) == 1 and HAN.match(token) or not HAN.search(token) for token in tokens)
    assert any(weight != 0 for _, weight in first.pieces if weight is not None)
    assert page.count('<span class="tok"') >= sum(len(t.pieces) for t in attributions.texts) // 2
    document = json.loads(evaluation.metrics_path.read_text(encoding="utf-8"))
    assert document["integrated_gradients"]["texts"][0]["pieces"][0][0] == first.pieces[0][0]
    order = re.findall(r'<section><h2 id="([a-z-]+)">', page)
    assert [name for name in order if name in CARD_ORDER] == CARD_ORDER
    assert re.search(r'<h2 id="config">Config</h2><details><summary>', page)
    assert "@font-face" in page and "data:font/woff;base64," in page


@pytest.mark.slow
def test_the_chinese_bundle_serves_chinese_text(chinese: tuple[Run, Evaluation, list[str]]) -> None:
    from fastapi.testclient import TestClient

    from forgeml.deploy.server.app import create_app

    run, _, _ = chinese
    rows = [{"review": "房间很干净，服务很好，下次还来"}, {"review": "太差了，再也不会住了"}]
    with TestClient(create_app(run.path / "bundle", ServeConfig())) as client:
        answer = client.post("/v1/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [set(p["probabilities"]) for p in predictions] == [{"好评", "差评"}] * 2


@pytest.mark.slow
@needs_chromium
def test_chromium_draws_the_chinese_texts_with_a_cjk_font(
    chinese: tuple[Run, Evaluation, list[str]],
) -> None:
    """Per text node, the fonts Chromium used (DevTools CSS.getPlatformFontsForNode): every Han
    character is drawn by a CJK font, so none is a missing-glyph box from DejaVu Sans."""
    import playwright.sync_api as playwright

    _, evaluation, _ = chinese
    with playwright.sync_playwright() as driver:
        browser = launch_chromium(driver)
        try:
            page = browser.new_page()
            page.goto(evaluation.report_path.resolve().as_uri(), wait_until="load")
            devtools = page.context.new_cdp_session(page)
            devtools.send("DOM.enable")
            devtools.send("CSS.enable")
            root = devtools.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
            selector = "table.texts td:last-child, .attributed .tok"
            nodes = devtools.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector})["nodeIds"]
            drawn = []
            for node in nodes[:60]:
                markup = devtools.send("DOM.getOuterHTML", {"nodeId": node})["outerHTML"]
                text = html.unescape(re.sub("<[^>]+>", "", markup))
                fonts = devtools.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
                drawn.append((text, fonts))
        finally:
            browser.close()
    han_nodes = [(text, fonts) for text, fonts in drawn if HAN.search(text)]
    assert len(han_nodes) >= 20
    for text, fonts in han_nodes:
        by_cjk = sum(font["glyphCount"] for font in fonts if "CJK" in font["familyName"])
        assert by_cjk >= len(HAN.findall(text)), (text, fonts)


@pytest.mark.slow
def test_without_captum_the_text_explanation_says_what_to_install(
    chinese: tuple[Run, Evaluation, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, _, _ = chinese
    for name in ["captum", *(name for name in sys.modules if name.startswith("captum."))]:
        monkeypatch.setitem(sys.modules, name, None)
    found = attributions(run.model, run.pipeline, run.splits.test, seed=0)
    assert found is not None and found.not_computed == (
        "Explaining text predictions with token attributions needs captum, which is not installed: "
        'pip install "forgeml[explain]"'
    )
