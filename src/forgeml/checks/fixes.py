"""Deterministic fixes: clean a table into a NEW file plus a JSON fix log; the input is never touched.

The fixes, in order (each is logged with what changed, how many values or rows, and which rows):

1. ``drop_unparseable_rows``: CSV lines the reader cannot parse are left out.
2. ``normalise_missing``: "NA", "null", "-", "?", whitespace, ... become empty (missing) cells.
3. ``trim_spaces``: surrounding spaces are removed from text values.
4. ``coerce_numeric``: in numeric columns (95%+ numbers) the few non-numbers become missing, and
   ``infinite_to_missing`` turns inf/-inf into missing.
5. ``merge_category_variants``: spellings differing only in case/spaces take the most frequent one.
6. ``drop_empty_column``, ``drop_constant_column``, ``drop_identifier_column`` (never the target;
   not with a test file, whose columns the cleaned copy must keep matching), and
   ``drop_leaking_column``: a feature whose ``target_leakage`` finding blocks (it alone gives a
   classifier the answer; with a test file, ``features.exclude`` leaves it out instead).
7. ``drop_missing_target``: rows without a label.
8. ``resolve_conflicting_labels``: within a group of rows with equal features, rows whose label is
   not the group's most frequent one (ties: the first seen) are dropped.
9. ``drop_duplicate_rows``: exact copies of an earlier row.
10. ``drop_rare_class_rows``: rows of classes with a single row (they cannot be stratified).
11. ``drop_test_overlap`` (with a test file): training rows equal to a row of the test file are
    dropped from the training copy, so the test file stays as it is and measures unseen rows.

Written CSV is safe to open in a spreadsheet: ``escape_formula_cells`` prefixes text cells that
start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return with a single quote, as OWASP's
CSV-injection advice says, so a cell such as ``=cmd|' /C calc'!A0`` shows as text instead of
running. Numbers (``-3``) are numbers, not text, and are written as they are.

Missing values that remain are NOT imputed here: training imputes them with statistics fitted on the
training split only (imputing the whole file first would leak test rows into training). The fixes
repeat until nothing changes, so ``fix(fix(x)) == fix(x)``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pa_parquet

from forgeml import atomic
from forgeml.checks.columns import variant_groups
from forgeml.checks.reading import RawTable, frame_columns, read_source
from forgeml.checks.rows import Target, conflict_mask, describe_target, leakage_finding
from forgeml.checks.runner import Source, resolve_target, row_hashes
from forgeml.checks.schema import Profile, profile_column
from forgeml.data.numbers import NUMBER_PATTERN
from forgeml.errors import DataError

OUTPUT_FORMATS = (".csv", ".parquet", ".jsonl")
FORMULA_START = r"^[=+\-@\t\r]"
MAX_PASSES = 5
LEFT_AS_IS = (
    "Remaining missing values are not imputed: training imputes them from the training split only. "
    "Outliers, near-constant columns, class imbalance, leakage under the blocking score and personal data "
    "are reported, not changed."
)


@dataclass(frozen=True)
class FixResult:
    """Where the cleaned table and its fix log were written, and the fix log itself."""

    output: Path
    log_path: Path
    rows_in: int
    rows_out: int
    log: dict[str, object]


def fix_table(
    source: Source,
    output: str | Path,
    *,
    target: str | None = None,
    task: str = "auto",
    test_source: str | Path | None = None,
) -> FixResult:
    """Apply the documented fixes to ``source`` and write the result to ``output`` (.csv/.parquet/.jsonl).

    With ``test_source``, training rows that equal a test row are dropped too (the test file is not
    changed). The fix log goes to ``<output>.fixlog.json``. Raises DataError for an unsupported
    output type or when ``output`` is the input file itself.
    """
    output = Path(output)
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise DataError(
            f"{output}: the cleaned file must end in {', '.join(OUTPUT_FORMATS)}, got {output.suffix!r}."
        )
    if not isinstance(source, pd.DataFrame) and Path(str(source)).resolve() == output.resolve():
        raise DataError(f"{output}: refusing to overwrite the input; choose another output path with -o.")
    table = read_source(source)
    target = resolve_target(table, target)
    rows_in = table.rows + len(table.bad_rows)
    log: list[dict[str, object]] = []
    if table.bad_rows:
        dropped = [b.row for b in table.bad_rows]
        log.append(
            _entry("drop_unparseable_rows", None, rows=dropped, detail="lines the CSV reader could not parse")
        )
    origin = np.asarray(table.source_rows(np.arange(table.rows)), dtype=np.int64)
    columns_in = list(table.columns)
    for name, detail in ({} if test_source is not None else _leaking_columns(table, target, task)).items():
        table.columns.pop(name)
        log.append(_entry("drop_leaking_column", name, detail=detail))
    frame = None
    for _ in range(MAX_PASSES):
        before = len(log)
        frame, origin = _fix_pass(table, target, task, origin, log, keep_columns=test_source is not None)
        if len(log) == before:
            break
        table = RawTable(table.source, frame_columns(frame), len(frame))
    assert frame is not None
    if test_source is not None:
        frame, origin = _drop_test_overlap(frame, origin, target, task, test_source, log)
    _write(frame, output, log)
    record = {
        "schema_version": 1,
        "source": str(table.source if not isinstance(source, pd.DataFrame) else "<DataFrame>"),
        "output": str(output),
        "target": target,
        "rows_in": rows_in,
        "rows_out": len(frame),
        "rows_dropped": rows_in - len(frame),
        "columns_in": columns_in,
        "columns_out": [str(c) for c in frame.columns],
        "fixes": log,
        "left_as_is": LEFT_AS_IS,
    }
    log_path = output.with_name(output.name + ".fixlog.json")
    atomic.write_text(log_path, json.dumps(record, indent=2) + "\n")
    return FixResult(output, log_path, rows_in, len(frame), record)


def _entry(
    fix: str, column: str | None, *, values: int = 0, rows: list[int] | None = None, detail: str = ""
) -> dict[str, object]:
    rows = rows or []
    return {
        "fix": fix,
        "column": column,
        "values_changed": values,
        "rows_dropped": len(rows),
        "dropped_rows": rows,
        "detail": detail,
    }


def _fix_pass(
    table: RawTable,
    target: str | None,
    task: str,
    origin: np.ndarray,
    log: list,
    *,
    keep_columns: bool = False,
) -> tuple[pd.DataFrame, np.ndarray]:
    """One pass of the fixes. ``keep_columns`` (a test file given): no column is dropped, since the
    model trained on the cleaned copy is evaluated on the test file, whose columns must match."""
    data: dict[str, object] = {}
    target_profile = None
    for name in list(table.columns):
        profile = profile_column(name, table.columns.pop(name))
        is_target = name == target
        if not is_target and not keep_columns and (drop := _column_drop(profile)):
            log.append(_entry(drop, name, values=profile.present, detail=f"column kind {profile.kind}"))
            continue
        data[name] = _clean_values(profile, log, origin)
        if is_target:
            target_profile = profile
    frame = pd.DataFrame(data)
    if target_profile is None:
        keep = ~frame.duplicated().to_numpy()
        return _drop(frame, origin, keep, "drop_duplicate_rows", None, log, "exact copies of an earlier row")
    labels = frame[target].isna().to_numpy()
    frame, origin = _drop(frame, origin, ~labels, "drop_missing_target", target, log, "rows without a label")
    clean_target = profile_column(target, frame_columns(frame[[target]])[target])
    described = describe_target(clean_target, task)
    if described.task == "classification" and len(frame.columns) > 1:
        keep = _majority_label(frame, target)
        frame, origin = _drop(
            frame,
            origin,
            keep,
            "resolve_conflicting_labels",
            target,
            log,
            "kept each feature group's most frequent label",
        )
    frame, origin = _drop(
        frame,
        origin,
        ~frame.duplicated().to_numpy(),
        "drop_duplicate_rows",
        None,
        log,
        "exact copies of an earlier row",
    )
    if described.task == "classification":
        counts = frame[target].map(frame[target].value_counts())
        keep = (counts >= 2).to_numpy()
        frame, origin = _drop(
            frame, origin, keep, "drop_rare_class_rows", target, log, "classes with a single row"
        )
    return frame, origin


def _leaking_columns(table: RawTable, target: str | None, task: str) -> dict[str, str]:
    """Features whose target_leakage finding blocks, with its message (profiled again, not consumed)."""
    if target is None:
        return {}
    described = describe_target(profile_column(target, table.columns[target]), task)
    leaks = {}
    for name, values in table.columns.items():
        leak = None if name == target else leakage_finding(profile_column(name, values), described)
        if leak is not None and leak.severity == "error":
            leaks[name] = leak.message
    return leaks


def _column_drop(profile: Profile) -> str | None:
    if profile.present == 0:
        return "drop_empty_column"
    return {"constant": "drop_constant_column", "identifier": "drop_identifier_column"}.get(profile.kind)


def _clean_values(profile: Profile, log: list, origin: np.ndarray) -> pd.Series | np.ndarray:
    """One column's values after normalising missing spellings, spaces, numbers and variants."""
    name = profile.name
    spelled = sum(n for spelling, n in profile.markers.items() if spelling != "")
    if spelled:
        log.append(
            _entry("normalise_missing", name, values=spelled, detail=f"spellings {sorted(profile.markers)}")
        )
    if profile.numbers is not None and profile.kind in ("numeric", "boolean"):
        numbers = profile.numbers.copy()
        not_numbers = int(profile.not_numbers.sum()) if profile.not_numbers is not None else 0
        if not_numbers:
            at = np.flatnonzero(profile.not_numbers)[:5]
            named = ", ".join(f"row {origin[i]} {profile.raw[int(i)].as_py()!r}" for i in at)
            log.append(
                _entry(
                    "coerce_numeric", name, values=not_numbers, detail=f"non-numbers made missing: {named}"
                )
            )
        infinite = np.isinf(numbers)
        if infinite.any():
            numbers[infinite] = np.nan
            log.append(_entry("infinite_to_missing", name, values=int(infinite.sum())))
        return numbers
    if profile.strings is None:
        return profile.numbers
    trimmed = int(
        pc.sum(pc.not_equal(profile.raw, profile.strings).fill_null(False).cast(pa.int64())).as_py() or 0
    )
    if trimmed:
        log.append(_entry("trim_spaces", name, values=trimmed, detail="surrounding spaces removed"))
    values = pd.Series(profile.strings.to_pandas(types_mapper=None), dtype=object).where(
        ~pd.Series(profile.missing), None
    )
    if profile.kind in ("categorical", "boolean"):
        counts = values.value_counts(dropna=True)
        groups = variant_groups({str(k): int(v) for k, v in counts.items()})
        mapping = {s: members[0] for members in groups.values() for s in members[1:]}
        if mapping:
            changed = int(values.isin(list(mapping)).sum())
            values = values.replace(mapping)
            log.append(_entry("merge_category_variants", name, values=changed, detail=f"{mapping}"))
    return values.to_numpy(dtype=object)


