"""Which findings block training, and the message that says exactly how to unblock it.

:func:`judge` applies the thresholds: an error check whose measure (a share of the rows, or a count)
is at or under its limit becomes a warning, recorded like every other warning. :func:`blocking_message`
ends with what to do, as text to paste: the ``forgeml check ... --fix`` command that writes data
that passes (with ``--target``, and ``--test`` when the overlap with a test file is the problem),
or the ``check.allow`` line for a finding no automatic fix can repair.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

import yaml

from forgeml.checks.catalogue import THRESHOLDS
from forgeml.checks.report import DataReport, Finding

# What `forgeml check --fix` repairs (see forgeml.checks.fixes); the rest can only be allowed.
FIXABLE = {
    "unparseable_rows",
    "missing_target",
    "conflicting_labels",
    "class_too_rare",
    "train_test_overlap",
    "infinite_values",
}
TEST_PREFIX = "test file: "


def limits(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The threshold of every check that has one: the catalogue's defaults, then ``check.thresholds``."""
    return {check_id: spec.limit for check_id, spec in THRESHOLDS.items()} | dict(overrides or {})


def judge(
    findings: Iterable[Finding], *, rows: int, test_rows: int | None, thresholds: Mapping[str, float]
) -> list[Finding]:
    """Errors at or under their threshold become warnings whose message says so; the rest are unchanged."""
    judged = []
    for finding in findings:
        spec = THRESHOLDS.get(finding.id)
        limit = thresholds.get(finding.id)
        if spec is None or limit is None or finding.severity != "error":
            judged.append(finding)
            continue
        total = test_rows if spec.per == "test row" else rows
        measure = finding.count if spec.per is None else finding.count / max(1, total or 0)
        if measure > limit:
            judged.append(finding)
            continue
        shown = f"{measure:.2%} of {spec.per}s" if spec.per else f"{finding.count}"
        limit_text = f"{limit:.2%}" if spec.per else f"{limit:g}"
        note = f" ({shown}, at or under the threshold {limit_text}: a warning; check.thresholds.{finding.id} changes it)"
        judged.append(replace(finding, level="warning", message=finding.message + note))
    return judged


def clean_path(source: str) -> str:
    """Where the printed fix writes the cleaned copy: beside the source, ``<name>.clean.<suffix>``."""
    if source.startswith("sklearn:"):
        return f"{source.removeprefix('sklearn:')}.clean.csv"
    path = Path(source)
    suffix = path.suffix.lower() if path.suffix.lower() in (".csv", ".parquet", ".jsonl") else ".csv"
    return str(path.with_name(f"{path.stem}.clean{suffix}"))


def fix_commands(report: DataReport) -> tuple[list[str], list[str]]:
    """The commands to paste (in order) and the ids that can only be allowed, for the blocking findings."""
    blocking = report.blocking
    can_fix = not report.source.lower().endswith(".npz") and report.source != "<DataFrame>"
    # --fix drops a leaking column only without a test file, whose columns must match the training file's
    repairs = FIXABLE | ({"target_leakage"} if report.test_source is None else set())
    unfixable = sorted({f.id for f in blocking if f.id not in repairs or not can_fix})
    fixable = [f for f in blocking if f.id in repairs and can_fix]
    if not fixable:
        return [], unfixable
    target = ["--target", report.target] if report.target else []
    commands = []
    test = report.test_source
    if test is not None and any(f.message.startswith(TEST_PREFIX) for f in fixable):
        cleaned_test = clean_path(test)
        commands.append(_command(test, target, None, cleaned_test))
        test = cleaned_test
    commands.append(_command(report.source, target, test, clean_path(report.source)))
    return commands, unfixable


def _command(source: str, target: list[str], test: str | None, output: str) -> str:
    words = ["forgeml", "check", source, *target, *(["--test", test] if test else []), "--fix", "-o", output]
    return shlex.join(words)


def blocking_message(report: DataReport) -> str:
    """What blocks training, then how to proceed; the last lines are the command or the allow line."""
    count = len(report.blocking)
    problems = "1 blocking problem" if count == 1 else f"{count} blocking problems"
    lines = [f"{report.source}: the data has {problems}, so training stops:"]
    lines += [f"  - {f.describe()}" for f in report.blocking]
    return "\n".join(lines + next_steps(report))


def next_steps(report: DataReport) -> list[str]:
    """How to unblock ``report``, as lines whose indented ones are pasted as they are (empty: passed).

    ``forgeml check`` prints them under a blocked report, the gate at the end of its message.
    """
    lines: list[str] = []
    commands, unfixable = fix_commands(report)
    if commands:
        cleaned = clean_path(report.source)
        settings = "data.source" + (" and data.test_source" if len(commands) > 1 else "")
        lines.append(
            f"To clean the data (the input files are not changed), run the command below, then point "
            f"{settings} at the cleaned file{'s' if len(commands) > 1 else ''} ({cleaned}"
            f"{', ' + clean_path(report.test_source or '') if len(commands) > 1 else ''}); "
            f"or accept the findings as they are with check.allow: [{', '.join(sorted({f.id for f in report.blocking}))}]."
        )
        lines += [f"  {command}" for command in commands]
    leaked = [
        str(f.column) for f in report.blocking if f.id == "target_leakage" and "target_leakage" in unfixable
    ]
    if leaked:
        lines.append(
            "A column that alone gives the answer away is a leak (a copy of the label, a previous model's "
            "score): leave it out of the features in the config, then accept the finding below:"
        )
        lines.append(f"  features: {{exclude: [{', '.join(map(flow_scalar, leaked))}]}}")
    if unfixable:
        lines.append(
            "No automatic fix repairs these; fix the data by hand, or accept them in the config with:"
        )
        lines.append(f"  check: {{allow: [{', '.join(unfixable)}]}}")
    return lines


def flow_scalar(name: str) -> str:
    """A column name as an item of a YAML flow list, quoted where YAML needs it."""
    return yaml.safe_dump([name], default_flow_style=True, width=10_000).strip()[1:-1]
