"""Reading files: every malformed input gets a DataError naming the file and, where it can, the line."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml.data import load_source
from forgeml.data.tables import read_table
from forgeml.errors import ConfigError, DataError


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_reads_csv_parquet_and_jsonl_alike(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.5, 2.0, None], "c": ["a", None, "b"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for name in ("t.csv", "t.parquet", "t.jsonl"):
        read = read_table(tmp_path / name)
        assert list(read.columns) == ["x", "c"]
        assert read["x"].isna().tolist() == [False, False, True]
        assert read["c"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("content", "line", "found"), [("a,b,c\n1,2,3\n4,5\n", 3, 2), ("a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n", 4, 4)]
)
def test_ragged_row_names_the_line(tmp_path: Path, content: str, line: int, found: int) -> None:
    with pytest.raises(DataError, match=rf"line {line}: expected 3 fields .* found {found}"):
        read_table(write(tmp_path / "r.csv", content))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"a,b\n", "no rows"),
        (b"\x7fELF\x02\x01\x00\x00binary", "binary"),
        (b"a,a,b\n1,2,3\n", "duplicate column names in the header: a"),
        # a valid "\xc3\xa9" makes it a UTF-8 file with a corrupt row (bytes alone would read as cp1252)
        (b"a,b\n\xc3\xa9,1\n1,\xff\xfe\n", "UTF-8"),
    ],
)
def test_malformed_csv(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_table(write(tmp_path / "bad.csv", content))


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        read_table(write(tmp_path / "t.xlsx", "x"))


def test_bad_jsonl_line_and_corrupt_parquet(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        read_table(write(tmp_path / "t.jsonl", '{"a": 1}\n{"a": \n'))
    with pytest.raises(DataError, match="corrupt or unreadable Parquet"):
        read_table(write(tmp_path / "t.parquet", b"PAR1garbagePAR1"))


def test_target_column_not_in_data(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"target column 'label' not found. Columns are: a, b"):
        load_source(str(path), "label")
    with pytest.raises(ConfigError, match="data.target is required"):
        load_source(str(path), None)


def test_npz_images_in_any_layout(tmp_path: Path) -> None:
    images = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)  # channels last
    np.savez(tmp_path / "i.npz", x=images, y=np.array([0, 1]))
    raw = load_source(str(tmp_path / "i.npz"), None)
    assert raw.images.shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(raw.images[1, 2], images[1, :, :, 2])
    assert raw.target.tolist() == [0, 1]


def test_npz_with_object_arrays_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="not a readable .npz"):
        load_source(str(tmp_path / "o.npz"), None)


@pytest.mark.parametrize("name", ["digits", "iris", "wine", "breast_cancer", "diabetes"])
def test_bundled_sklearn_sets(name: str) -> None:
    raw = load_source(f"sklearn:{name}", None)
    assert len(raw) == len(raw.target) > 100
    assert (raw.images is not None) == (name == "digits")
