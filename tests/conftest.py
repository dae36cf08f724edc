"""Shared fixtures: tiny synthetic tables (at most 200 rows) and configs that train in seconds on CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

EXAMPLES = Path(__file__).parents[1] / "examples"
# Debian's chromium, which .ci/run installs: under CI a missing browser fails the browser tests, elsewhere
# they skip. The flags keep it from reaching the network on its own (the offline tests count requests).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM_MISSING = not CHROMIUM.exists() and not os.environ.get("CI")
needs_chromium = pytest.mark.skipif(
    CHROMIUM_MISSING, reason="needs /usr/bin/chromium (apt-get install chromium)"
)


def launch_chromium(playwright):
    """A headless Debian chromium from a playwright ``sync_playwright()`` driver (never ``playwright install``)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def make_mixed_table(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """Numeric and categorical columns; the label depends on both, so a model must use each kind."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows).round(1)
    income = rng.normal(50_000, 15_000, rows).round(0)
    city = rng.choice(["paris", "lyon", "nice"], rows)
    plan = rng.choice(["free", "pro"], rows)
    score = (
        (age - 40) / 12
        + (income - 50_000) / 15_000
        + np.where(city == "paris", 1.5, -0.5)
        + np.where(plan == "pro", 1.0, -1.0)
    )
    churned = np.where(score + rng.normal(0, 0.3, rows) > 0, "yes", "no")
    return pd.DataFrame({"age": age, "income": income, "city": city, "plan": plan, "churned": churned})


def write_config(
    path: Path, source: str, *, name: str = "tiny", output_dir: Path | None = None, **sections: dict
) -> Path:
    """A YAML config for ``source``: a small MLP trained for a few epochs unless ``sections`` say otherwise."""
    config = {
        "name": name,
        "seed": 0,
        "output_dir": str(output_dir or path.parent / "runs"),
        "data": {"source": source, **sections.pop("data", {})},
        "model": sections.pop("model", {"type": "mlp", "hidden": [16]}),
        "train": {"epochs": 15, "batch_size": 16, "learning_rate": 0.01, **sections.pop("train", {})},
        **sections,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def mixed_table_config(folder: Path, **sections: dict) -> Path:
    """The mixed table as ``folder/customers.csv`` and a config predicting its ``churned`` column."""
    data = folder / "customers.csv"
    make_mixed_table().to_csv(data, index=False)
    return write_config(folder / "config.yaml", str(data), data={"target": "churned"}, **sections)


def forgeml(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "forgeml", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    make_mixed_table().to_csv(path, index=False)
    return path


@pytest.fixture
def tiny_config(tmp_path: Path, mixed_csv: Path) -> Path:
    return write_config(tmp_path / "config.yaml", str(mixed_csv), data={"target": "churned"})


@dataclass(frozen=True)
class CliRun:
    """A `forgeml run` in a fresh process: how it ended and the run folder it wrote."""

    result: subprocess.CompletedProcess[str]
    path: Path

    @property
    def bundle(self) -> Path:
        assert self.result.returncode == 0, self.result.stderr
        return self.path / "bundle"


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """The README quickstart, ``forgeml run examples/digits_cnn.yaml``, once per session.

    Training the CNN to its target is the longest single run in the suite (~45 s on 2 cores), and the
    quickstart test, the try-it page and `forgeml verify` all need a digits bundle: they share this
    one. Readers only: nothing may write into its folder.
    """
    folder = tmp_path_factory.mktemp("digits")
    result = forgeml("run", EXAMPLES / "digits_cnn.yaml", "--set", f"output_dir={folder}")
    return CliRun(result, folder / "digits_cnn")


def start_server(bundle: Path, *settings: str, log: Path) -> tuple[subprocess.Popen[str], str]:
    """`forgeml serve` on a free loopback port with `--set` settings, as a user runs it; returns once ready."""
    from forgeml.deploy.verify import free_port, wait_ready

    port = free_port()
    args = [sys.executable, "-m", "forgeml", "serve", str(bundle), "--port", str(port)]
    for setting in settings:
        args += ["--set", setting]
    handle = log.open("w+")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=handle, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, log=handle)
    except BaseException:
        process.terminate()  # a server that never became ready must not outlive the test (nor its workers)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        raise
    return process, base


def stop_server(process: subprocess.Popen[str]) -> int:
    """SIGTERM, as a supervisor sends it; the server's exit code once it has drained."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)
