"""The OpenAI-compatible LM server: the official openai client against a real uvicorn process, and
validation, backpressure, timeouts and the chat page in-process. Bad requests get 4xx, never 500."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from llm_fixtures import QA, trained_tiny_run

from forgeml.config import serve_config
from forgeml.deploy.server import create_app
from forgeml.models.generate import TextGenerator

torch.set_num_threads(1)
QUESTION, ANSWER = QA[1]
CHAT = {"messages": [{"role": "user", "content": QUESTION}], "temperature": 0, "max_tokens": 40}


@pytest.fixture(scope="module")
def bundle() -> Path:
    return trained_tiny_run()[0].bundle_path


@pytest.fixture
def client(bundle: Path):
    with TestClient(
        create_app(bundle, serve_config("causal_lm", {"max_tokens_limit": 200, "default_max_tokens": 64}))
    ) as test_client:
        yield test_client


@pytest.fixture
def slow_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each token takes 50 ms, so a generation is still running when the next request arrives."""
    forward = TextGenerator._forward

    def slow(self, ids, past):
        time.sleep(0.05)
        return forward(self, ids, past)

    monkeypatch.setattr(TextGenerator, "_forward", slow)


@pytest.mark.slow
def test_the_openai_client_gets_a_chat_completion_and_a_stream_from_a_real_server(
    bundle: Path, tmp_path: Path
) -> None:
    import openai

    from conftest import start_server, stop_server

    log = tmp_path / "server.log"
    process, base = start_server(bundle, log=log)
    try:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0, timeout=30)
        chat = client.chat.completions.create(
            model="tiny_lm", messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=40
        )
        assert chat.choices[0].message.content == ANSWER
        assert chat.choices[0].finish_reason == "stop" and chat.usage.completion_tokens > 0
        stream = client.chat.completions.create(
            model="tiny_lm", messages=[{"role": "user", "content": QUESTION}], temperature=0, stream=True
        )
        pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
        assert "".join(pieces) == ANSWER and len([p for p in pieces if p]) > 1
        prompt = f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
        text = client.completions.create(
            model="tiny_lm", prompt=prompt, temperature=0, stop=[" in"], max_tokens=40
        )
        assert text.choices[0].text == ANSWER.split(" in")[0]
        with pytest.raises(openai.UnprocessableEntityError):
            client.chat.completions.create(model="tiny_lm", messages=[{"role": "robot", "content": "hi"}])
        with pytest.raises(openai.UnprocessableEntityError):
            client.chat.completions.create(model="tiny_lm", messages=[])
        with pytest.raises(openai.UnprocessableEntityError):
            client.chat.completions.create(
                model="tiny_lm", messages=[{"role": "user", "content": "hi"}], max_tokens=10**6
            )
        assert httpx.get(f"{base}/health/live").status_code == 200
        assert httpx.get(f"{base}/health/ready").status_code == 200
    finally:
        code = stop_server(process)
    assert code == 0, log.read_text()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": "hello"}, "messages"),
        ({}, "messages"),
        ({**CHAT, "max_tokens": 0}, "max_tokens"),
        ({**CHAT, "max_tokens": 201}, "max_tokens"),
        ({**CHAT, "max_completion_tokens": 5000}, "max_completion_tokens"),
        ({**CHAT, "temperature": 3}, "temperature"),
        ({**CHAT, "top_p": 0}, "top_p"),
        ({**CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({**CHAT, "n": 2}, "n"),
        ({**CHAT, "seed": "x"}, "seed"),
        ({**CHAT, "seed": -1}, "seed"),
        ({**CHAT, "seed": 2**64}, "seed"),  # past a torch.Generator seed: was a 500 at generation
        ({**CHAT, "seed": True}, "seed"),  # types are strict, as OpenAI's: a bool is not a number
        ({**CHAT, "max_tokens": True}, "max_tokens"),
        ({**CHAT, "max_tokens": "5"}, "max_tokens"),
        ({**CHAT, "temperature": "1"}, "temperature"),
        ({**CHAT, "n": True}, "n"),
        ({**CHAT, "stream": "yes"}, "stream"),
        ({**CHAT, "frequency_penalty": 0.5}, "frequency_penalty"),  # accepted at 0 only: not implemented
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
                    }
                ]
            },
            "messages.0.content",
        ),
    ],
)
def test_bad_chat_requests_get_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == field and error["type"] == "invalid_request_error" and error["request_id"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**CHAT, "foo": 1}, "foo"),
        ({**CHAT, "logprobs": True}, "logprobs"),  # OpenAI's, but not implemented: not silently ignored
        ({**CHAT, "tools": []}, "tools"),
        ({**CHAT, "messages": [{"role": "user", "content": "hi", "name": "bob"}]}, "messages.0.name"),
        ({"messages": [{"role": "robot"}], "bogus": None}, "bogus"),  # named before the other mistakes
    ],
)
def test_unknown_parameters_get_400_naming_them_as_openai_does(
    client: TestClient, body: dict, param: str
) -> None:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"], error["field"]) == ("unknown_parameter", param, param)
    assert error["type"] == "invalid_request_error" and param in error["message"]


