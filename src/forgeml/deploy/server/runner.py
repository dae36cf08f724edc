"""Run the server under uvicorn, for every kind: one process, or N workers sharing one socket;
graceful SIGTERM.

On SIGTERM readiness flips to 503 at once and every response carries ``Connection: close``; the
port stays open while in-flight requests finish (bounded by ``graceful_timeout_s``), then uvicorn
stops accepting connections, closes them and runs the lifespan shutdown. A second SIGTERM/SIGINT
exits immediately.

With N workers the metrics go through ``prometheus_client``'s multiprocess mode: the runner makes a
private ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, tells the library when a worker is
gone (its live gauges stop counting) and removes the folder at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import multiprocess
from uvicorn.supervisors import Multiprocess

from forgeml.bundle.manifest import read_manifest
from forgeml.config import ServeConfig, serve_config
from forgeml.deploy.server.metrics import MULTIPROCESS_ENV
from forgeml.deploy.server.protocol import LimitedH11Protocol
from forgeml.errors import ConfigError, PortInUseError

ENV_BUNDLE = "FORGEML_SERVE_BUNDLE"
ENV_CONFIG = "FORGEML_SERVE_CONFIG"
logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server, plus: readiness goes to 503 the moment a shutdown signal arrives, and a
    drained shutdown exits 0 (uvicorn re-raises the signal afterwards, which would exit -15)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """First the drain with the port still open: requests in flight finish (up to
        ``timeout_graceful_shutdown``) while readiness answers 503 and every response carries
        ``Connection: close``; a probe during the drain gets that answer, not a refused connection.
        Then uvicorn's shutdown closes the port and the connections."""
        deadline = time.monotonic() + self.config.timeout_graceful_shutdown
        logger.info(
            "draining: %d requests in flight; the port stays open until they finish",
            len(self.server_state.tasks),
        )
        # uvicorn's own wait (Server._wait_tasks_to_complete) polls the same way
        while self.server_state.tasks and not self.force_exit and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: Any) -> None:
        state = _find_state(self.config)
        if state is not None:
            state.draining = True
        if self.should_exit:  # a second signal: stop waiting for in-flight requests
            self.force_exit = True
        super().handle_exit(sig, frame)


def _find_state(config: uvicorn.Config) -> Any:
    app = getattr(config, "loaded_app", None)
    while app is not None:  # uvicorn wraps the app (proxy headers, ...); our Guard wraps FastAPI
        fastapi_state = getattr(getattr(app, "state", None), "forgeml", None)
        if fastapi_state is not None:
            return fastapi_state
        app = getattr(app, "app", None)
    return None


def server_config(bundle: str | Path, *layers: dict[str, Any]) -> ServeConfig:
    """The settings for serving ``bundle``: its kind's defaults, the serve section it was trained with
    (language-model bundles keep one), then each layer (later ones win).

    A name the kind's server does not read (``--set`` on the command line) is a ConfigError naming it.
    """
    manifest = read_manifest(Path(bundle))
    return serve_config(manifest["kind"], manifest.get("serve") or {}, *layers)


def read_api_key(file: str | Path | None) -> str | None:
    """The key from ``file`` (surrounding whitespace stripped); an empty or unreadable file is an error."""
    if file is None:
        return None
    try:
        key = Path(file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"serve.api_key_file: cannot read {file} ({exc}).", key="serve.api_key_file"
        ) from None
    if len(key) < 16:
        raise ConfigError(
            f"serve.api_key_file: the key in {file} is shorter than 16 characters; use a long random key.",
            key="serve.api_key_file",
        )
    return key


def app_from_env() -> Any:
    """The app factory each worker process calls (``--workers N``): bundle and config come from the environment."""
    from forgeml.deploy.server.app import create_app

    config = ServeConfig.model_validate(json.loads(os.environ[ENV_CONFIG]))
    return create_app(os.environ[ENV_BUNDLE], config, api_key=read_api_key(config.api_key_file))


def uvicorn_options(config: ServeConfig) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` the server runs with."""
    return {
        "host": config.host,
        "port": config.port,
        "timeout_graceful_shutdown": config.graceful_timeout_s,
        "timeout_keep_alive": 5,
        "log_level": "info",
        "access_log": False,
        "server_header": False,
        # uvicorn's h11 protocol plus header/body timeouts, a connection cap and JSON answers to bad HTTP
        "http": LimitedH11Protocol,
        "h11_max_incomplete_event_size": config.max_header_bytes,  # request line + headers (431 past it)
    }


def run_server(bundle: str | Path, config: ServeConfig) -> None:
    """Serve ``bundle`` (any kind) until SIGTERM/SIGINT; the bundle is verified before the port is bound."""
    from forgeml.deploy.server.app import create_app

    check_port_free(config.host, config.port)  # before the model loads: fail in a second, in one line
    app = create_app(bundle, config, api_key=read_api_key(config.api_key_file))
    options = uvicorn_options(config)
    if config.workers == 1:
        _Server(uvicorn.Config(app, **options)).run()
        return
    os.environ[ENV_BUNDLE] = str(Path(bundle).resolve())
    os.environ[ENV_CONFIG] = config.model_dump_json()
    uv_config = uvicorn.Config(
        "forgeml.deploy.server.runner:app_from_env", factory=True, workers=config.workers, **options
    )
    with shared_metrics_folder():
        # each worker (a spawned interpreter, so it reads the folder from the environment) runs uvicorn's Server
        _Supervisor(uv_config, sockets=[tcp_listener(uv_config)]).run()


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` once as uvicorn will (SO_REUSEADDR) and let it go; a taken port is one line,
    not uvicorn's log and ``sys.exit(1)``. Port 0 asks the system for a free one, so it cannot clash."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"serve: port {port} on {host} is already in use by another process. Stop that process, "
                f"or pick another port with --port (or serve.port; --port 0 picks a free one)."
            ) from None
        raise ConfigError(
            f"serve: cannot listen on {host}:{port} ({exc.strerror or exc}). Check serve.host and serve.port.",
            key="serve.port",
        ) from None
    finally:
        probe.close()


@contextlib.contextmanager
def shared_metrics_folder() -> Iterator[Path]:
    """A fresh ``PROMETHEUS_MULTIPROC_DIR`` for this server's workers, removed afterwards.

    Fresh, because files left from an earlier run would add their counts to this one's.
    """
    folder = Path(tempfile.mkdtemp(prefix="forgeml-metrics-"))
    previous = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, plus: a worker that is gone (died, restarted, scaled down) is marked
    dead for ``prometheus_client``, so its live gauges (queue depth, in flight) stop counting; its
    counters stay in the totals."""

    known: frozenset[int] = frozenset()

    def keep_subprocess_alive(self) -> None:
        # uvicorn calls this twice a second, after acting on signals (restart, scale down)
        super().keep_subprocess_alive()
        running = frozenset(process.pid for process in self.processes if process.pid is not None)
        for pid in self.known - running:
            multiprocess.mark_process_dead(pid)
        self.known = running


def tcp_listener(config: uvicorn.Config) -> socket.socket:
    """uvicorn's shared listening socket, marked as TCP so that its connections get TCP_NODELAY.

    uvicorn creates it as ``socket.socket(family)``, whose protocol reads 0; asyncio sets
    TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP, so with ``--workers N`` every
    response's second write waited for the client's delayed ACK: 44 ms per request at any load.
    """
    shared = config.bind_socket()
    listener = socket.socket(shared.family, shared.type, socket.IPPROTO_TCP, fileno=shared.detach())
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Linux copies it to accepted sockets
    return listener
