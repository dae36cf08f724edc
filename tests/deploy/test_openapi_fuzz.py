"""Schemathesis against the tabular server's own OpenAPI document, real uvicorn on loopback (see
tests/openapi_fuzz.py for what every answer must satisfy)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_every_tabular_route_survives_schema_driven_fuzzing(tmp_path_factory: pytest.TempPathFactory) -> None:
    import forgeml
    from conftest import mixed_table_config, start_server, stop_server
    from openapi_fuzz import fuzz

    folder = tmp_path_factory.mktemp("fuzz")
    bundle = forgeml.train(mixed_table_config(folder, train={"epochs": 1, "threads": 1})).bundle_path
    process, base = start_server(bundle, log=folder / "server.log")
    try:
        seen = fuzz(base, max_examples=100, error_keys={"code", "message", "request_id", "field", "row"})
    finally:
        code = stop_server(process)
    print({operation: dict(statuses) for operation, statuses in seen.items()})
    assert code == 0, (folder / "server.log").read_text()
    assert {200, 422} <= set(seen["POST /v1/predict"]), seen  # both valid and refused requests were tried
