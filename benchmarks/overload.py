"""Overload on loopback: open-loop load at 1x, 2x and 3x the measured capacity (issue 18 item 2).

The server is ``forgeml serve`` with its default settings (``request_timeout_s`` 10, ``max_queue``
512) on the breast-cancer MLP (or BUNDLE); every request holds ``--rows`` rows (250: ~200 kB of
JSON). First the capacity is measured: a closed loop of 8 keep-alive connections, 200s per second.
Then, for each level, requests are sent at ``level x capacity`` per second for ``--seconds``, on
a schedule that does not wait for answers (open loop: a client that is not answered does not slow
down; a request with no idle connection opens a new one). Measured at the client, per level:

- status counts (200, 503, 504, other), requests with no answer within ``request_timeout_s`` + 5 s
  ("none"), connections refused, reset or closed without an answer ("reset"), and answers later
  than ``request_timeout_s`` + 0.5 s ("late");
- latency percentiles of all answered requests, and of the 200s alone;
- ``GET /health/live`` every 100 ms on a new connection (as a kubelet probes, and from a process of
  its own, so the load generator's lag does not count): p50, p99, max, misses (no answer within
  5 s); ``GET /health/ready`` every 500 ms: its status counts;
- the server's memory (PSS, its processes' proportional set sizes; "RSS" in the output): before the
  load (after a warm-up), its peak during the load, and after it
  (``--settle`` seconds after the last level).

With ``--baseline DIR`` (another forgeml tree, e.g. ``git archive fb499e8 src | tar -x -C DIR``)
that tree's server runs beside this one, on its own copy of the model trained by that tree (the
bundle format moves), at the same request rates, levels interleaved: a before/after comparison.

The load generator is raw HTTP/1.1 on one asyncio loop (tens of microseconds per request) and shares
the machine with the server: on 2 cores, say so beside the figures (and whether other work ran).

Run: .venv/bin/python benchmarks/overload.py [BUNDLE] [--rows 250] [--seconds 10] [--levels 1,2,3]
     [--settle 5] [--baseline DIR]
Writes benchmarks/results/overload.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from serve_load import Setup

RESULTS = Path(__file__).parent / "results"
REQUEST_TIMEOUT = 10.0  # the server's default request_timeout_s
PROBE_TIMEOUT = 5.0
KEEP_ALIVE = 4.0  # reuse an idle connection for this long (the server closes them after 5 s idle)


async def http(port: int, request: bytes, timeout: float, connection: list | None = None) -> tuple[int, list]:
    """Send ``request`` (on ``connection`` when given, else a new one); (status, [reader, writer]) of
    a connection that may be reused, or (status, []) when the server closed it."""
    if connection:
        reader, writer = connection
    else:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status = int(head[9:12])
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    await asyncio.wait_for(reader.readexactly(length), timeout)
    if close:
        writer.close()
        return status, []
    return status, [reader, writer]


def post_bytes(body: bytes) -> bytes:
    head = (
        "POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_bytes(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


@dataclass
class Server(Setup):
    """A server under test (serve_load's, started the same way) and its results."""

    results: dict[str, dict] = field(default_factory=dict)

    def rss(self) -> int:
        assert self.process is not None
        parent = psutil.Process(self.process.pid)
        processes = [parent, *parent.children(recursive=True)]
        # The proportional set size: the server's codec process is forked from it and shares its
        # pages, which RSS would count twice (730 MB at rest instead of ~450 MB).
        return sum(p.memory_full_info().pss for p in processes)


async def capacity(port: int, request: bytes, seconds: float, clients: int = 8) -> float:
    """200s per second of a closed loop of ``clients`` keep-alive connections."""
    stop = time.perf_counter() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        connection: list = []
        while time.perf_counter() < stop:
            status, connection = await http(port, request, 60, connection)
            done += status == 200

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


async def open_loop(server: Server, request: bytes, rate: float, seconds: float) -> dict:
    """``rate`` requests per second for ``seconds``, whatever the answers; probes and RSS beside."""
    idle: list[tuple[list, float]] = []  # kept-alive connections and since when they are idle
    outcomes: list[tuple[str, float]] = []  # (status or "none", seconds at the client)
    rss: list[int] = []
    limit = REQUEST_TIMEOUT + 5.0

    async def one() -> None:
        connection = None
        while idle and connection is None:
            kept, since = idle.pop()
            if time.perf_counter() - since < KEEP_ALIVE:
                connection = kept
            else:  # the server may have closed it (uvicorn's keep-alive timeout): as httpx, do not reuse
                kept[1].close()
        started = time.perf_counter()
        try:
            status, kept = await http(server.port, request, limit, connection)
        except asyncio.TimeoutError:
            outcomes.append(("none", time.perf_counter() - started))
            return
        except (OSError, asyncio.IncompleteReadError):  # refused, reset, or closed without an answer
            outcomes.append(("reset", time.perf_counter() - started))
            return
        outcomes.append((str(status), time.perf_counter() - started))
        if kept:
            idle.append((kept, time.perf_counter()))

    async def sample_rss() -> None:
        end = time.perf_counter() + seconds + limit
        while time.perf_counter() < end and len(outcomes) < int(rate * seconds):
            rss.append(server.rss())
            await asyncio.sleep(0.1)

    prober = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--probe", str(server.port), str(seconds), stdout=asyncio.subprocess.PIPE
    )
    assert prober.stdout is not None
    await prober.stdout.readline()  # started: the load begins with the probes
    await asyncio.gather(every(seconds, 1.0 / rate, one), sample_rss())
    probed = json.loads((await prober.communicate())[0])
    for (_, writer), _ in idle:
        writer.close()
    return summarize(outcomes, probed["live"], probed["ready"], rss, rate, seconds)


