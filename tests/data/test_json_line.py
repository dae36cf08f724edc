"""parse_json_line, shared by the table reader and the language-model data reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeml.data.tables import parse_json_line
from forgeml.errors import DataError


def test_a_line_becomes_its_object() -> None:
    assert parse_json_line(Path("t.jsonl"), 1, '{"a": 1}\n') == {"a": 1}


@pytest.mark.parametrize(
    ("line", "where", "match"),
    [
        ('{"a": \n', None, r"t\.jsonl, line 3: not valid JSON \(.* at column \d+\)\. Each line must be one"),
        ("[1]\n", None, r"t\.jsonl, line 3: expected a JSON object per line, got list\. Write each"),
        ("[1]\n", "t.jsonl:3", r"^t\.jsonl:3: expected a JSON object"),
    ],
)
def test_errors_name_the_file_the_line_and_the_fix(line: str, where: str | None, match: str) -> None:
    with pytest.raises(DataError, match=match) as caught:
        parse_json_line(Path("t.jsonl"), 3, line, where=where)
    assert caught.value.row == 3
