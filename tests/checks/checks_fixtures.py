"""Dirty tables made on purpose: each planted problem alone, and all of them mixed in one file.

Every case is a CSV text (so raw spellings such as "NA" or " Paris" survive exactly) plus what the
checks must report: the check id, the column and the 1-based data rows (row 1 = line 2).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 200
TARGET = "churned"


def clean_frame(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """A clean churn table (text cells): numeric, categorical and a yes/no target that needs both."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows).round(2)
    income = rng.normal(50_000, 15_000, rows).round(2)
    city = rng.choice(["paris", "lyon", "nice"], rows)
    plan = rng.choice(["free", "pro"], rows)
    score = (age - 40) / 12 + (income - 50_000) / 15_000 + np.where(city == "paris", 1.5, -0.5)
    score += np.where(plan == "pro", 1.0, -1.0) + rng.normal(0, 0.8, rows)
    churned = np.where(score > 0, "yes", "no")
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "plan": plan, TARGET: churned})
    return frame.astype(str)


def to_csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


@dataclass(frozen=True)
class Case:
    """A dirty CSV and the finding it must produce."""

    name: str
    text: str | bytes
    check_id: str
    column: str | None
    rows: tuple[int, ...]  # expected first rows (empty: not asserted)

    def write(self, folder: Path) -> Path:
        path = folder / f"{self.name}.csv"
        if isinstance(self.text, bytes):
            path.write_bytes(self.text)
        else:
            path.write_text(self.text, encoding="utf-8")
        return path


