"""Load test on loopback: forgeml's server (1 and 2 workers) vs a minimal hand-written FastAPI + ONNX Runtime app.

Closed-loop asyncio/httpx clients, a bounded number in flight. Reports single-request p50/p99, and
throughput and p99 at 16 and 64 concurrent clients.
Run: .venv/bin/python benchmarks/serve_load.py BUNDLE   (a bundle with model.onnx, e.g. breast-cancer)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from forgeml.deploy.verify import free_port, wait_ready

MINIMAL = """
import json, os, numpy as np, onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.responses import Response
manifest = json.load(open(os.path.join(os.environ["BUNDLE"], "bundle.json")))
columns = manifest["onnx"]["inputs"][0]["columns"]
session = ort.InferenceSession(os.path.join(os.environ["BUNDLE"], "model.onnx"))
app = FastAPI()
@app.post("/v1/predict")
async def predict(request: Request):
    rows = json.loads(await request.body())["rows"]
    x = np.array([[row[c] for c in columns] for row in rows], dtype=np.float64)
    out = session.run(None, {"numeric": x})[0]
    return Response(json.dumps({"predictions": out.tolist()}), media_type="application/json")
"""


async def load(base: str, body: bytes, clients: int, seconds: float) -> tuple[float, float, float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = await client.post(
                    "/v1/predict", content=body, headers={"content-type": "application/json"}
                )
                assert response.status_code == 200, response.text
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    values = np.array(latencies) * 1000
    return len(values) / elapsed, float(np.percentile(values, 50)), float(np.percentile(values, 99))


def launch(command: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, None) if "forgeml" in command else _wait_minimal(base)
    return process, base


def _wait_minimal(base: str) -> None:
    for _ in range(600):
        try:
            httpx.get(base + "/docs", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)


def main() -> None:
    import os

    bundle = Path(sys.argv[1])
    manifest = json.loads((bundle / "bundle.json").read_text())
    columns = [c["name"] for c in manifest["input_schema"]["columns"]]
    body = json.dumps({"rows": [{c: 1.0 + i for i, c in enumerate(columns)}]}).encode()
    folder = Path(tempfile.mkdtemp())
    (folder / "minimal_app.py").write_text(MINIMAL)
    python = sys.executable
    setups = {
        "forgeml, 1 worker": ([python, "-m", "forgeml", "serve", str(bundle)], None),
        "forgeml, 2 workers": ([python, "-m", "forgeml", "serve", str(bundle), "--workers", "2"], None),
        "minimal FastAPI+ORT": (
            [python, "-m", "uvicorn", "--app-dir", str(folder), "minimal_app:app", "--log-level", "warning"],
            {**os.environ, "BUNDLE": str(bundle)},
        ),
    }
    print(
        f"{'server':22} {'1 client p50/p99 ms':>20} {'16: req/s':>10} {'p99 ms':>7} {'64: req/s':>10} {'p99 ms':>7}"
    )
    for name, (command, env) in setups.items():
        process, base = launch(command, env)
        try:
            asyncio.run(load(base, body, 4, 1.0))  # warm-up
            _, p50, p99 = asyncio.run(load(base, body, 1, 4.0))
            t16, _, q16 = asyncio.run(load(base, body, 16, 6.0))
            t64, _, q64 = asyncio.run(load(base, body, 64, 6.0))
            print(
                f"{name:22} {p50:9.2f} / {p99:7.2f} {t16:10.0f} {q16:7.1f} {t64:10.0f} {q64:7.1f}", flush=True
            )
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
