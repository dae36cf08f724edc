"""How a CSV file is written: its encoding, delimiter and decimal mark, decided from its first bytes.

The one CSV reader (:mod:`forgeml.data.csv_reader`) asks :func:`sniff` before it reads, so training,
``forgeml check`` and batch prediction decide alike, and the checks report what was decided.

Rules (each tested in tests/data/test_dialect.py):

* **Encoding.** A UTF-16 byte-order mark means UTF-16; a UTF-8 one, UTF-8. Otherwise the first
  :data:`SAMPLE_BYTES` are decoded as UTF-8. If that fails and the sample holds *no* valid multi-byte
  UTF-8 sequence at all, the file was written in a single-byte code page: cp1252 (Windows' Western
  European page, whose printable range is a superset of Latin-1's) or Latin-1 when a byte undefined in
  cp1252 occurs. A sample that mixes valid UTF-8 sequences with invalid bytes stays UTF-8: it is a
  UTF-8 file with a few corrupt rows, which the checks set aside and name. charset-normalizer was not
  used: its guesses on short samples of accented Western text vary between code pages (cp1250,
  cp1252, mac-roman), while this rule needs no statistics and is exact for the three encodings a
  spreadsheet writes.
* **Delimiter.** ``.tsv`` is tab-separated. Otherwise each candidate (``,`` ``;`` tab ``|``) splits the
  first :data:`SAMPLE_LINES` lines with the quote-aware ``csv`` module; a comma wins when it gives every
  line the same number of fields (more than one), else the first candidate that does. ``csv.Sniffer``
  was not used: it counts character frequencies without knowing about quotes, so a comma-separated
  file with ``;`` inside quoted text, or a ``;`` file whose decimal commas are as frequent as its
  semicolons, can fool it.
* **Decimal mark.** With a delimiter other than the comma, a sampled field written like ``3,14``
  and none written like ``3.14`` means decimal commas (the European spreadsheet convention).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

SAMPLE_BYTES = 1 << 20  # bytes looked at for the encoding
SAMPLE_LINES = 20  # lines looked at for the delimiter and decimal mark
HEAD_BYTES = 64 * 1024  # the lines are taken from this many bytes
DELIMITERS = (",", ";", "\t", "|")
UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")
UTF8_MARK = b"\xef\xbb\xbf"
CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_COMMA_DECIMAL = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
_DOT_DECIMAL = re.compile(r"^\s*[+-]?\d*\.\d+\s*$")


@dataclass(frozen=True)
class Dialect:
    """What the reader decided about a CSV file, and why (``reasons``: one phrase per non-default choice)."""

    encoding: str = "utf-8"  # a Python codec name: utf-8, utf-16, cp1252 or latin-1
    delimiter: str = ","
    decimal: str = "."
    byte_order_mark: bool = False
    reasons: tuple[str, ...] = ()

    @property
    def default(self) -> bool:
        return self.encoding == "utf-8" and self.delimiter == "," and self.decimal == "."

    def describe(self) -> str:
        """One line for a finding or a log: encoding, delimiter, decimal mark, then the reasons."""
        mark = " with a byte-order mark" if self.byte_order_mark else ""
        decimal = "decimal comma" if self.decimal == "," else "decimal point"
        what = f"read as {self.encoding}{mark}, delimiter {self.delimiter!r}, {decimal}"
        return what + (f" ({'; '.join(self.reasons)})" if self.reasons else "")


def sniff(path: Path) -> Dialect:
    """The encoding, delimiter and decimal mark of the CSV at ``path`` (see the module docstring)."""
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    encoding, bom, reasons = _encoding(sample)
    head = sample[:HEAD_BYTES]
    text = _first_text(_decode_head(head, encoding), complete=len(sample) <= HEAD_BYTES)
    if path.suffix.lower() == ".tsv":
        return Dialect(encoding, "\t", ".", bom, tuple(reasons))
    delimiter = _delimiter(text)
    if delimiter != ",":
        reasons.append(
            f"{delimiter!r} is the delimiter that gives each of the first lines the same field count"
        )
    decimal = _decimal(text, delimiter)
    if decimal == ",":
        reasons.append("numbers are written with a decimal comma, as 3,14")
    return Dialect(encoding, delimiter, decimal, bom, tuple(reasons))


def _encoding(sample: bytes) -> tuple[str, bool, list[str]]:
    if sample[:2] in UTF16_MARKS:
        return "utf-16", True, ["a UTF-16 byte-order mark"]
    if sample.startswith(UTF8_MARK):
        return "utf-8", True, []
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8", False, []
    decoded = sample.decode("utf-8", errors="replace")
    if any(ord(char) > 0x7F and char != "\ufffd" for char in decoded):
        return "utf-8", False, []  # valid UTF-8 text with some corrupt bytes: those rows are set aside
    if CP1252_UNDEFINED.search(sample):
        return "latin-1", False, ["not UTF-8 and holds bytes cp1252 leaves undefined"]
    return (
        "cp1252",
        False,
        ["not UTF-8: no valid multi-byte UTF-8 sequence, so a Western single-byte code page"],
    )


def _decode_head(sample: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder("utf-16" if encoding == "utf-16" else encoding)(errors="replace")
    return decoder.decode(sample, final=False).removeprefix("\ufeff")


def _first_text(text: str, *, complete: bool) -> str:
    """The text of the first lines; a last line the head may have cut is dropped."""
    if not complete and "\n" in text.rstrip("\r\n"):
        text = text[: text.rstrip("\r\n").rindex("\n")]
    return text


def _records(text: str, delimiter: str) -> list[list[str]]:
    """The first SAMPLE_LINES non-blank records, split quote-aware (a quoted value may span lines)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    records: list[list[str]] = []
    try:
        for record in reader:
            if any(field.strip() for field in record):
                records.append(record)
            if len(records) == SAMPLE_LINES:
                break
    except csv.Error:
        return []
    return records


def _delimiter(text: str) -> str:
    """The comma when it splits every sampled record alike into 2+ fields; else the first candidate that does."""
    for delimiter in DELIMITERS:
        counts = {len(record) for record in _records(text, delimiter)}
        if len(counts) == 1 and counts.pop() > 1:
            return delimiter
    return ","


def _decimal(text: str, delimiter: str) -> str:
    if delimiter == ",":
        return "."
    fields = [field for record in _records(text, delimiter)[1:] for field in record]
    comma = any(_COMMA_DECIMAL.match(field) for field in fields)
    dot = any(_DOT_DECIMAL.match(field) for field in fields)
    return "," if comma and not dot else "."