def _edit(rows: dict[int, dict[str, str]], frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Set cells by 1-based data row: ``{row: {column: value}}``."""
    frame = clean_frame() if frame is None else frame
    for row, cells in rows.items():
        for column, value in cells.items():
            frame.loc[row - 1, column] = value
    return frame


def _insert_line(text: str, after_row: int, line: str) -> str:
    lines = text.splitlines(keepends=True)
    lines.insert(after_row + 1, line + "\n")
    return "".join(lines)


def single_cases() -> list[Case]:
    """One case per planted problem."""
    frame = clean_frame()
    cases = [
        Case(
            "missing",
            to_csv(_edit({r: {"age": ""} for r in range(3, 23)})),
            "missing_values",
            "age",
            (3, 4, 5, 6, 7),
        ),
        Case(
            "markers",
            to_csv(_edit({5: {"income": "-"}, 7: {"income": "  "}})),
            "missing_markers",
            "income",
            (5, 7),
        ),
        Case("ragged", _insert_line(to_csv(frame), 10, "1,2,3"), "unparseable_rows", None, (11,)),
        Case(
            "quote",
            _insert_line(to_csv(frame), 20, '33,"41000,paris,pro,yes'),
            "unparseable_rows",
            None,
            (21,),
        ),
        Case("encoding", _encoding_case(frame), "unparseable_rows", None, (17,)),
        Case("duplicates", to_csv(_edit({51: frame.iloc[19].to_dict()})), "duplicate_rows", None, (51,)),
        Case(
            "conflict",
            to_csv(_edit({51: {**frame.iloc[19].to_dict(), TARGET: _flip(frame.iloc[19][TARGET])}})),
            "conflicting_labels",
            TARGET,
            (20, 51),
        ),  # fmt: skip
        Case(
            "no_target", to_csv(_edit({4: {TARGET: ""}, 9: {TARGET: "NA"}})), "missing_target", TARGET, (4, 9)
        ),
        Case("constant", to_csv(frame.assign(country="fr")), "constant_column", "country", ()),
        Case(
            "near_constant",
            to_csv(frame.assign(flag=["b" if i == 9 else "a" for i in range(ROWS)])),
            "near_constant_column",
            "flag",
            (),
        ),  # fmt: skip
        Case(
            "identifier",
            to_csv(frame.assign(customer=[f"C-{i:05d}" for i in range(ROWS)])),
            "identifier_column",
            "customer",
            (),
        ),
        Case(
            "row_number",
            to_csv(frame.assign(row_id=[str(i + 1) for i in range(ROWS)])),
            "identifier_column",
            "row_id",
            (),
        ),
        Case("mixed", to_csv(_edit({8: {"age": "abc"}})), "mixed_types", "age", (8,)),
        Case("outlier", to_csv(_edit({12: {"income": "990000000"}})), "outliers", "income", (12,)),
        Case("infinite", to_csv(_edit({15: {"age": "inf"}})), "infinite_values", "age", (15,)),
        Case(
            "variants",
            to_csv(_edit({6: {"city": "Paris "}, 13: {"city": "PARIS"}})),
            "category_variants",
            "city",
            (6, 13),
        ),
        Case(
            "imbalance",
            to_csv(frame.assign(**{TARGET: ["yes" if i < 10 else "no" for i in range(ROWS)]})),
            "class_imbalance",
            TARGET,
            (),
        ),  # fmt: skip
        Case("too_rare", to_csv(_edit({30: {TARGET: "maybe"}})), "class_too_rare", TARGET, (30,)),
        Case("single_class", to_csv(frame.assign(**{TARGET: "no"})), "single_class_target", TARGET, ()),
        Case(
            "leak",
            to_csv(frame.assign(refund=np.where(frame[TARGET] == "yes", "1", "0"))),
            "target_leakage",
            "refund",
            (),
        ),
        Case(
            "personal",
            to_csv(
                frame.assign(note=_notes({2: "mail me: ann.lee@example.com", 40: "card 4111 1111 1111 1111"}))
            ),
            "personal_data",
            "note",
            (2, 40),
        ),  # fmt: skip
        Case(
            "long_text",
            to_csv(frame.assign(note=_notes({7: "word " * 2500}))),
            "very_long_text",
            "note",
            (7,),
        ),
        Case(
            "dates",
            to_csv(frame.assign(signup=_dates({9: "31/12/2020"}))),
            "unparseable_dates",
            "signup",
            (9,),
        ),
        Case("few_rows", to_csv(frame.head(30)), "too_few_rows", None, ()),
    ]
    return cases


def _flip(label: str) -> str:
    return "no" if label == "yes" else "yes"


def _encoding_case(frame: pd.DataFrame) -> bytes:
    """A UTF-8 file ("zürich" on row 3) with one row whose bytes are Latin-1: that row is set aside.

    Without a valid UTF-8 accent elsewhere the file would read as cp1252 (forgeml.data.dialect).
    """
    edited = _edit({3: {"city": "zürich"}, 17: {"city": "CITY_MARK"}}, frame.copy())
    return to_csv(edited).encode("utf-8").replace(b"CITY_MARK", "orléans".encode("latin-1"))


def _notes(special: dict[int, str]) -> list[str]:
    rng = np.random.default_rng(1)
    words = ["great service", "too expensive for me", "slow app at times", "would recommend to friends"]
    notes = [f"{words[i % 4]} {rng.integers(1000)}" for i in range(ROWS)]
    for row, text in special.items():
        notes[row - 1] = text
    return notes


def _dates(special: dict[int, str]) -> list[str]:
    days = pd.date_range("2020-01-01", periods=ROWS, freq="D").strftime("%Y-%m-%d").tolist()
    for row, text in special.items():
        days[row - 1] = text
    return days


MIXED_IDS = {
    "unparseable_rows", "missing_target", "conflicting_labels", "duplicate_rows", "missing_markers",
    "mixed_types", "infinite_values", "category_variants", "constant_column", "identifier_column",
    "class_too_rare",
}  # fmt: skip


def mixed_dirty_text() -> str:
    """Every fixable problem at once, on a 200-row table (plus one ragged line)."""
    frame = clean_frame().assign(country="fr", customer=[f"C-{i:05d}" for i in range(ROWS)])
    frame = _edit(
        {
            4: {TARGET: ""},
            9: {TARGET: "NA"},
            51: frame.iloc[19].to_dict(),
            52: {**frame.iloc[20].to_dict(), TARGET: _flip(frame.iloc[20][TARGET])},
            5: {"income": "-"},
            8: {"age": "abc"},
            15: {"age": "inf"},
            6: {"city": "Paris "},
            13: {"city": "PARIS"},
            30: {TARGET: "maybe"},
        },
        frame,
    )
    return _insert_line(to_csv(frame), 100, "1,2,3")


def read_back(path: Path) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(path.read_text(encoding="utf-8")))
