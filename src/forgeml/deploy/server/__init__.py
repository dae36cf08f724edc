"""The HTTP server: one FastAPI app for every kind of bundle, a handler per kind, and what they share
(the Guard, limits, metrics, probes, the uvicorn runner with its graceful drain).

Names are imported on first use (PEP 562): with ``--workers N`` each worker unpickles uvicorn's
config, which names :class:`~forgeml.deploy.server.protocol.LimitedH11Protocol`; importing that
must not pull in torch before the worker answers its supervisor's health check (5 s), or the
supervisor kills it as hung.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forgeml.deploy.server.app import create_app
    from forgeml.deploy.server.runner import run_server

_HOMES = {"create_app": "forgeml.deploy.server.app", "run_server": "forgeml.deploy.server.runner"}
__all__ = ["create_app", "run_server"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