def test_parameters_without_effect_on_the_answer_are_accepted(client: TestClient) -> None:
    body = {**CHAT, "user": "u-1", "frequency_penalty": 0, "presence_penalty": 0.0, "seed": 0, "n": 1}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == ANSWER
    assert client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2, "seed": 2**63 - 1}).is_success


@pytest.mark.parametrize("temperature", [1e-94, 5e-324, 1e-300])
def test_a_tiny_temperature_samples_the_likeliest_token(client: TestClient, temperature: float) -> None:
    """Found by the schema-driven fuzzing: a temperature that underflows float32 made NaN probabilities
    and a 500 from torch.multinomial."""
    body = {**CHAT, "temperature": temperature, "top_p": 0.5}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == ANSWER  # the greedy answer


def _wait_for_no_request_in_flight(client: TestClient, timeout_s: float = 10.0) -> None:
    """Until the server's ``forgeml_inflight`` gauge reads 0 (the condition, polled; the deadline bounds a hang)."""
    deadline = time.monotonic() + timeout_s
    while "forgeml_inflight 0.0" not in client.get("/metrics").text.splitlines():
        assert time.monotonic() < deadline, "a request was still in flight after the stream ended"
        time.sleep(0.005)


def test_every_error_status_has_the_same_keys(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One shape for every error (issue 18: the 413 lacked ``field`` and ``row``), streamed ones too."""
    config = serve_config("causal_lm", {"max_concurrent": 1, "max_queue": 0, "request_timeout_s": 0.3})
    responses: dict[str, httpx.Response] = {}
    responses["503 not ready"] = TestClient(create_app(bundle, config)).post(
        "/v1/chat/completions", json=CHAT
    )
    with TestClient(create_app(bundle, config, api_key="k")) as keyed:
        responses["401"] = keyed.post("/v1/chat/completions", json=CHAT)
    forward = TextGenerator._forward
    with TestClient(create_app(bundle, config), raise_server_exceptions=False) as client:
        post = client.post
        json_header = {"content-type": "application/json"}
        responses["400 json"] = post("/v1/chat/completions", content=b"{", headers=json_header)
        responses["400 unknown"] = post("/v1/chat/completions", json={**CHAT, "foo": 1})
        responses["404"] = client.get("/nowhere")
        responses["405"] = client.get("/v1/chat/completions")
        responses["413"] = post("/v1/chat/completions", content=b" " * (2 << 20), headers=json_header)
        responses["415"] = post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"})
        responses["422"] = post("/v1/chat/completions", json={**CHAT, "seed": -1})
        monkeypatch.setattr(TextGenerator, "_forward", lambda self, ids, past: 1 / 0)
        responses["500"] = post("/v1/chat/completions", json=CHAT)
        monkeypatch.setattr(
            TextGenerator, "_forward", lambda self, ids, past: (time.sleep(0.1), forward(self, ids, past))[1]
        )
        with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as running:
            lines = running.iter_lines()
            next(lines)  # the stream holds the only slot
            responses["503 overloaded"] = post("/v1/chat/completions", json=CHAT)
            events = [line for line in lines if line.startswith("data: {")]
        # the stream's worker frees the only slot just after its last event (a callback on the server's
        # loop): wait for that, or the next request can find the slot taken (a 503, seen on a loaded machine)
        _wait_for_no_request_in_flight(client)
        responses["504"] = post("/v1/chat/completions", json=CHAT)
    statuses = {name: response.status_code for name, response in responses.items()}
    assert statuses == {name: int(name[:3]) for name in responses}, statuses
    keys = {name: set(response.json()["error"]) for name, response in responses.items()}
    streamed = json.loads(events[-1].removeprefix("data: "))[
        "error"
    ]  # the timeout as the stream's last event
    keys["504 streamed"] = set(streamed)
    openai_shape = {"code", "message", "request_id", "field", "row", "type", "param"}
    assert all(found == openai_shape for found in keys.values()), keys
    assert (
        responses["422"].json()["error"]["param"] == "seed"
        and responses["413"].json()["error"]["param"] is None
    )


def test_other_bad_requests_get_4xx_never_500(client: TestClient) -> None:
    cases = [
        client.post(
            "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        ),
        client.post("/v1/chat/completions", content=b"[]", headers={"content-type": "application/json"}),
        client.post(
            "/v1/chat/completions", content=b"\xff\xfe", headers={"content-type": "application/json"}
        ),
        client.post("/v1/chat/completions", content=json.dumps(CHAT), headers={"content-type": "text/plain"}),
        client.post("/v1/completions", json={"prompt": ""}),
        client.post("/v1/completions", json={"prompt": ["a", "b"]}),
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 300}]}),
        client.get("/v1/chat/completions"),
        client.post("/v1/nothing", json={}),
        client.post(
            "/v1/chat/completions", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
        ),
    ]
    statuses = [response.status_code for response in cases]
    assert statuses == [400, 422, 400, 415, 422, 422, 422, 405, 404, 413], statuses
    assert client.post("/v1/chat/completions", json=CHAT).json()["choices"][0]["message"]["content"] == ANSWER


def test_seed_repeats_a_sampled_answer_and_stop_strings_cut_it(client: TestClient) -> None:
    sampled = {**CHAT, "temperature": 1.5, "top_p": 0.95, "seed": 7}
    first = client.post("/v1/chat/completions", json=sampled).json()["choices"][0]["message"]["content"]
    again = client.post("/v1/chat/completions", json=sampled).json()["choices"][0]["message"]["content"]
    assert first == again
    stopped = client.post("/v1/chat/completions", json={**CHAT, "stop": "Vell"}).json()["choices"][0]
    assert stopped["message"]["content"] == "Mara " and stopped["finish_reason"] == "stop"
    cut = client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 4}).json()["choices"][0]
    assert cut["message"]["content"] == ANSWER[:4] and cut["finish_reason"] == "length"


def test_the_stream_is_server_sent_events_ending_in_done(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == ANSWER
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_every_response_body_is_what_the_openai_models_describe(client: TestClient) -> None:
    """Our bodies are plain dictionaries (see lm_schema's docstring); the official client's pydantic
    models, validating strictly, are the check that they keep OpenAI's shapes."""
    from openai.types import Completion, Model
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    def events(response: httpx.Response) -> list[dict]:
        *data, done = [event.removeprefix("data: ") for event in response.text.split("\n\n") if event]
        assert done == "[DONE]"
        return [json.loads(event) for event in data]

    ChatCompletion.model_validate(client.post("/v1/chat/completions", json=CHAT).json(), strict=True)
    for chunk in events(client.post("/v1/chat/completions", json={**CHAT, "stream": True})):
        ChatCompletionChunk.model_validate(chunk, strict=True)
    text = {"prompt": QUESTION, "temperature": 0, "max_tokens": 8}
    Completion.model_validate(client.post("/v1/completions", json=text).json(), strict=True)
    # A streamed text chunk carries finish_reason null until the last one, which openai's Completion
    # types as required; the client builds those chunks without validating them.
    *pieces, last = events(client.post("/v1/completions", json={**text, "stream": True}))
    Completion.model_validate(last, strict=True)
    assert pieces and all(piece["choices"][0]["finish_reason"] is None for piece in pieces)
    Model.model_validate(client.get("/v1/models").json()["data"][0], strict=True)
    error = client.post("/v1/chat/completions", json={**CHAT, "n": 2}).json()["error"]
    assert {"message", "type", "param", "code"} <= error.keys()  # OpenAI's error object, plus our request_id


def test_beyond_the_concurrency_bound_requests_get_503_with_retry_after(
    bundle: Path, slow_tokens: None
) -> None:
    config = serve_config("causal_lm", {"max_concurrent": 1, "max_queue": 0})
    with TestClient(create_app(bundle, config)) as client:
        with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as running:
            next(running.iter_lines())  # the first generation holds the only slot
            refused = client.post("/v1/chat/completions", json=CHAT)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert client.get("/health/live").status_code == 200
        assert 'rejected_total{reason="queue_full"} 1' in client.get("/metrics").text


@pytest.mark.alone  # the 504 within 1.5 s
def test_a_generation_past_the_timeout_gets_504_and_frees_its_slot(bundle: Path, monkeypatch) -> None:
    forward = TextGenerator._forward
    monkeypatch.setattr(
        TextGenerator, "_forward", lambda self, ids, past: (time.sleep(0.1), forward(self, ids, past))[1]
    )
    config = serve_config("causal_lm", {"max_concurrent": 1, "max_queue": 0, "request_timeout_s": 0.3})
    with TestClient(create_app(bundle, config)) as client:
        started = time.perf_counter()
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 504
        assert time.perf_counter() - started < 1.5
        streamed = client.post("/v1/chat/completions", json={**CHAT, "stream": True}).text
        assert '"code": "timeout"' in streamed
        monkeypatch.setattr(TextGenerator, "_forward", forward)
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_chat_page_has_no_external_assets_and_health_probes(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/v1/chat/completions" in page.text
    assert "http://" not in page.text and "https://" not in page.text and "src=" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/health/live").json() == {"status": "live"}
    assert client.get("/health/ready").json() == {"status": "ready"}
    assert client.get("/v1/models").json()["data"][0]["object"] == "model"


def test_concurrent_requests_each_get_their_own_answer(bundle: Path) -> None:
    config = serve_config("causal_lm", {"max_concurrent": 2, "max_queue": 8})
    results: dict[int, str] = {}
    with TestClient(create_app(bundle, config)) as client:

        def ask(index: int) -> None:
            question, _ = QA[index]
            body = {**CHAT, "messages": [{"role": "user", "content": question}]}
            results[index] = client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"][
                "content"
            ]

        threads = [threading.Thread(target=ask, args=(index,)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    sequential_client = TestClient(create_app(bundle, config))
    with sequential_client:
        for index in range(4):
            body = {**CHAT, "messages": [{"role": "user", "content": QA[index][0]}]}
            expected = sequential_client.post("/v1/chat/completions", json=body).json()["choices"][0][
                "message"
            ]["content"]
            assert results[index] == expected
