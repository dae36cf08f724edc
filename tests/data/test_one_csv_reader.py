"""Training, `forgeml check` and batch prediction read a CSV through one reader, so they agree.

Each test runs once per caller, through the function that caller really reads with: the checks'
``read_source`` (raw text), the data stage's ``load_source`` (typed, markers missing) and batch
prediction's ``input_batches`` (streamed in small blocks, input columns as text).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from forgeml.checks.reading import read_source
from forgeml.data import load_source
from forgeml.data.csv_reader import MISSING_MARKERS
from forgeml.deploy import predict as predict_module
from forgeml.errors import DataError

CALLERS = ["check", "train", "predict"]
# A byte-order mark, a quoted comma, a value spanning two lines, "?" and " ?" (UCI Adult writes
# ", ?"), an empty cell and "abc" among the numbers of `age`.
QUIRKY_LINES = [
    "\ufeffid,note,age,city",
    '1,"two\nlines",30, ?',
    "2,plain,abc,Paris",
    '3,"quoted, comma",41,?',
    "4, ?,,Lyon",
]
QUIRKY = "\n".join(QUIRKY_LINES) + "\n"


def read_as(caller: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str | None]]:
    """The columns as ``caller`` sees them, cells as text (None where the caller reads no value)."""
    if caller == "check":
        columns = read_source(path).columns
        # The checks see markers as written; the data stage's own list decides what is missing.
        return {
            name: [None if v in MISSING_MARKERS else _text(v) for v in values.to_pylist()]
            for name, values in columns.items()
        }
    if caller == "train":
        frame = load_source(str(path), None, require_target=False).table
    else:
        monkeypatch.setattr(predict_module, "CSV_BLOCK_BYTES", 4096)  # many blocks, even for small files
        names = path.read_bytes().decode("utf-8-sig", "replace").split("\n", 1)[0].split(",")
        batches, _ = predict_module.input_batches(path, names)
        frame = pd.concat([batch.to_pandas() for batch in batches], ignore_index=True)
    return {str(name): [_text(v) for v in values] for name, values in frame.items()}


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@pytest.mark.parametrize("caller", CALLERS)
def test_the_three_callers_read_a_quirky_file_alike(
    caller: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "quirky.csv"
    path.write_text(QUIRKY, encoding="utf-8")
    frame = read_as(caller, path, monkeypatch)
    assert list(frame) == ["id", "note", "age", "city"]  # no BOM in the first name
    assert frame == {
        "id": ["1", "2", "3", "4"],
        "note": ["two\nlines", "plain", "quoted, comma", " ?"],
        "age": ["30", "abc", "41", None],
        # "?" is a missing marker; " ?" is kept as written (the checks flag it as `missing_markers`).
        "city": [" ?", "Paris", None, "Lyon"],
    }


def test_the_checks_see_the_cells_as_written(tmp_path: Path) -> None:
    path = tmp_path / "quirky.csv"
    path.write_text(QUIRKY, encoding="utf-8")
    columns = read_source(path).columns
    assert columns["city"].to_pylist() == [" ?", "Paris", "?", "Lyon"]
    assert columns["age"].to_pylist() == ["30", "abc", "41", ""]
    assert columns["id"].to_pylist() == [1, 2, 3, 4]  # plain numbers are typed


@pytest.mark.parametrize("caller", CALLERS)
def test_a_quoted_newline_across_a_block_boundary(
    caller: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fixed once in the reader (pyarrow's newlines_in_values): before, training failed on this
    # file ("Expected 2 columns, got 1") and prediction too ("CSV parser got out of sync with
    # chunker") once such a value straddled two blocks; only the checks' reader read it.
    rows = 40_000
    path = tmp_path / "notes.csv"
    path.write_text(
        "id,note\n" + "".join(f'{i},"line one of {i}\nline two"\n' for i in range(rows)), encoding="utf-8"
    )
    frame = read_as(caller, path, monkeypatch)
    assert len(frame["note"]) == rows
    assert frame["note"][-1] == f"line one of {rows - 1}\nline two"


@pytest.mark.parametrize("caller", CALLERS)
def test_a_header_longer_than_any_peek(caller: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 15,000 names (about 100 KB): before, training (an 8 KiB peek) and checking (64 KiB) cut the
    # last name short and reported a duplicate column that is not there, and prediction's first
    # block held no whole line ("cannot infer number of columns").
    names = [f"c{i}" for i in range(15_000)]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n", encoding="utf-8")
    assert list(read_as(caller, path, monkeypatch)) == names


@pytest.mark.parametrize("caller", CALLERS)
def test_a_ragged_row_is_named_by_its_line(
    caller: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n7,8,9\n", encoding="utf-8")
    if caller == "check":  # the checks set the row aside and report it
        table = read_source(path)
        assert [(bad.row, bad.reason) for bad in table.bad_rows] == [(2, "expected 3 fields, found 2")]
        assert table.source_rows([0, 1]) == [1, 3]
        return
    with pytest.raises(DataError, match=r"line 3: expected 3 fields .* found 2") as caught:
        read_as(caller, path, monkeypatch)
    assert caught.value.row == 2


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("content", "message"),
    [
        # a UTF-16 file (byte-order mark) and a Latin-1 header are decoded now (tests/data/test_dialect.py);
        # a header with a bad byte in an otherwise UTF-8 file (a valid "\xc3\xa9") is still refused.
        (b"\x7fELF\x02\x01\x00\x00binary", "binary"),
        (b"a,a,b\n1,2,3\n", "duplicate column names in the header: a"),
        (b"a,\xff,\xc3\xa9\n1,2,3\n", "header is not valid UTF-8"),
    ],
)
def test_unreadable_files_are_refused_alike(
    caller: str, content: bytes, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_as(caller, path, monkeypatch)
