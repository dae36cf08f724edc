"""The try-it page in headless Chromium, and `forgeml verify` parity, on breast-cancer and digits bundles."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import forgeml
from conftest import CHROMIUM_MISSING, CliRun, launch_chromium
from forgeml.config import load_config
from forgeml.deploy.verify import free_port, wait_ready

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _bundle(example: str, folder: Path) -> Path:
    config = load_config(ROOT / "examples" / f"{example}.yaml", [f"output_dir={folder}", "train.epochs=5"])
    run = forgeml.train(config)
    forgeml.api.export(run)
    return run.bundle_path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, digits_run: CliRun):
    folder = tmp_path_factory.mktemp("page")
    # digits: the quickstart's run, shared with tests/test_examples.py (no second digits training)
    bundles = {"breast_cancer_mlp": _bundle("breast_cancer_mlp", folder), "digits_cnn": digits_run.bundle}
    servers = {}
    for example, bundle in bundles.items():
        port = free_port()
        log = (folder / f"{example}.log").open("w+")
        process = subprocess.Popen(
            [sys.executable, "-m", "forgeml", "serve", str(bundle), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        servers[example] = (bundle, f"http://127.0.0.1:{port}", process, log)
    for _, base, process, log in servers.values():
        wait_ready(base, process, log=log)
    yield {name: (bundle, base) for name, (bundle, base, _, _) in servers.items()}
    for _, _, process, _ in servers.values():
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM_MISSING:
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def test_form_predicts_breast_cancer(served, browser) -> None:
    _, base = served["breast_cancer_mlp"]
    page = browser.new_page()
    page.goto(base + "/")
    fields = page.locator("#fields input")
    assert fields.count() == 30
    page.fill("input[name='mean radius']", "20.5")
    page.click("#submit")
    page.wait_for_selector("#result .prediction")
    assert page.inner_text("#result .prediction") in ("malignant", "benign")
    assert page.locator("#probabilities tr").count() == 2
    page.close()


def test_png_upload_predicts_the_digit(served, browser, tmp_path: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    bundle, base = served["digits_cnn"]
    digits = load_digits()
    predictor = forgeml.load(bundle)
    predicted = predictor.predict(digits.images[:200].astype(np.float32))["prediction"].to_numpy()
    index = int(np.flatnonzero(predicted == digits.target[:200])[0])  # one the model gets right
    pixels = np.round(digits.images[index] / 16 * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(tmp_path / "digit.png")
    page = browser.new_page()
    page.goto(base + "/")
    page.set_input_files("#image-file", str(tmp_path / "digit.png"))
    page.wait_for_function("document.getElementById('image-status').textContent.includes('loaded')")
    page.click("#submit")
    page.wait_for_selector("#result .prediction")
    assert page.inner_text("#result .prediction") == str(digits.target[index])
    page.close()


@pytest.mark.parametrize(
    ("example", "data", "own_server"),
    [("breast_cancer_mlp", "sklearn:breast_cancer", False), ("digits_cnn", "sklearn:digits", True)],
)
def test_verify_reports_parity(served, example: str, data: str, own_server: bool) -> None:
    bundle, base = served[example]
    args = [sys.executable, "-m", "forgeml", "verify", str(bundle), "--data", data]
    args += ["--rows", "400"] if own_server else ["--url", base]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "OK:" in result.stdout and "largest difference" in result.stdout
    report = forgeml.api.verify(bundle, data=data, url=base, rows=300)
    assert report.max_difference <= 1e-5
