"""The HTTP server: one FastAPI app for every kind of bundle, a handler per kind, and what they share
(the Guard, limits, metrics, probes, the uvicorn runner with its graceful drain)."""

from __future__ import annotations

from forgeml.deploy.server.app import create_app
from forgeml.deploy.server.runner import run_server

__all__ = ["create_app", "run_server"]
