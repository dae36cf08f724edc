"""Schemathesis against the language-model server's own OpenAPI document, real uvicorn on loopback
(see tests/openapi_fuzz.py for what every answer must satisfy). ``max_tokens_limit`` is small so the
generated requests that are valid generate a few tokens each."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_fixtures import trained_tiny_run

pytestmark = pytest.mark.slow


def test_every_language_model_route_survives_schema_driven_fuzzing(tmp_path: Path) -> None:
    from conftest import start_server, stop_server
    from openapi_fuzz import fuzz

    bundle = trained_tiny_run()[0].bundle_path
    process, base = start_server(bundle, "max_tokens_limit=8", "default_max_tokens=4", log=tmp_path / "server.log")
    keys = {"code", "message", "request_id", "field", "row", "type", "param"}
    try:
        seen = fuzz(base, max_examples=100, error_keys=keys)
    finally:
        code = stop_server(process)
    print({operation: dict(statuses) for operation, statuses in seen.items()})
    assert code == 0, (tmp_path / "server.log").read_text()
    for route in ("POST /v1/chat/completions", "POST /v1/completions"):
        assert {200, 400, 422} <= set(seen[route]), seen  # answered, unknown fields, bad values all tried