def _majority_label(frame: pd.DataFrame, target: str) -> np.ndarray:
    """(N,) bool: False for rows whose label loses to its feature group's most frequent label."""
    features = pd.util.hash_pandas_object(frame.drop(columns=[target]), index=False).to_numpy()
    labels, classes = pd.factorize(frame[target])
    conflicted = conflict_mask(
        features,
        Target(target, "classification", labels.astype(np.int64), tuple(map(str, classes)), None, labels < 0),
    )
    if not conflicted.any():
        return np.ones(len(frame), dtype=bool)
    pairs = pd.DataFrame({"group": features, "label": labels, "order": np.arange(len(frame))})
    stats = (
        pairs.groupby(["group", "label"], sort=False)
        .agg(count=("order", "size"), first=("order", "min"))
        .reset_index()
    )
    stats = stats.sort_values(["group", "count", "first"], ascending=[True, False, True])
    winners = stats.drop_duplicates("group")
    winner = pairs["group"].map(pd.Series(winners["label"].to_numpy(), index=winners["group"].to_numpy()))
    return (winner.to_numpy() == labels) | ~conflicted


def _drop(frame, origin, keep, fix, column, log, detail):
    if keep.all():
        return frame, origin
    log.append(_entry(fix, column, rows=[int(r) for r in origin[~keep]], detail=detail))
    return frame[keep].reset_index(drop=True), origin[keep]


