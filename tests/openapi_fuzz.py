"""Schemathesis against a real server's own OpenAPI document (issue 18 item 6), shared by the tabular
(tests/deploy/test_openapi_fuzz.py) and language-model (tests/llm/test_llm_openapi_fuzz.py) servers.

Every operation gets ``max_examples`` generated requests, valid ones (positive) and ones the document
says are invalid (negative: wrong types, missing and unknown fields), derandomized so CI tries the same
cases each run. Each answer must: not be a 5xx; have a documented status and content type; match its
documented schema (every error is the one error body); refuse what the document says is invalid (4xx);
and, for an error, carry the one error body's keys with the request id of its ``X-Request-ID``.
"""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def fuzz(base: str, max_examples: int, error_keys: set[str]) -> dict[str, Counter[int]]:
    """Run every operation of ``base``'s OpenAPI document; the statuses seen, per operation."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    seen: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        statuses = seen.setdefault(operation.label, Counter())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
                continue  # nothing to make invalid: our GET routes take no parameters
            _run(operation.as_strategy(generation_mode=mode), base, max_examples, error_keys, statuses)
    return seen


def _run(
    cases: SearchStrategy[schemathesis.Case],
    base: str,
    max_examples: int,
    error_keys: set[str],
    statuses: Counter[int],
) -> None:
    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base, timeout=30)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert set(error) == error_keys, error
            assert [error["request_id"]] == response.headers["x-request-id"]  # a header's values

    run()
