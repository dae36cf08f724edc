"""Property-based tests of the table readers (issue 18 item 6): whatever bytes a file holds, reading it
gives a table or a ForgeError naming the problem, never another exception (a traceback for the user).

Hypothesis generates the files, with strategies that reach past the first check: raw bytes, text
built from what CSV parsing turns on (delimiters, quotes, line ends, a BOM, bytes that are not
UTF-8, numbers and missing-value markers), and JSON Lines built from real JSON values with damage
spliced in. ``derandomize=True`` makes every CI run try the same cases; ``max_examples`` bounds the
time (about 10 s for the file on two cores).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeml.checks.reading import read_source
from forgeml.data.csv_reader import read_csv
from forgeml.data.tables import parse_json_line, read_table
from forgeml.errors import ForgeError

BOUNDED = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

# The pieces CSV parsing turns on: delimiters and decimal commas, quotes, line ends, a BOM, missing-value
# markers, numbers in several spellings, and bytes that are not UTF-8 (Latin-1, a lone surrogate's bytes).
# fmt: off
CSV_PIECES = [
    b",", b";", b"\t", b"|", b'"', b'""', b"\n", b"\r\n", b"\r", b"\xef\xbb\xbf", b" ", b"",
    b"a", b"b", b"name", b"x,y", b"1", b"-2", b"3.5", b"3,5", b"1e308", b"1e999", b"nan", b"NaN",
    b"inf", b"-Infinity", b"NA", b"null", b"?", b"true", b"False", b"\xe9", b"\xff\xfe", b"\xed\xa0\x80",
    b"\x00", b"caf\xc3\xa9", b"#", b"9" * 40, b"2024-01-31", b"=1+1", b"'",
]
# fmt: on

csv_bytes = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(CSV_PIECES), max_size=80).map(b"".join),
    # a header and rows of the same width, then cells damaged: the reader must get past the sniffer
    st.integers(1, 4).flatmap(
        lambda width: st.lists(
            st.lists(st.sampled_from(CSV_PIECES[12:]), min_size=width, max_size=width).map(b",".join),
            min_size=1,
            max_size=12,
        ).map(lambda rows: b"\n".join([b",".join(b"c%d" % i for i in range(width)), *rows]))
    ),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
json_line = st.one_of(
    st.dictionaries(st.sampled_from(["a", "b", "label", ""]), json_values, max_size=4).map(json.dumps),
    json_values.map(json.dumps),  # a line that is JSON but not an object
    st.text(max_size=60),
    st.integers(1, 200_000).map(lambda depth: "[" * depth + "]" * depth),  # deep nesting (issue 18 item 4)
    st.integers(1, 200_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
)
jsonl_bytes = st.one_of(
    st.lists(json_line, max_size=8).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.tuples(st.lists(json_line, min_size=1, max_size=4), st.binary(max_size=20)).map(
        lambda parts: "\n".join(parts[0]).encode("utf-8", "surrogatepass") + parts[1]
    ),
)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="forgeml-properties-") as name:
        yield Path(name)


def read_or_refuse(read: Callable[[], object]) -> None:
    """The property: a result, or a ForgeError with a message; any other exception fails the test."""
    try:
        read()
    except ForgeError as error:
        assert str(error).strip()


@BOUNDED
@given(content=csv_bytes, suffix=st.sampled_from([".csv", ".tsv"]))
def test_any_csv_bytes_read_or_raise_a_forge_error(folder: Path, content: bytes, suffix: str) -> None:
    path = folder / f"table{suffix}"
    path.write_bytes(content)
    read_or_refuse(lambda: read_csv(path))
    read_or_refuse(lambda: read_csv(path, raw=True))  # the data checks' reader keeps bad rows aside
    read_or_refuse(lambda: list(read_csv(path, block_bytes=64)))  # batch prediction streams
    read_or_refuse(lambda: read_table(path))
    read_or_refuse(lambda: read_source(path))


@BOUNDED
@given(content=jsonl_bytes)
def test_any_json_lines_bytes_read_or_raise_a_forge_error(folder: Path, content: bytes) -> None:
    path = folder / "table.jsonl"
    path.write_bytes(content)
    read_or_refuse(lambda: read_table(path))
    read_or_refuse(lambda: read_source(path))


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(line=json_line)
def test_any_line_parses_to_an_object_or_raises_a_forge_error(line: str) -> None:
    try:
        record = parse_json_line(Path("t.jsonl"), 1, line)
    except ForgeError as error:
        assert "t.jsonl, line 1" in str(error)
    else:
        assert isinstance(record, dict)


@pytest.mark.parametrize("content", [b"\xfe\xff\x00\x00\x00", b"\xff\xfea\x00,\x00b\x00\n\x00\x00\xd8"])
def test_a_utf16_file_that_does_not_decode_is_a_data_error(folder: Path, content: bytes) -> None:
    """Found by the property above: a UTF-16 byte-order mark then an odd byte count (or a lone
    surrogate) reached the user as a UnicodeDecodeError traceback from pyarrow's transcoder."""
    path = folder / "utf16.csv"
    path.write_bytes(content)
    for read in (
        lambda: read_csv(path),
        lambda: list(read_csv(path, block_bytes=64)),
        lambda: read_source(path),
    ):
        with pytest.raises(ForgeError, match="does not decode|header|no rows|empty"):
            read()