async def every(seconds: float, interval: float, action) -> None:
    """``action()`` every ``interval`` seconds for ``seconds``, whether or not earlier ones finished."""
    tasks = []
    start = time.perf_counter()
    for tick in range(int(seconds / interval)):
        await asyncio.sleep(max(0.0, start + tick * interval - time.perf_counter()))
        tasks.append(asyncio.create_task(action()))
    await asyncio.gather(*tasks)


async def probe(port: int, seconds: float) -> dict:
    """The probes of one phase, from their own process: the load generator's event loop is busy
    (hundreds of 200 kB requests a second), and its lag must not count as the server's."""
    live: list[float | None] = []
    ready: list[str] = []

    async def probe_live() -> None:
        started = time.perf_counter()
        try:
            status, _ = await http(port, get_bytes("/health/live"), PROBE_TIMEOUT)
            live.append(time.perf_counter() - started if status == 200 else None)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            live.append(None)

    async def probe_ready() -> None:
        try:
            status, _ = await http(port, get_bytes("/health/ready"), PROBE_TIMEOUT)
            ready.append(str(status))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            ready.append("none")

    await asyncio.gather(every(seconds, 0.1, probe_live), every(seconds, 0.5, probe_ready))
    return {"live": live, "ready": ready}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    array = np.array(values) * 1000
    return {
        "p50_ms": float(np.percentile(array, 50)),
        "p99_ms": float(np.percentile(array, 99)),
        "max_ms": float(array.max()),
    }


def summarize(outcomes, live, ready, rss, rate, seconds) -> dict:
    statuses: dict[str, int] = {}
    for status, _ in outcomes:
        statuses[status] = statuses.get(status, 0) + 1
    answered = [latency for status, latency in outcomes if status != "none"]
    ok = [latency for status, latency in outcomes if status == "200"]
    live_answered = [latency for latency in live if latency is not None]
    return {
        "rate": rate,
        "sent": len(outcomes),
        "statuses": statuses,
        "late": sum(latency > REQUEST_TIMEOUT + 0.5 for latency in answered),
        "latency": percentiles(answered),
        "latency_200": percentiles(ok),
        "goodput_rps": len(ok) / seconds,
        "live": {**percentiles(live_answered), "probes": len(live), "missed": len(live) - len(live_answered)},
        "ready": {status: ready.count(status) for status in sorted(set(ready))},
        "rss_peak_mb": max(rss, default=0) / 2**20,
    }


