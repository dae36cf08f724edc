"""The HTTP server: FastAPI app, micro-batching, limits, metrics, the try-it page, the uvicorn runner."""

from __future__ import annotations

from forgeml.deploy.server.app import create_app
from forgeml.deploy.server.runner import run_server

__all__ = ["create_app", "run_server"]
