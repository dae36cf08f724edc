"""The codec process (issue 18 item 2): large bodies are decoded, and large answers encoded, in a
child process forked at start, so the server's event loop keeps its GIL. Its answers and errors
are those of the in-process decoder; a child that dies is replaced; it never outlives the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from test_overload import (  # the in-process server and raw HTTP helpers
    ROW,
    post,
    serving,
    small_bundle,  # noqa: F401 (the session fixture, trained once for these files)
)

from conftest import start_server
from forgeml.bundle.predictor import Predictor
from forgeml.deploy.server.codec import forks_safely
from forgeml.deploy.server.predict_route import OFF_LOOP_BODY_BYTES

ROWS = 600  # ~45 kB of JSON: past OFF_LOOP_BODY_BYTES, so decoded by the codec


def rows_body(rows: list[dict]) -> bytes:
    body = json.dumps({"rows": rows}).encode()
    assert len(body) > OFF_LOOP_BODY_BYTES
    return body


def many_rows() -> list[dict]:
    return [{**ROW, "age": 20.0 + index % 50} for index in range(ROWS)]


def codec_children() -> list[psutil.Process]:
    return psutil.Process().children()


def without_id(answer: dict) -> dict:
    return {key: value for key, value in answer.items() if key != "request_id"}


def test_the_codec_process_answers_and_refuses_as_the_server_itself_does(small_bundle: Path) -> None:  # noqa: F811
    rows = many_rows()
    bad_value = [*rows[:417], {**ROW, "age": "forty"}, *rows[418:]]
    url = [*rows[:5], {**ROW, "city": "http://example.com/x"}, *rows[6:]]
    answers = {}
    for codec in ("process", "thread"):
        with serving(small_bundle, codec=codec) as served:
            assert served.handler.codec.in_process == (codec == "process")
            answers[codec] = [post(served.port, rows_body(body)) for body in (rows, bad_value, url)]
    good, bad, refused = answers["process"]
    assert good.status == 200
    expected = Predictor.from_bundle(small_bundle).predict(rows)["prediction"].tolist()
    assert [row["prediction"] for row in good.json()["predictions"]] == expected
    assert bad.status == 422
    assert (bad.json()["error"]["field"], bad.json()["error"]["row"]) == ("rows[417].age", 417)
    assert (refused.status, refused.json()["error"]["code"]) == (400, "url_not_allowed")
    for in_process, in_thread in zip(answers["process"], answers["thread"], strict=True):
        assert in_process.status == in_thread.status
        if in_process.status == 200:
            assert without_id(in_process.json()) == without_id(in_thread.json())
        else:
            process_error, thread_error = in_process.json()["error"], in_thread.json()["error"]
            assert without_id(process_error) == without_id(thread_error)


def test_a_killed_codec_process_is_replaced_and_the_next_request_served(small_bundle: Path) -> None:  # noqa: F811
    before = {child.pid for child in codec_children()}
    with serving(small_bundle) as served:
        codec = [child for child in codec_children() if child.pid not in before]
        assert len(codec) == 1, codec  # one child, forked at start
        os.kill(codec[0].pid, signal.SIGKILL)
        codec[0].wait(timeout=10)
        crashed = post(served.port, rows_body(many_rows()))
        served_again = post(served.port, rows_body(many_rows()))
        replacement = [child for child in codec_children() if child.pid not in before]
    assert crashed.status == 503 and crashed.headers["retry-after"] == "1"
    assert crashed.json()["error"]["code"] == "codec_restarted"
    assert served_again.status == 200 and len(served_again.json()["predictions"]) == ROWS
    assert [child.pid for child in replacement] != [codec[0].pid] and len(replacement) == 1


@pytest.mark.slow
def test_the_codec_process_does_not_outlive_a_killed_server(small_bundle: Path, tmp_path: Path) -> None:  # noqa: F811
    process, base = start_server(small_bundle, log=tmp_path / "serve.log")
    try:
        children = psutil.Process(process.pid).children()
        assert len(children) == 1, children
    finally:
        process.kill()  # SIGKILL: no drain, no shutdown of the pool
        process.wait(timeout=30)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [child.pid for child in alive]


@pytest.mark.parametrize(
    ("platform", "mode", "forks"),
    [
        ("linux", "auto", True),
        ("darwin", "auto", False),  # fork exists there, but is unsafe after system frameworks ran
        ("darwin", "process", True),  # asked for explicitly
        ("linux", "thread", False),
    ],
)
def test_auto_forks_the_codec_on_linux_only(monkeypatch, platform: str, mode: str, forks: bool) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    assert forks_safely(mode) is forks


STUCK_SERVER = """
import asyncio, os, threading
from forgeml.deploy.server.codec import Codec

never = threading.Event()
codec = Codec({"stuck": lambda body: never.wait(), "pid": os.getpid}, "process")
codec.start()

async def main():
    print(await codec.call("pid"), flush=True)
    # Three calls of 300 kB each: the first runs (forever) in the child, the others fill the pipe
    # (64 kB) that the child no longer reads. The server answers them all 504 and moves on.
    calls = [asyncio.ensure_future(codec.call("stuck", b"x" * 300_000)) for _ in range(3)]
    await asyncio.sleep(0.5)
    codec.stop()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    print(sorted({type(outcome).__name__ for outcome in outcomes}), flush=True)

asyncio.run(main())
print("stopped", flush=True)
"""


def test_a_server_stopped_while_its_codec_is_stuck_mid_call_still_exits(tmp_path: Path) -> None:
    """A stopped server whose codec child is stuck in a call (and whose pipe to it is full) exits at
    once: the pool's manager thread and the queue's feeder thread would otherwise be joined at exit,
    forever (a CI run hung so)."""
    script = tmp_path / "stuck_server.py"
    script.write_text(STUCK_SERVER)
    finished = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    child, outcomes, last = finished.stdout.splitlines()
    # the running call and the one in the pipe failed; the one still waiting was cancelled
    assert (outcomes, last) == ("['CancelledError', 'CodecCrashed']", "stopped"), finished.stdout
    assert not psutil.pid_exists(int(child))  # the stuck child was killed, not left behind