def bundle_for(tree: Path | None, folder: Path) -> Path:
    """The breast-cancer MLP trained (and exported) by ``tree``'s forgeml (this one's when None)."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from serve_load import small_model_bundle; print(small_model_bundle(Path(sys.argv[2])))"
    )
    env = {**os.environ} if tree is None else {**os.environ, "PYTHONPATH": str(tree.resolve() / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(folder)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def serve_command(bundle: Path) -> list[str]:
    """``forgeml serve`` with default settings, without the CLI (a baseline tree's CLI may differ)."""
    script = (
        "import sys; from forgeml.deploy.serving import serve_bundle; "
        "serve_bundle(sys.argv[1], {'port': int(sys.argv[3])})"
    )
    return [sys.executable, "-c", script, str(bundle)]


def body_for(bundle: Path, rows: int) -> bytes:
    manifest = json.loads((bundle / "bundle.json").read_text())
    columns = [column["name"] for column in manifest["input_schema"]["columns"]]
    rng = np.random.default_rng(0)
    return json.dumps(
        {"rows": [{column: round(float(rng.normal(10, 3)), 4) for column in columns} for _ in range(rows)]}
    ).encode()


async def run(servers: list[Server], args: argparse.Namespace) -> dict:
    reference = servers[0]
    for server in servers:  # warm-up, then the resting RSS
        await capacity(server.port, post_bytes(server.body), 2.0)
        server.results["rss_before_mb"] = server.rss() / 2**20
    measured = args.capacity or await capacity(
        reference.port, post_bytes(reference.body), args.capacity_seconds
    )
    print(f"capacity of {reference.name}: {measured:.1f} requests/s of {args.rows} rows", flush=True)
    for level in args.levels:
        for server in servers:
            result = await open_loop(server, post_bytes(server.body), level * measured, args.seconds)
            result["load_average_1min"] = os.getloadavg()[0]
            server.results[f"{level}x"] = result
            print(f"  {server.name} at {level}x: {brief(result)}", flush=True)
            await settle(server)
    await asyncio.sleep(args.settle)
    for server in servers:
        server.results["rss_after_mb"] = server.rss() / 2**20
        peaks = [server.results[f"{level}x"]["rss_peak_mb"] for level in args.levels]
        server.results["rss_peak_mb"] = max(peaks)
    return {"capacity_rps": measured, "servers": {server.name: server.results for server in servers}}


async def settle(server: Server, limit: float = 120.0) -> None:
    """Wait until ``server`` is idle (under 5% of a core for a second): a server still working off
    the backlog of its last phase would take CPU from the next phase's server on these 2 cores."""
    assert server.process is not None
    process = psutil.Process(server.process.pid)
    deadline = time.monotonic() + limit
    process.cpu_percent()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        if process.cpu_percent() < 5.0:
            return


def brief(result: dict) -> str:
    live = result["live"]
    return (
        f"sent {result['sent']}, statuses {result['statuses']}, late {result['late']}, "
        f"p99 {result['latency']['p99_ms']:.0f} ms (max {result['latency']['max_ms']:.0f}), "
        f"live p99 {live['p99_ms']:.1f} ms max {live['max_ms']:.1f} ms missed {live['missed']}/{live['probes']}, "
        f"ready {result['ready']}, RSS peak {result['rss_peak_mb']:.0f} MB"
    )


def print_table(report: dict, levels: list[float]) -> None:
    print(f"\ncapacity: {report['capacity_rps']:.1f} req/s; open loop for each level")
    header = (
        f"{'server':22} {'level':>5} {'sent':>6} {'200':>6} {'503':>6} {'504':>5} {'other':>5} {'none':>5} {'reset':>5} "
        f"{'late':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'live p99':>9} {'live max':>9} {'missed':>7}"
    )
    print(header)
    for name, results in report["servers"].items():
        for level in levels:
            r = results[f"{level}x"]
            s = r["statuses"]
            other = sum(v for k, v in s.items() if k not in {"200", "503", "504", "none", "reset"})
            print(
                f"{name:22} {level:>4}x {r['sent']:6} {s.get('200', 0):6} {s.get('503', 0):6} {s.get('504', 0):5} "
                f"{other:5} {s.get('none', 0):5} {s.get('reset', 0):5} {r['late']:5} {r['latency']['p50_ms']:8.0f} "
                f"{r['latency']['p99_ms']:8.0f} {r['latency']['max_ms']:8.0f} {r['live']['p99_ms']:9.1f} "
                f"{r['live']['max_ms']:9.1f} {r['live']['missed']:>3}/{r['live']['probes']:<3}"
            )
        before, peak, after = results["rss_before_mb"], results["rss_peak_mb"], results["rss_after_mb"]
        print(
            f"{name:22} RSS before {before:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB ({after / before:.2f}x)"
        )


def main() -> None:
    if sys.argv[1:2] == ["--probe"]:  # the prober subprocess of one phase
        print("started", flush=True)
        print(json.dumps(asyncio.run(probe(int(sys.argv[2]), float(sys.argv[3])))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "bundle", nargs="?", type=Path, help="a tabular bundle (default: the breast-cancer MLP)"
    )
    parser.add_argument("--rows", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=10.0, help="open-loop seconds per level")
    parser.add_argument("--capacity-seconds", type=float, default=6.0)
    parser.add_argument("--capacity", type=float, help="requests/s to call 1x, instead of measuring it")
    parser.add_argument("--levels", default="1,2,3", help="multiples of the capacity, comma-separated")
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before the last RSS reading")
    parser.add_argument("--baseline", type=Path, help="another forgeml tree (with src/) to load the same way")
    args = parser.parse_args()
    args.levels = [float(level) if "." in level else int(level) for level in args.levels.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="forgeml-overload-"))
    bundle = args.bundle or bundle_for(None, folder / "this")
    servers = [Server("forgeml", serve_command(bundle), body_for(bundle, args.rows), dict(os.environ))]
    if args.baseline is not None:
        tree = args.baseline.resolve()
        old_bundle = bundle_for(tree, folder / "baseline")
        name = f"baseline {tree.name}"
        servers.append(
            Server(
                name,
                serve_command(old_bundle),
                body_for(old_bundle, args.rows),
                {**os.environ, "PYTHONPATH": str(tree / "src")},
            )
        )
    for server in servers:
        server.start()
    try:
        for server in servers:
            server.wait_ready(timeout=300)
        report = asyncio.run(run(servers, args))
    finally:
        for server in servers:
            server.stop()
    report |= {
        "rows": args.rows,
        "seconds": args.seconds,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    print_table(report, args.levels)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overload.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {RESULTS / 'overload.json'}")


if __name__ == "__main__":
    main()
