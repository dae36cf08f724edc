"""Load test on loopback: forgeml's server vs a minimal hand-written FastAPI + ONNX Runtime endpoint.

Part 1, a small model (the breast-cancer MLP, or BUNDLE): single-request p50/p99, and throughput
and p99 at 16 and 64 concurrent clients, for forgeml with 1 and 2 uvicorn workers, forgeml with
micro-batching off (max_batch_size 1), and the bare endpoint with 1 and 2 workers.
Part 2, a compute-heavy model (a wide CNN, 13 M parameters, on 28x28 images): forgeml with
micro-batching on vs off at 1, 16 and 64 clients; batching must pay off here.

Every server runs at once, idle, and the load phases are interleaved round by round (A B C A B C
...), so a slow minute on this machine hits every setup alike; medians over the rounds are printed.
The load generator is a closed loop of raw HTTP/1.1 keep-alive connections on one asyncio loop:
a request costs it a few tens of microseconds, not the ~1 ms of an httpx client, which on 2 shared
cores would otherwise be measured instead of the servers.

With ``--baseline DIR`` (another forgeml source tree, e.g. ``git archive <commit> src | tar -x -C DIR``;
repeatable) that tree's server runs beside this one, 1 worker, in the same interleaved rounds: a
before/after comparison that a busy machine cannot skew. ``--loads 1,16`` picks the client counts.

Run: .venv/bin/python benchmarks/serve_load.py [BUNDLE] [--rounds 3] [--seconds 4] [--skip-heavy]
     [--loads 1,16,64] [--baseline DIR]
Writes benchmarks/results/serve_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from forgeml.deploy.verify import free_port

RESULTS = Path(__file__).parent / "results"
MINIMAL = """
import json, os, numpy as np, onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.responses import Response
manifest = json.load(open(os.path.join(os.environ["BUNDLE"], "bundle.json")))
columns = manifest["onnx"]["inputs"][0]["columns"]
session = ort.InferenceSession(os.path.join(os.environ["BUNDLE"], "model.onnx"))
app = FastAPI()
@app.get("/health/ready")
async def ready():
    return {"status": "ready"}
@app.post("/v1/predict")
async def predict(request: Request):
    rows = json.loads(await request.body())["rows"]
    x = np.array([[row[c] for c in columns] for row in rows], dtype=np.float64)
    out = session.run(None, {"numeric": x})[0]
    return Response(json.dumps({"predictions": out.tolist()}), media_type="application/json")
"""


class RawConnection:
    """One keep-alive HTTP/1.1 connection that POSTs a fixed body and reads whole responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        self.reader, self.writer, self.request = reader, writer, request

    @classmethod
    async def open(cls, port: int, path: str, body: bytes) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return cls(reader, writer, head.encode() + body)

    async def post(self) -> int:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise RuntimeError("chunked responses are not expected from these endpoints")
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, body: bytes, clients: int, seconds: float) -> tuple[float, float, float]:
    """``clients`` connections each sending the next request when the last is answered.

    Returns (requests per second, p50 ms, p99 ms). Any non-200 answer is an error: a load test
    that counts 503s as throughput measures nothing.
    """
    connections = [await RawConnection.open(port, "/v1/predict", body) for _ in range(clients)]
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(connection: RawConnection) -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            status = await connection.post()
            if status != 200:
                raise RuntimeError(f"server answered {status} under load")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(connection) for connection in connections))
    finally:
        for connection in connections:
            connection.close()
    elapsed = time.perf_counter() - started
    values = np.array(latencies) * 1000
    return len(values) / elapsed, float(np.percentile(values, 50)), float(np.percentile(values, 99))


