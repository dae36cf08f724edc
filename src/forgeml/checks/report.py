"""The typed result of the checks: :class:`DataReport`, its findings and the inferred schema.

``DataReport.to_json()`` is the stable ``data_report.json`` format (``schema_version: 1``): keys are
only ever added, never renamed or removed, so scripts that read it keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from forgeml.checks.catalogue import CHECKS, SEVERITY_ORDER, Severity

SCHEMA_VERSION = 1
ColumnKind = Literal["numeric", "categorical", "boolean", "text", "datetime", "identifier", "constant"]


@dataclass(frozen=True)
class Finding:
    """One problem found: which check, how bad, where (column, 1-based data rows) and what to do.

    ``rows`` lists the first few affected data rows, numbered from 1 (row 1 is the first row after
    a CSV header, so it sits on line 2); ``count`` is how many rows or values are affected in all.
    """

    id: str
    column: str | None
    message: str
    rows: tuple[int, ...] = ()
    count: int = 0
    allowed: bool = False  # the id is listed in check.allow, so it does not block training
    level: Severity | None = None  # set when a threshold turned an error into a warning
    advice: str | None = None  # a fix that fits this finding better than the catalogue's general one

    @property
    def severity(self) -> Severity:
        return self.level or CHECKS[self.id].severity

    @property
    def fix(self) -> str:
        return self.advice or CHECKS[self.id].fix

    @property
    def blocking(self) -> bool:
        return self.severity == "error" and not self.allowed

    def describe(self) -> str:
        """One line: id, column, rows and message."""
        where = f" column {self.column!r}" if self.column is not None else ""
        rows = f" rows {', '.join(map(str, self.rows))}" if self.rows else ""
        return f"[{self.id}]{where}{rows}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "severity": self.severity,
            "column": self.column,
            "rows": list(self.rows),
            "count": self.count,
            "message": self.message,
            "fix": self.fix,
            "allowed": self.allowed,
        }


@dataclass(frozen=True)
class ColumnSchema:
    """A column's inferred kind with the evidence for it."""

    name: str
    kind: ColumnKind
    source_type: str  # the type as stored in the file ("string" for every CSV column)
    missing: int
    distinct: int  # distinct present values (after trimming surrounding spaces)
    parse_rate: float  # share of present values that parse as numbers
    examples: tuple[str, ...]
    missing_spellings: tuple[str, ...] = ()  # how missing values were written, e.g. ("", "NA")

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "source_type": self.source_type,
            "missing": self.missing,
            "distinct": self.distinct,
            "parse_rate": round(self.parse_rate, 6),
            "examples": list(self.examples),
            "missing_spellings": list(self.missing_spellings),
        }


@dataclass(frozen=True)
class DataReport:
    """Everything the checks found about one data source (and its test file, when given)."""

    source: str
    target: str | None
    rows: int
    columns: int
    schema: tuple[ColumnSchema, ...]
    findings: tuple[Finding, ...]
    test_source: str | None = None
    test_rows: int | None = None
    task: str | None = None  # "classification" or "regression" when there is a target
    seconds: float = field(default=0.0, compare=False)
    thresholds: dict[str, float] = field(default_factory=dict)  # the limits the findings were judged by

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def blocking(self) -> tuple[Finding, ...]:
        """Errors whose ids are not allowed: these stop training."""
        return tuple(f for f in self.findings if f.blocking)

    @property
    def passed(self) -> bool:
        return not self.blocking

    def ids(self) -> set[str]:
        return {f.id for f in self.findings}

    def column(self, name: str) -> ColumnSchema:
        return next(c for c in self.schema if c.name == name)

    def to_json(self) -> dict[str, object]:
        return {
            "schema_version": SCHEMA_VERSION,
            "source": self.source,
            "target": self.target,
            "task": self.task,
            "rows": self.rows,
            "columns": self.columns,
            "test_source": self.test_source,
            "test_rows": self.test_rows,
            "passed": self.passed,
            "summary": {
                severity: sum(1 for f in self.findings if f.severity == severity)
                for severity in SEVERITY_ORDER
            },
            "findings": [f.to_json() for f in self.findings],
            "thresholds": dict(self.thresholds),
            "schema": [c.to_json() for c in self.schema],
        }


def sort_findings(findings: list[Finding]) -> tuple[Finding, ...]:
    """Errors first, then warnings, then info; stable within a severity (column order)."""
    return tuple(sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity]))
