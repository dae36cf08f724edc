"""One error shape: every error status the tabular server sends has the same keys (issue 18 item 5:
the 413 body lacked ``field`` and ``row``). The language-model server's twin is in
tests/llm/test_llm_server.py."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from forgeml.config import ServeConfig
from forgeml.deploy.server import create_app

DOCUMENTED = {"code", "message", "request_id", "field", "row"}  # docs/deploy.md
ROW = {"age": 41.0, "income": 52000.0, "city": "paris", "plan": "pro"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import forgeml
    from conftest import mixed_table_config

    folder = tmp_path_factory.mktemp("errors")
    return forgeml.train(mixed_table_config(folder, train={"epochs": 1, "threads": 1})).bundle_path


def chunked(total: int):
    for _ in range(total // 100_000):
        yield b" " * 100_000


def error_keys(response: httpx.Response) -> set[str]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return set(body["error"])


def test_every_error_status_has_the_same_keys(bundle: Path) -> None:
    config = ServeConfig(max_body_bytes=1 << 16, request_timeout_s=0.2)
    responses: dict[str, httpx.Response] = {}
    # 503 before the model is loaded: a client without the lifespan
    responses["503 not ready"] = TestClient(create_app(bundle, config)).post(
        "/v1/predict", json={"rows": [ROW]}
    )
    with TestClient(create_app(bundle, config, api_key="k")) as keyed:
        responses["401"] = keyed.post("/v1/predict", json={"rows": [ROW]})
    with TestClient(create_app(bundle, config)) as client:
        post = client.post
        responses["400 json"] = post(
            "/v1/predict", content=b"{", headers={"content-type": "application/json"}
        )
        responses["400 length"] = post(
            "/v1/predict", content=b"{}", headers={"content-type": "application/json", "content-length": "x"}
        )
        responses["404"] = client.get("/nowhere")
        responses["405"] = client.get("/v1/predict")
        responses["413 length"] = post("/v1/predict", content=b" " * (1 << 17))
        json_type = {"content-type": "application/json"}
        responses["413 chunked"] = post("/v1/predict", content=chunked(1 << 18), headers=json_type)
        responses["415"] = post("/v1/predict", content=b"a", headers={"content-type": "text/plain"})
        responses["415 missing"] = post("/v1/predict", content=b'{"rows": []}')
        responses["422"] = post("/v1/predict", json={"rows": [{**ROW, "age": "old"}]})
        engine = client.app.app.state.forgeml.handler.predictor.engine  # Guard -> FastAPI -> state
        working = engine.run
        engine.run = lambda feeds: 1 / 0
        responses["500"] = post("/v1/predict", json={"rows": [ROW]})
        engine.run = lambda feeds: time.sleep(0.5) or working(feeds)
        responses["504"] = post("/v1/predict", json={"rows": [ROW]})
        engine.run = working
    statuses = {name: response.status_code for name, response in responses.items()}
    assert statuses == {name: int(name[:3]) for name in responses}, statuses
    keys = {name: error_keys(response) for name, response in responses.items()}
    assert all(found == DOCUMENTED for found in keys.values()), keys
    assert responses["422"].json()["error"]["field"] == "rows[0].age"
    assert responses["413 length"].json()["error"]["field"] is None
