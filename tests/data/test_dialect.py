"""The reader decides a CSV file's encoding, delimiter and decimal mark alike for all three callers.

Each quirk is a real file shape that used to fail: a `;`-separated file read as one column, a
decimal-comma file and a Latin-1 file "with a header but no rows", a UTF-16 file refused. The rule
for each decision is in ``forgeml.data.dialect``'s docstring.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_one_csv_reader import CALLERS, read_as

from forgeml.data.dialect import Dialect, sniff

ROWS = [("Zoë", "1,5", "oui"), ("Müller", "2,25", "non"), ("Ångström", "-3,5", "oui")]


def _write(path: Path, text: str, encoding: str) -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8"),
        ("utf-16", "utf-16"),
        ("latin-1", "cp1252"),
        ("cp1252", "cp1252"),
    ],
)
def test_encoding_rule(encoding: str, expected: str, tmp_path: Path) -> None:
    text = "name,city\n" + "".join(f"{name},Orléans\n" for name, _, _ in ROWS)
    if encoding == "cp1252":
        text += "Euro,€ zone\n"  # 0x80: a cp1252-only character
    dialect = sniff(_write(tmp_path / "f.csv", text, encoding))
    assert dialect.encoding == expected
    assert dialect.delimiter == "," and dialect.decimal == "."


def test_bytes_undefined_in_cp1252_fall_back_to_latin1(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n\x81x,caf\xe9\n")
    assert sniff(path).encoding == "latin-1"


def test_a_utf8_file_with_one_corrupt_byte_stays_utf8(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes("a,b\nzürich,1\n".encode() + b"orl\xe9ans,2\n")
    assert (
        sniff(path).encoding == "utf-8"
    )  # the bad row is set aside by the checks, not the whole file re-read


def test_semicolon_and_decimal_comma(tmp_path: Path) -> None:
    text = "name;price;ok\n" + "".join(f"{n};{p};{o}\n" for n, p, o in ROWS)
    dialect = sniff(_write(tmp_path / "f.csv", text, "utf-8"))
    assert (dialect.delimiter, dialect.decimal) == (";", ",")
    assert "decimal comma" in dialect.describe() and "';'" in dialect.describe()


def test_a_comma_file_with_semicolons_in_quoted_text_stays_comma(tmp_path: Path) -> None:
    text = 'id,note\n1,"a; b; c"\n2,"d; e"\n3,plain\n'
    assert sniff(_write(tmp_path / "f.csv", text, "utf-8")) == Dialect()


def test_semicolon_file_with_decimal_points_keeps_the_point(tmp_path: Path) -> None:
    text = "a;b\n1.5;x\n2.5;y\n"
    assert (sniff(_write(tmp_path / "f.csv", text, "utf-8")).decimal) == "."


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-8-sig"])
def test_every_caller_reads_a_semicolon_decimal_comma_file_in_any_encoding(
    caller: str, encoding: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "name;price;ok\n" + "".join(f"{n};{p};{o}\n" for n, p, o in ROWS)
    path = _write(tmp_path / "f.csv", text, encoding)
    if caller == "predict":  # read_as splits the header on commas itself
        monkeypatch.setattr(Path, "read_bytes", lambda self: b"name,price,ok\n")
    columns = read_as(caller, path, monkeypatch)
    assert list(columns) == ["name", "price", "ok"]
    assert columns["name"] == [n for n, _, _ in ROWS]
    if caller != "predict":  # prediction reads its inputs as text; the features parse them
        assert columns["price"] == ["1.5", "2.25", "-3.5"]
