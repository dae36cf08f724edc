"""The cleaning gate: schema inference, data-quality checks, deterministic fixes and the report.

::

    report = forgeml.checks.check("customers.csv", target="churned")   # -> DataReport
    result = forgeml.checks.fix_table("customers.csv", "clean.csv", target="churned")
    forgeml.checks.gate(config.data, config.check, run_dir=run_dir)    # raises DataQualityError

The check ids, severities and suggested fixes are listed in :mod:`forgeml.checks.catalogue`.
Importing this package does not import torch.
"""

from __future__ import annotations

from forgeml.checks.catalogue import CHECKS, CheckSpec
from forgeml.checks.fixes import FixResult, fix_table
from forgeml.checks.render import print_report, report_html, report_json, write_reports
from forgeml.checks.report import SCHEMA_VERSION, ColumnSchema, DataReport, Finding
from forgeml.checks.runner import check, gate

__all__ = [
    "CHECKS",
    "SCHEMA_VERSION",
    "CheckSpec",
    "ColumnSchema",
    "DataReport",
    "Finding",
    "FixResult",
    "check",
    "fix_table",
    "gate",
    "print_report",
    "report_html",
    "report_json",
    "write_reports",
]