def _drop_test_overlap(
    frame: pd.DataFrame, origin: np.ndarray, target: str | None, task: str, test_source: str | Path, log: list
) -> tuple[pd.DataFrame, np.ndarray]:
    """Leave out training rows equal to a test row, compared as the overlap check compares them."""
    names = [str(c) for c in frame.columns]
    train = RawTable("<cleaned>", frame_columns(frame), len(frame))
    test = read_source(test_source)
    if target is not None and target not in test.columns:
        resolve_target(test, target)
    keep = ~np.isin(row_hashes(train, target, task, names), row_hashes(test, target, task, names))
    return _drop(
        frame, origin, keep, "drop_test_overlap", None, log, f"rows also in the test file {test_source}"
    )


def escape_formulas(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Text cells starting with = + - @ tab or CR get a leading ' (OWASP); numbers are left alone."""
    escaped = 0
    out = frame.copy()
    for name in frame.columns:
        values = frame[name]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        text = values.map(lambda v: v if isinstance(v, str) else None)
        risky = text.str.match(FORMULA_START, na=False) & ~text.str.fullmatch(NUMBER_PATTERN, na=False)
        if risky.any():
            out[name] = values.where(~risky, "'" + text)
            escaped += int(risky.sum())
    return out, escaped


def _write(frame: pd.DataFrame, output: Path, log: list) -> None:
    suffix = output.suffix.lower()
    if suffix == ".csv":
        frame, escaped = escape_formulas(frame)
        if escaped:
            log.append(
                _entry(
                    "escape_formula_cells",
                    None,
                    values=escaped,
                    detail="text cells starting with = + - @ tab or CR were prefixed with ' (OWASP CSV injection), "
                    "so a spreadsheet shows them as text instead of running them",
                )
            )
        atomic.write_text(output, frame.to_csv(index=False))
    elif suffix == ".jsonl":
        atomic.write_text(output, frame.to_json(orient="records", lines=True, force_ascii=False))
    else:
        buffer = io.BytesIO()
        pa_parquet.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
        atomic.write_bytes(output, buffer.getvalue())
