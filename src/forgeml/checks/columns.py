"""Checks that look at one column at a time: missing values, types, constants, ids, outliers, text.

Each function takes a column's :class:`Profile` and returns findings; rows are reported as 1-based
source data rows through ``rows_of`` (which accounts for rows the reader had to skip).
Personal-data patterns run with pandas ``.str`` methods on the first ``TEXT_SAMPLE`` present values
of each string column, so their cost does not grow with the file.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from forgeml.checks import catalogue as cat
from forgeml.checks.report import Finding
from forgeml.checks.schema import CATEGORY_CARDINALITY, DATE_PATTERN, Profile, number_bits
from forgeml.data.tables import MISSING_MARKERS

RowsOf = Callable[[np.ndarray], list[int]]  # 0-based positions -> 1-based source rows
# The local part and the domain are bounded as RFC 5321 bounds them (64 and 255 octets). Unbounded,
# ``[...]+@`` retried from every start position of a long run of letters without an "@": a single
# 200,000-character value took 47 s (quadratic); bounded, the cost is linear in the text's length.
EMAIL = r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,255}\.[A-Za-z]{2,}"
# Digit groups with separators (+44 20 7946 0958, (555) 123-4567); a group that runs on into more
# digits ("2000-100 1000-50", coupon amounts) is not a phone number.
PHONE = r"(?<!\d)(?<!\d[.,-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}[ .-]\d{2,4}[ .-]\d{2,4}(?!\d|[.,-]\d)"
# Chinese numbers are written without spaces between groups: mobiles are 11 digits 1[3-9]xxxxxxxxx
# (optionally +86, or 3-4-4 with hyphens or spaces), landlines 0 + area code - 7 or 8 digits, and
# service lines 400/800-xxx-xxxx. Spaced digit groups in a Chinese text are prices, room or order
# numbers ("199 299 399元", "8012 8013"), so the grouped pattern above skips texts with Han characters.
CHINESE_PHONE = (
    r"(?<!\d)(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)"
    r"|(?<![\d-])0\d{2,3}-\d{7,8}(?![\d-])"
    r"|(?<![\d-])[48]00-?\d{3}-?\d{4}(?![\d-])"
)
HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"
CARD = r"\b(?:\d[ -]?){12,18}\d\b"
# Dates and times inside a value, blanked before the phone pattern runs: "2021-03-04 10:00" has the
# digit groups of a phone number.
DATE_IN_TEXT = (
    r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}"
    r"|\d{4}[/.]\d{1,2}[/.]\d{1,2}"  # 2008.10.12, 2008/10/12 (the order Chinese dates are written in)
)
ISO_OFFSET = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?P<offset>Z|[+-]\d{2}:?\d{2})?$"
CATEGORY_KINDS = ("categorical", "boolean", "text", "identifier", "datetime", "constant")


def column_findings(
    profile: Profile, rows_of: RowsOf, *, is_target: bool, typed_source: bool
) -> list[Finding]:
    """Every per-column check for one column (the target skips the feature-only ones).

    ``typed_source``: the file stores types (Parquet, JSON Lines, a DataFrame), so a text column of
    numbers is worth reporting; in a CSV every column is text.
    """
    findings = _missing(profile, rows_of, is_target)
    if profile.present == 0:
        return findings
    findings += _types(profile, rows_of, typed_source)
    if not is_target:
        findings += _shape(profile, rows_of)
        findings += _text(profile, rows_of)
    return findings


def first(mask: np.ndarray) -> np.ndarray:
    """Positions of the first few True values."""
    return np.flatnonzero(mask)[: cat.EXAMPLE_ROWS]


def thin(rows: int) -> int:
    """A slicing step that keeps about ``SAMPLE_ROWS`` evenly spaced rows (1 for small tables).

    Statistics that only decide *whether* to look closer (quartiles, the most common value, the
    leakage score) use every ``thin(n)``-th row; the counts and rows reported are always exact.
    """
    return max(1, rows // cat.SAMPLE_ROWS)


def _missing(profile: Profile, rows_of: RowsOf, is_target: bool) -> list[Finding]:
    findings: list[Finding] = []
    count, rows = int(profile.missing.sum()), len(profile.missing)
    odd = {s: n for s, n in profile.markers.items() if s not in MISSING_MARKERS}
    if odd:
        spelled = ", ".join(f"{s!r} ({n})" for s, n in odd.items())
        mask = np.asarray(pc.is_in(profile.raw, value_set=pa.array(list(odd))).fill_null(False))
        message = f"missing values written as {spelled}; other readers take them as real values"
        findings.append(
            Finding("missing_markers", profile.name, message, _rows(mask, rows_of), sum(odd.values()))
        )
    if count == 0 or is_target:  # a missing target is its own (blocking) check
        return findings
    share = f"{count} of {rows} values ({count / rows:.1%}) are missing"
    if count == rows:
        return [*findings, Finding("empty_column", profile.name, "every value is missing", (), count)]
    check_id = "missing_values" if count / rows >= cat.MISSING_WARNING_RATE else "some_missing_values"
    advice = None
    if profile.kind in CATEGORY_KINDS:  # features.numeric.impute does not touch this column
        advice = (
            "training gives a missing category the unknown bucket it shares with values unseen in training "
            "(features.categorical); if missing means something, write it as a value of its own, e.g. 'none'"
        )
    finding = Finding(check_id, profile.name, share, _rows(profile.missing, rows_of), count, advice=advice)
    return [*findings, finding]


def _types(profile: Profile, rows_of: RowsOf, typed_source: bool) -> list[Finding]:
    findings: list[Finding] = []
    name, numbers = profile.name, profile.numbers
    if profile.not_numbers is not None and profile.not_numbers.any():
        bad = profile.not_numbers
        at = first(bad)
        named = ", ".join(
            f"row {row} {value!r}" for row, value in zip(rows_of(at), _values_at(profile, at), strict=True)
        )
        numeric = profile.kind == "numeric"
        outcome = "training reads them as missing" if numeric else "training reads the column as categories"
        message = f"{int(bad.sum())} values are not numbers in a mostly numeric column ({named}); {outcome}"
        findings.append(Finding("mixed_types", name, message, _rows(bad, rows_of), int(bad.sum())))
    if typed_source and profile.kind == "numeric" and profile.textual:
        findings.append(Finding("numeric_strings", name, "numbers stored as text", (), profile.present))
    if numbers is not None:
        infinite = np.isinf(numbers)
        if infinite.any():
            message = f"{int(infinite.sum())} infinite values"
            findings.append(
                Finding("infinite_values", name, message, _rows(infinite, rows_of), int(infinite.sum()))
            )
    if profile.kind == "datetime":
        not_dates = ~_per_value(profile, lambda words: pc.match_substring_regex(words, DATE_PATTERN), True)
        if not_dates.any():
            message = f"{int(not_dates.sum())} values are not ISO-8601 dates"
            findings.append(
                Finding("unparseable_dates", name, message, _rows(not_dates, rows_of), int(not_dates.sum()))
            )
        findings += _time_zones(profile, rows_of)
    return findings


def _time_zones(profile: Profile, rows_of: RowsOf) -> list[Finding]:
    """Timestamps that mix UTC offsets (or offsets and none): compared as written, they mis-order."""
    if profile.coded is None:
        return []
    found = pc.extract_regex(profile.coded.words, ISO_OFFSET)
    valid = np.asarray(found.is_valid())
    offsets = np.asarray(found.field("offset").to_numpy(zero_copy_only=False), dtype=object)
    offsets = np.where(valid, offsets, None)
    seen = sorted({o if o else "none" for o in offsets[valid]})
    if len(seen) < 2:
        return []
    per_word = np.append(valid & (offsets != offsets[valid][0]), False)  # rows unlike the first
    mask = per_word[profile.coded.codes]
    message = f"timestamps with different UTC offsets: {', '.join(seen[:5])}"
    return [Finding("mixed_timezones", profile.name, message, _rows(mask, rows_of), int(mask.sum()))]


def _shape(profile: Profile, rows_of: RowsOf) -> list[Finding]:
    name, kind = profile.name, profile.kind
    if kind == "constant":
        value = profile.schema.examples[0] if profile.schema.examples else None
        return [Finding("constant_column", name, f"every present value is {value!r}", (), profile.present)]
    if kind == "identifier":
        message = f"{profile.schema.distinct} distinct values in {profile.present} rows: looks like an id"
        return [Finding("identifier_column", name, message, (), profile.present)]
    findings: list[Finding] = []
    top = _most_common(profile)
    if (
        top is not None
        and len(profile.missing) >= 100
        and top[1] >= cat.NEAR_CONSTANT_SHARE * profile.present
    ):
        message = f"{top[0]!r} is {top[1] / profile.present:.1%} of present values"
        findings.append(Finding("near_constant_column", name, message, (), top[1]))
    if kind == "numeric" and profile.numbers is not None:
        findings += _outliers(profile, rows_of)
    if kind in ("categorical", "boolean") and profile.spellings:
        findings += _variants(profile, rows_of)
    return findings


def _most_common(profile: Profile) -> tuple[object, int] | None:
    """The most frequent present value and its count (hash-based, no sort of the column)."""
    if profile.schema.distinct > 0.01 * profile.present + 1:
        return None  # no value can cover 99% of the rows
    if profile.numbers is not None and profile.kind in ("numeric", "boolean"):
        present = profile.numbers[~profile.missing] if profile.missing.any() else profile.numbers
        step = thin(len(present))
        if step > 1:  # only count exactly when a sample says one value dominates
            mode = pc.mode(pa.array(number_bits(present[::step])))
            if not len(mode) or mode[0]["count"].as_py() < 0.95 * len(present[::step]):
                return None
        mode = pc.mode(pa.array(number_bits(present)))
        if not len(mode):
            return None
        value = np.array([mode[0]["mode"].as_py()], dtype=np.int64).view(np.float64)[0]
        return float(value), mode[0]["count"].as_py()
    if not profile.textual or profile.schema.distinct > CATEGORY_CARDINALITY:
        return None
    if profile.coded is not None:  # counts per distinct value, from the codes
        coded = profile.coded
        tally = np.bincount(coded.codes[coded.codes >= 0], minlength=len(coded.words))
        if not tally.sum():
            return None
        best = int(tally.argmax())  # the first of equal counts, as pc.index below
        return coded.words[best].as_py(), int(tally[best])
    counts = pc.value_counts(profile.strings.drop_null())
    if len(counts) == 0:
        return None
    best = pc.index(counts.field("counts"), pc.max(counts.field("counts"))).as_py()
    return counts.field("values")[best].as_py(), counts.field("counts")[best].as_py()


def _outliers(profile: Profile, rows_of: RowsOf) -> list[Finding]:
    numbers = profile.numbers
    finite = np.isfinite(numbers)
    if finite.sum() < 20:
        return []
    sample = numbers[:: thin(len(numbers))]
    q1, q3 = np.percentile(sample[np.isfinite(sample)], [25, 75])
    spread = q3 - q1
    if spread <= 0:
        return []
    low, high = q1 - cat.OUTLIER_IQR_FACTOR * spread, q3 + cat.OUTLIER_IQR_FACTOR * spread
    with np.errstate(invalid="ignore"):
        outside = finite & ((numbers < low) | (numbers > high))
    count = int(outside.sum())
    if not count:
        return []
    message = f"{count} values outside [{low:.4g}, {high:.4g}] (quartiles ± {cat.OUTLIER_IQR_FACTOR:g} IQR)"
    return [Finding("outliers", profile.name, message, _rows(outside, rows_of), count)]


def variant_groups(spellings: dict[str, int]) -> dict[str, list[str]]:
    """Spellings grouped by their case- and space-insensitive form, only groups with 2+ spellings.

    Each group's list is ordered most frequent first (ties: alphabetical), so its head is the
    spelling ``--fix`` keeps.
    """
    groups: dict[str, list[str]] = {}
    for spelling in spellings:
        groups.setdefault(spelling.strip().casefold(), []).append(spelling)
    return {
        key: sorted(members, key=lambda s: (-spellings[s], s))
        for key, members in groups.items()
        if len(members) > 1
    }


def _variants(profile: Profile, rows_of: RowsOf) -> list[Finding]:
    groups = variant_groups(profile.spellings)
    if not groups:
        return []
    minority = [s for members in groups.values() for s in members[1:]]
    mask = np.asarray(pc.is_in(profile.raw, value_set=pa.array(minority)).fill_null(False))
    described = "; ".join(" / ".join(repr(s) for s in members) for members in list(groups.values())[:3])
    message = f"{len(groups)} values written in several ways: {described}"
    return [Finding("category_variants", profile.name, message, _rows(mask, rows_of), int(mask.sum()))]


def _text(profile: Profile, rows_of: RowsOf) -> list[Finding]:
    if not profile.textual or profile.kind in ("numeric", "boolean", "constant", "datetime"):
        return []
    findings: list[Finding] = []
    if profile.kind == "text":
        long = _per_value(
            profile, lambda words: pc.greater(pc.utf8_length(words), cat.LONG_TEXT_CHARS), False
        )
        if long.any():
            message = f"{int(long.sum())} values longer than {cat.LONG_TEXT_CHARS:,} characters"
            findings.append(
                Finding("very_long_text", profile.name, message, _rows(long, rows_of), int(long.sum()))
            )
    return findings + _personal_data(profile, rows_of)


def _personal_data(profile: Profile, rows_of: RowsOf) -> list[Finding]:
    positions = np.flatnonzero(~profile.missing)[: cat.TEXT_SAMPLE]
    values = pd.Series(_values_at(profile, positions), dtype=object)
    codes, sample = pd.factorize(values)  # patterns run once per distinct value
    sample = pd.Series(sample, dtype=object)
    kinds: list[str] = []
    hits = np.zeros(len(sample), dtype=bool)
    undated = sample.str.replace(DATE_IN_TEXT, " ", regex=True)
    emails = sample.str.contains(EMAIL, regex=True).to_numpy(dtype=bool)
    grouped = ~undated.str.contains(HAN, regex=True) & undated.str.contains(PHONE, regex=True)
    phones = (undated.str.contains(CHINESE_PHONE, regex=True) | grouped).to_numpy(dtype=bool)
    for label, found in (("e-mail addresses", emails), ("phone numbers", phones)):
        if found.any():
            kinds.append(label)
            hits |= found
    cards = sample.str.findall(CARD)
    card_hits = cards.map(lambda numbers: any(luhn_valid(n) for n in numbers)).to_numpy(dtype=bool)
    if card_hits.any():
        kinds.append("payment card numbers (Luhn-valid)")
        hits |= card_hits
    hits = hits[codes]
    if not kinds:
        return []
    scope = "" if len(positions) == profile.present else f" in the first {len(positions):,} values"
    message = f"{', '.join(kinds)} found in {int(hits.sum())} values{scope}"
    return [
        Finding(
            "personal_data",
            profile.name,
            message,
            tuple(rows_of(positions[hits][: cat.EXAMPLE_ROWS])),
            int(hits.sum()),
        )
    ]


def luhn_valid(number: str) -> bool:
    """The Luhn checksum that every payment card number satisfies (filters out random digit runs)."""
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _values_at(profile: Profile, positions: np.ndarray) -> list[str | None]:
    """The trimmed string values at some row positions."""
    if profile.coded is not None:
        return profile.coded.rows(positions)
    return profile.strings.take(pa.array(positions, type=pa.int64())).to_pylist()


def _per_value(profile: Profile, test: Callable[[pa.Array], pa.Array], when_missing: bool) -> np.ndarray:
    """(N,) bool: a vectorised string test, run once per distinct value when the column is coded."""
    if profile.coded is not None:
        per_word = np.append(np.asarray(test(profile.coded.words).to_numpy(False), dtype=bool), when_missing)
        return per_word[profile.coded.codes]
    return np.asarray(test(profile.strings).fill_null(when_missing))


def _rows(mask: np.ndarray, rows_of: RowsOf) -> tuple[int, ...]:
    return tuple(rows_of(first(mask)))