@dataclass
class Setup:
    name: str
    command: list[str]
    body: bytes
    env: dict[str, str] | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)

    def start(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [*self.command, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: the server exited with {self.process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: not ready after {timeout} s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def record(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.samples[key])


def measure(setups: list[Setup], rounds: int, seconds: float, loads: tuple[int, ...]) -> None:
    for setup in setups:  # warm-up: first requests pay for lazy imports and allocator growth
        asyncio.run(closed_loop(setup.port, setup.body, 4, 1.0))
    for round_number in range(rounds):
        for setup in setups:
            for clients in loads:
                throughput, p50, p99 = asyncio.run(closed_loop(setup.port, setup.body, clients, seconds))
                setup.record(f"{clients}:rps", throughput)
                setup.record(f"{clients}:p50", p50)
                setup.record(f"{clients}:p99", p99)
        print(f"  round {round_number + 1}/{rounds} done", flush=True)


def forgeml_serve(bundle: Path, *settings: str, workers: int = 1) -> list[str]:
    command = [sys.executable, "-m", "forgeml", "serve", str(bundle), "--workers", str(workers)]
    for setting in settings:
        command += ["--set", setting]
    return command


def serve_directly(bundle: Path) -> list[str]:
    """``forgeml serve`` without the CLI (``--port N`` appended): a baseline tree's CLI may differ."""
    script = (
        "import sys; from forgeml.deploy.serving import serve_bundle; "
        "serve_bundle(sys.argv[1], {'port': int(sys.argv[3]), 'workers': 1})"
    )
    return [sys.executable, "-c", script, str(bundle)]


def small_model_bundle(folder: Path) -> Path:
    import forgeml
    from forgeml.config import load_config

    config = load_config(
        "examples/breast_cancer_mlp.yaml", [f"output_dir={folder}", "train.epochs=5", "check.enabled=false"]
    )
    bundle = forgeml.train(config).bundle_path
    forgeml.api.export(bundle)
    return bundle


def wide_cnn_bundle(folder: Path) -> tuple[Path, bytes]:
    """The document's CNN made wider (64 and 128 channels, a 2048-unit dense layer: 13 M parameters,
    51 MB, beyond this CPU's 32 MB L3) on 28x28 images. One image streams every weight from memory
    for a handful of multiply-adds each; a batch reuses each weight for every image in it, which is
    the case micro-batching exists for."""
    import base64

    from training_overhead import _mnist_sized_digits

    import forgeml
    from forgeml.config import load_config

    source = _mnist_sized_digits(folder, 600)
    config = load_config(
        "examples/digits_cnn.yaml",
        [
            f"output_dir={folder}",
            f"data.source={source}",
            "model.channels=[64,128]",
            "model.dense=2048",
            "train.epochs=1",
            "check.enabled=false",
        ],
    )
    bundle = forgeml.train(config).bundle_path
    forgeml.api.export(bundle)
    image = np.load(source)["x"][0].astype(np.float32)
    encoded = {"dtype": "float32", "shape": [1, 28, 28], "base64": base64.b64encode(image.tobytes()).decode()}
    return bundle, json.dumps({"rows": [{"image": encoded}]}).encode()


def print_table(title: str, setups: list[Setup], loads: tuple[int, ...], reference: Setup) -> dict:
    print(f"\n{title} (medians)")
    header = f"{'server':30}" + "".join(f" {f'{c} cl req/s':>12} {'p50 ms':>7} {'p99 ms':>7}" for c in loads)
    print(header + f" {'vs ' + reference.name:>22}")
    table = {}
    for setup in setups:
        row = f"{setup.name:30}"
        for clients in loads:
            row += f" {setup.median(f'{clients}:rps'):12.0f} {setup.median(f'{clients}:p50'):7.2f} {setup.median(f'{clients}:p99'):7.1f}"
        ratios = [setup.median(f"{c}:rps") / reference.median(f"{c}:rps") for c in loads]
        print(row + " " + " / ".join(f"{ratio:.2f}x" for ratio in ratios).rjust(22))
        table[setup.name] = {key: setup.median(key) for key in setup.samples} | {
            f"{c}:rps_ratio": ratio for c, ratio in zip(loads, ratios, strict=True)
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", type=Path, help="a tabular bundle with model.onnx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--skip-heavy", action="store_true", help="only the small-model part")
    parser.add_argument("--loads", default="1,16,64", help="concurrent clients per phase, comma-separated")
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="another forgeml tree (with src/) to serve beside this one; repeatable",
    )
    args = parser.parse_args()
    loads = tuple(int(clients) for clients in args.loads.split(","))
    folder = Path(tempfile.mkdtemp(prefix="forgeml-serve-load-"))
    bundle = args.bundle or small_model_bundle(folder)
    manifest = json.loads((bundle / "bundle.json").read_text())
    columns = [column["name"] for column in manifest["input_schema"]["columns"]]
    body = json.dumps({"rows": [{column: 1.0 + i for i, column in enumerate(columns)}]}).encode()
    (folder / "minimal_app.py").write_text(MINIMAL)
    bare = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(folder),
        "minimal_app:app",
        "--log-level",
        "warning",
    ]
    bare_env = {**os.environ, "BUNDLE": str(bundle)}
    small = [
        Setup("bare FastAPI+ORT, 1 worker", bare, body, bare_env),
        Setup("forgeml, 1 worker", forgeml_serve(bundle), body),
        Setup("forgeml, 1 worker, no batching", forgeml_serve(bundle, "max_batch_size=1"), body),
        Setup("bare FastAPI+ORT, 2 workers", [*bare, "--workers", "2"], body, bare_env),
        Setup("forgeml, 2 workers", forgeml_serve(bundle, workers=2), body),
    ]
    for tree in reversed(args.baseline):  # its src/ first on the path: the installed forgeml is this tree's
        tree_env = {**os.environ, "PYTHONPATH": str(tree.resolve() / "src")}
        small.insert(2, Setup(f"forgeml at {tree.name}, 1 worker", serve_directly(bundle), body, tree_env))
    heavy: list[Setup] = []
    if not args.skip_heavy:
        heavy_bundle, heavy_body = wide_cnn_bundle(folder)
        heavy = [
            Setup("wide CNN, batching off", forgeml_serve(heavy_bundle, "max_batch_size=1"), heavy_body),
            Setup("wide CNN, batching on", forgeml_serve(heavy_bundle, "max_batch_size=64"), heavy_body),
        ]
    results: dict[str, object] = {"cores": os.cpu_count(), "rounds": args.rounds, "seconds": args.seconds}
    for group in (small, heavy):
        for setup in group:
            setup.start()
    try:
        for setup in [*small, *heavy]:
            setup.wait_ready()
        print(f"small model: {bundle}")
        measure(small, args.rounds, args.seconds, loads)
        results["small_model"] = print_table("Small model (MLP)", small, loads, small[0])
        if heavy:
            print("compute-heavy model: wide CNN, 13 M parameters, 28x28 images")
            measure(heavy, args.rounds, args.seconds, loads)
            results["wide_cnn"] = print_table("Compute-heavy model (wide CNN)", heavy, loads, heavy[0])
    finally:
        for setup in [*small, *heavy]:
            setup.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS / 'serve_load.json'}")


if __name__ == "__main__":
    main()
