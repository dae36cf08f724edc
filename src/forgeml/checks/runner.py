"""Run every check on a source and build the :class:`DataReport`; the gate that training calls.

One pass over the columns: the target first (so each feature can be tested for leakage against
it), then each feature is profiled, checked, folded into the row hashes and released.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from forgeml.checks import catalogue as cat
from forgeml.checks.columns import column_findings
from forgeml.checks.images import image_findings
from forgeml.checks.reading import RawTable, frame_columns, read_source
from forgeml.checks.report import ColumnSchema, DataReport, Finding, sort_findings
from forgeml.checks.rows import (
    Target,
    combine,
    conflict_findings,
    describe_target,
    duplicate_findings,
    image_hash,
    leakage_finding,
    overlap_findings,
    target_findings,
    value_hash,
)
from forgeml.checks.schema import profile_column
from forgeml.checks.verdict import TEST_PREFIX, blocking_message, judge, limits
from forgeml.config import CheckConfig, DataConfig
from forgeml.data.sources import DEFAULT_TARGET
from forgeml.errors import DataError, DataQualityError

logger = logging.getLogger(__name__)
Source = str | Path | pd.DataFrame
WORKERS = min(4, os.cpu_count() or 1)  # columns checked at once; each holds about one column in memory


def check(
    source: Source,
    *,
    target: str | None = None,
    test_source: str | Path | None = None,
    allow: Iterable[str] = (),
    task: str = "auto",
    thresholds: Mapping[str, float] | None = None,
) -> DataReport:
    """Check a table (a path, ``sklearn:<name>`` or a DataFrame) and return every finding.

    ``target`` names the label column (scikit-learn sets and .npz labels are called "target");
    without one, the target checks are skipped. ``test_source`` adds the train/test overlap check.
    Findings whose ids are in ``allow`` are kept but marked allowed, so they do not block; errors at
    or under their threshold (the catalogue's, changed by ``thresholds``) are reported as warnings.
    Raises DataError when the source cannot be read at all (missing, empty, binary, ...).
    """
    start = time.perf_counter()
    table = read_source(source)
    target = resolve_target(table, target)
    names = list(table.columns)
    findings = _dialect(table) + _unparseable(table) + _image_findings(table)
    schema, more, full_hash, described = _analyse(table, target, task)
    findings += more
    test_rows, test_table = None, None
    if test_source is not None:
        test_table = read_source(test_source)
        if test_table.images is not None:  # the labels of an .npz travel beside the images
            resolve_target(test_table, target)
        test_rows = test_table.rows
        _, test_findings, test_hash, _ = _analyse(test_table, target, task, only_hash=names)
        findings += [
            replace(f, message=f"{TEST_PREFIX}{f.message}")
            for f in _dialect(test_table) + test_findings
            if f.id in ("unparseable_rows", "csv_dialect", "missing_target")
        ]
        findings += overlap_findings(full_hash, test_hash, str(test_source), test_table.source_rows)
    if table.image_files is not None:
        test_files = None if test_table is None else test_table.image_files
        findings += image_findings(table.image_files, table.image_target, test_files)
    limits_used = limits(thresholds)
    findings = judge(findings, rows=table.rows, test_rows=test_rows, thresholds=limits_used)
    allowed = set(allow)
    findings = [replace(f, allowed=f.id in allowed) for f in findings]
    order = {name: i for i, name in enumerate(names)}
    return DataReport(
        source=table.source,
        target=target,
        rows=table.rows,
        columns=len(names),
        schema=tuple(sorted(schema, key=lambda c: order.get(c.name, len(order)))),
        findings=sort_findings(findings),
        test_source=None if test_source is None else str(test_source),
        test_rows=test_rows,
        task=None if described is None else described.task,
        seconds=time.perf_counter() - start,
        thresholds=limits_used,
    )


def resolve_target(table: RawTable, target: str | None) -> str | None:
    loaded = table.source.startswith("sklearn:") or table.source.lower().endswith(".npz")
    loaded = loaded or table.image_files is not None  # a folder's labels are its subfolders
    if target is None and loaded and (DEFAULT_TARGET in table.columns or table.image_target is not None):
        target = DEFAULT_TARGET
    if target is not None and table.image_target is not None:
        table.columns[target] = frame_columns(pd.DataFrame({target: table.image_target}))[target]
    if target is not None and target not in table.columns:
        columns = ", ".join(list(table.columns)[:20])
        raise DataError(
            f"{table.source}: target column {target!r} not found. Columns are: {columns}. "
            f"Pass --target with one of them (or fix data.target in the config).",
            path=table.source,
            column=target,
        )
    return target


@dataclass(frozen=True)
class _Column:
    """What one column contributes: its schema entry, its findings and its (N,) value hashes."""

    schema: ColumnSchema
    findings: list[Finding]
    hashes: np.ndarray


def _analyse(
    table: RawTable, target_name: str | None, task: str, *, only_hash: list[str] | None = None
) -> tuple[list, list[Finding], np.ndarray, Target | None]:
    """Profile and check every column; return schema, findings, row hashes and the target.

    The target goes first (each feature is tested for leakage against it); the features then run
    on a few threads, since pyarrow and numpy release the GIL in the whole-column kernels. Results
    are taken in column order, so findings and row hashes do not depend on the threads.
    """
    rows_of = table.source_rows
    feature_hash = np.zeros(table.rows, dtype=np.uint64)
    target_hash = np.zeros(table.rows, dtype=np.uint64)
    if table.images is not None:  # images are compared by their pixels, not by the table's columns
        feature_hash = combine(feature_hash, image_hash(table.images))
    schema, findings = [], _unparseable(table) if only_hash is not None else []
    target: Target | None = None
    names = [n for n in (only_hash if only_hash is not None else list(table.columns)) if n in table.columns]
    # a table of image paths: its other columns are not model inputs, so they are not checked (a
    # constant "source" column made every row a conflict); the image gate compares the pixels
    features = [n for n in names if n != target_name] if table.image_files is None else []
    if target_name is not None and target_name in names:
        profile = profile_column(target_name, table.columns.pop(target_name))
        target_hash = value_hash(profile)
        if only_hash is None:
            schema.append(profile.schema)
            findings += column_findings(profile, rows_of, is_target=True, typed_source=not table.text_file)
            target = describe_target(profile, task)
            findings += target_findings(target, rows_of)
        elif profile.missing.any():  # a test file: evaluation needs every label too
            missing = int(profile.missing.sum())
            rows = tuple(rows_of(np.flatnonzero(profile.missing)[: cat.EXAMPLE_ROWS]))
            findings.append(
                Finding("missing_target", target_name, f"{missing} rows have no target value", rows, missing)
            )
        del profile

    def one(name: str) -> _Column:
        return _feature(table, name, target, checked=only_hash is None)

    with ThreadPoolExecutor(max_workers=min(WORKERS, max(1, len(features)))) as pool:
        for column in pool.map(one, features):
            feature_hash = combine(feature_hash, column.hashes, in_place=True)
            schema.append(column.schema)
            findings += column.findings
    full_hash = combine(feature_hash, target_hash) if target_name is not None else feature_hash
    compared = bool(features) or table.images is not None
    if only_hash is None:
        findings += duplicate_findings(full_hash, rows_of) if compared else []
        if target is not None and compared:
            findings += conflict_findings(feature_hash, target, rows_of)
        if 0 < table.rows < cat.FEW_ROWS:
            findings.append(Finding("too_few_rows", None, f"only {table.rows} rows", (), table.rows))
    return schema, findings, full_hash, target


def row_hashes(table: RawTable, target: str | None, task: str, names: list[str]) -> np.ndarray:
    """(N,) uint64 row hashes over ``names`` (in that order), as the overlap check computes them."""
    return _analyse(table, target, task, only_hash=names)[2]


def _feature(table: RawTable, name: str, target: Target | None, *, checked: bool) -> _Column:
    """Profile, check and hash one feature column; its values are released from the table."""
    profile = profile_column(name, table.columns.pop(name))
    hashes = value_hash(profile)
    if not checked:
        return _Column(profile.schema, [], hashes)
    typed_source = not table.text_file
    findings = column_findings(profile, table.source_rows, is_target=False, typed_source=typed_source)
    if target is not None and (leak := leakage_finding(profile, target)) is not None:
        findings.append(leak)
    return _Column(profile.schema, findings, hashes)


def _dialect(table: RawTable) -> list[Finding]:
    return [] if table.dialect is None else [Finding("csv_dialect", None, table.dialect)]


def _unparseable(table: RawTable) -> list[Finding]:
    if not table.bad_rows:
        return []
    lines = ", ".join(f"line {b.row + 1} ({b.reason})" for b in table.bad_rows[:3])
    message = f"{len(table.bad_rows)} rows could not be read and were skipped: {lines}"
    rows = tuple(b.row for b in table.bad_rows[: cat.EXAMPLE_ROWS])
    return [Finding("unparseable_rows", None, message, rows, len(table.bad_rows))]


def _image_findings(table: RawTable) -> list[Finding]:
    if table.images is None:
        return []
    bad = ~np.isfinite(table.images.reshape(len(table.images), -1)).all(axis=1)
    if not bad.any():
        return []
    message = f"{int(bad.sum())} images contain NaN or infinite pixel values"
    return [
        Finding(
            "non_finite_pixels",
            None,
            message,
            tuple(int(i) + 1 for i in np.flatnonzero(bad)[:5]),
            int(bad.sum()),
        )
    ]


def gate(data_config: DataConfig, check_config: CheckConfig, *, run_dir: Path | None = None) -> DataReport:
    """The cleaning gate run before training: check the data, save the report, refuse blocking errors.

    Writes ``data_report.json`` and ``data_report.html`` into ``run_dir`` when given. Warnings are
    logged. Raises DataQualityError listing each blocking finding and the two ways forward, unless
    ``check.enabled`` is false (then the report is still written and the blocking findings logged).
    """
    from forgeml.checks.render import write_reports

    report = check(
        data_config.source,
        target=data_config.target,
        test_source=data_config.test_source,
        allow=check_config.allow,
        task=data_config.task,
        thresholds=check_config.thresholds,
    )
    if run_dir is not None:
        write_reports(report, run_dir)
    if report.warnings:
        # One line, not one per finding: a wide table easily has dozens of outlier warnings.
        counts: dict[str, int] = {}
        for finding in report.warnings:
            counts[finding.id] = counts.get(finding.id, 0) + 1
        summary = ", ".join(f"{check_id} ({count})" for check_id, count in sorted(counts.items()))
        where = f"; details in {run_dir / 'data_report.html'}" if run_dir is not None else ""
        logger.warning("data check: %d warnings: %s%s", len(report.warnings), summary, where)
    if report.blocking and not check_config.enabled:
        logger.warning(
            "check.enabled is false: training goes on despite %d blocking findings", len(report.blocking)
        )
    elif report.blocking:
        raise DataQualityError(blocking_message(report), report=report)
    return report
