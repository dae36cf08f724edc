"""The cleaning gate for language-model data: what would make fine-tuning wrong, or leak.

Each finding names the file, the line and the key (``qa.jsonl:12 messages[2].role``). Severities
follow the tabular gate (:mod:`forgeml.checks.catalogue`): errors block training unless their id is
in ``check.allow`` (DataQualityError, CLI exit 1), warnings are logged and recorded.
:func:`check_lm_config` runs the gate on its own, as ``forgeml check CONFIG`` does for an LM config.

=====================  ========  ===========================================================
id                     severity  finds
=====================  ========  ===========================================================
empty_answer           error     an output / assistant message that is empty or blank
bad_role               error     a role other than system, user, assistant
no_answer              error     a chat with no assistant message (nothing to learn)
personal_data          error     e-mail addresses or phone numbers (a model memorises them)
validation_overlap     error     an example that is also in the validation file
empty_prompt           warning   a blank instruction / user message
duplicate_examples     warning   the same example more than once
too_long               warning   longer than data.max_length tokens; the end is cut off
=====================  ========  ===========================================================
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape

from forgeml import atomic
from forgeml.config import CausalLMConfig, Config, load_config
from forgeml.data.lm import ROLES, Example, chat_template, encode_example, load_tokenizer, training_examples
from forgeml.errors import DataQualityError

logger = logging.getLogger(__name__)
Severity = Literal["error", "warning"]
SEVERITY: dict[str, Severity] = {
    "empty_answer": "error",
    "bad_role": "error",
    "no_answer": "error",
    "personal_data": "error",
    "validation_overlap": "error",
    "empty_prompt": "warning",
    "duplicate_examples": "warning",
    "too_long": "warning",
}
FIX = {
    "empty_answer": "write the answer or drop the line",
    "bad_role": "use system, user or assistant",
    "no_answer": "add the assistant's reply or drop the line",
    "personal_data": "remove or mask the personal data (or allow personal_data if it is synthetic)",
    "validation_overlap": "remove the example from one of the two files",
    "empty_prompt": "write the question",
    "duplicate_examples": "drop the repeats (they weigh that example more)",
    "too_long": "shorten the example or raise data.max_length",
}
PRINT_LIMIT = 10  # findings printed per check id; the JSON report keeps all of them
EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# international (+44 20 7946 0958) or North American ((555) 123-4567, 555-123-4567) numbers
PHONE = re.compile(
    r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}\b"
)


@dataclass(frozen=True)
class LMFinding:
    """One problem at one place: ``where`` is ``file:line``, ``key`` the JSON key inside the line."""

    id: str
    where: str
    key: str
    message: str
    allowed: bool = False

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.id]

    @property
    def blocking(self) -> bool:
        return self.severity == "error" and not self.allowed

    def describe(self) -> str:
        return f"[{self.id}] {self.where} {self.key}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "where": self.where,
            "key": self.key,
            "message": self.message,
            "fix": FIX[self.id],
            "allowed": self.allowed,
        }


@dataclass(frozen=True)
class LMDataReport:
    """Every finding of the gate over the training (and validation) examples."""

    source: str
    examples: int
    findings: tuple[LMFinding, ...]

    @property
    def blocking(self) -> tuple[LMFinding, ...]:
        return tuple(f for f in self.findings if f.blocking)

    @property
    def passed(self) -> bool:
        return not self.blocking

    def ids(self) -> set[str]:
        return {f.id for f in self.findings}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "kind": "language_model",
            "source": self.source,
            "examples": self.examples,
            "passed": self.passed,
            "findings": [f.to_json() for f in self.findings],
        }


def check_examples(
    examples: list[Example],
    *,
    validation: list[Example] = (),  # type: ignore[assignment]
    tokenizer: Any = None,
    template: str | None = None,
    max_length: int | None = None,
    allow: tuple[str, ...] | list[str] = (),
) -> LMDataReport:
    """Run every check; ``tokenizer``, ``template`` and ``max_length`` enable the length check."""
    findings: list[LMFinding] = []
    seen: dict[str, Example] = {}
    for example in examples:
        findings += _content_findings(example)
        key = _fingerprint(example)
        if key in seen:
            findings.append(
                LMFinding(
                    "duplicate_examples",
                    example.where,
                    "",
                    f"the same example as {_place(seen[key], example)}",
                )
            )
        else:
            seen[key] = example
        if tokenizer is not None and template is not None and max_length is not None and _usable(example):
            encoded = encode_example(example, tokenizer, template, max_length)
            if encoded.truncated:
                findings.append(
                    LMFinding(
                        "too_long", example.where, "", f"longer than {max_length} tokens; the end is cut"
                    )
                )
    for example in validation:
        findings += _content_findings(example)
        if _fingerprint(example) in seen:
            findings.append(
                LMFinding(
                    "validation_overlap",
                    example.where,
                    "",
                    f"also a training example ({seen[_fingerprint(example)].where}); validation loss would flatter the model",
                )
            )
    allowed = set(allow)
    findings = [
        LMFinding(f.id, f.where, f.key, f.message, allowed=f.id in allowed)
        for f in sorted(findings, key=lambda f: SEVERITY[f.id] != "error")
    ]
    source = examples[0].source if examples else ""
    return LMDataReport(source, len(examples) + len(validation), tuple(findings))


def check_lm_config(config: Config | str | Path) -> LMDataReport:
    """The gate exactly as ``train_lm`` runs it (same validation split, tokenizer, template and
    ``check.allow``), without loading the model; raises ConfigError/DataError for bad input."""
    config = config if isinstance(config, Config) else load_config(config)
    if not isinstance(config.model, CausalLMConfig):
        raise TypeError(f"check_lm_config takes a causal_lm config, not model.type {config.model.type}")
    tokenizer = load_tokenizer(config.model)  # transformers loads only here, when a check runs
    train, validation = training_examples(config.data, seed=config.seed)
    return check_examples(
        train,
        validation=validation,
        tokenizer=tokenizer,
        template=chat_template(tokenizer, config.data.chat_template),
        max_length=config.data.max_length,
        allow=config.check.allow,
    )


def print_lm_report(report: LMDataReport, console: Console) -> None:
    """Findings grouped by id (errors first), each with its fix, then a verdict and how to proceed."""
    console.print(f"[bold]{escape(report.source)}[/]: {report.examples} examples", soft_wrap=True)
    groups: dict[tuple[str, bool], list[LMFinding]] = {}
    for finding in report.findings:
        groups.setdefault((finding.id, finding.allowed), []).append(finding)
    for (check_id, allowed), found in groups.items():
        colour = "dim" if allowed else "red" if SEVERITY[check_id] == "error" else "yellow"
        severity = SEVERITY[check_id] + (" (allowed)" if allowed else "")
        console.print(f"[{colour}]{severity:<8}[/] [bold]{check_id}[/] ({len(found)})")
        for finding in found[:PRINT_LIMIT]:
            place = " ".join(filter(None, (Path(finding.where).name, finding.key)))
            console.print(f"  {escape(place)}: {escape(finding.message)}", soft_wrap=True)
        if len(found) > PRINT_LIMIT:
            console.print(f"  ... and {len(found) - PRINT_LIMIT} more (--json lists every finding)")
        console.print(f"  [dim]fix: {FIX[check_id]}[/]")
    errors = sum(f.severity == "error" for f in report.findings)
    warnings = len(report.findings) - errors
    verdict = "[green]passed[/]" if report.passed else f"[bold red]{len(report.blocking)} blocking[/]"
    console.print(f"{verdict}: {errors} errors, {warnings} warnings")
    if report.blocking:
        ids = ", ".join(sorted({f.id for f in report.blocking}))
        console.print(
            escape(f"training would stop: fix the lines above, or accept them with check.allow: [{ids}]")
        )


def gate_report(report: LMDataReport, *, enabled: bool, run_dir: Path | None) -> None:
    """Save ``data_report.json``, log warnings, raise DataQualityError on blocking findings."""
    if run_dir is not None:
        atomic.write_text(run_dir / "data_report.json", json.dumps(report.to_json(), indent=2))
    warnings = [f for f in report.findings if f.severity == "warning"]
    if warnings:
        counts: dict[str, int] = {}
        for finding in warnings:
            counts[finding.id] = counts.get(finding.id, 0) + 1
        logger.warning(
            "data check: %d warnings: %s",
            len(warnings),
            ", ".join(f"{k} ({v})" for k, v in sorted(counts.items())),
        )
    if report.blocking and not enabled:
        logger.warning(
            "check.enabled is false: training goes on despite %d blocking findings", len(report.blocking)
        )
    elif report.blocking:
        raise DataQualityError(blocking_message(report), report=report)


def blocking_message(report: LMDataReport) -> str:
    shown = report.blocking[:20]
    lines = [f"{report.source}: the data has {len(report.blocking)} blocking problems, so training stops:"]
    lines += [f"  - {f.describe()} Fix: {FIX[f.id]}." for f in shown]
    if len(report.blocking) > len(shown):
        lines.append(f"  ... and {len(report.blocking) - len(shown)} more (see data_report.json)")
    ids = ", ".join(sorted({f.id for f in report.blocking}))
    lines.append(f"To proceed: fix the lines above, or accept these findings with check.allow: [{ids}].")
    return "\n".join(lines)


def _content_findings(example: Example) -> list[LMFinding]:
    found: list[LMFinding] = []
    if example.text is not None:
        return _personal(example.where, "text", example.text)
    for index, message in enumerate(example.messages):
        role_key, content_key = example.key(index, "role"), example.key(index, "content")
        if message.role not in ROLES:
            found.append(
                LMFinding(
                    "bad_role", example.where, role_key, f"{message.role!r} is not system, user or assistant"
                )
            )
        if not message.content.strip():
            if message.role == "assistant":
                found.append(LMFinding("empty_answer", example.where, content_key, "the answer is empty"))
            elif message.role == "user":
                found.append(LMFinding("empty_prompt", example.where, content_key, "the question is empty"))
        found += _personal(example.where, content_key, message.content)
    if not any(m.role == "assistant" for m in example.messages):
        found.append(LMFinding("no_answer", example.where, "messages", "no assistant message to learn from"))
    return found


def _personal(where: str, key: str, text: str) -> list[LMFinding]:
    kinds = [
        name
        for name, pattern in (("an e-mail address", EMAIL), ("a phone number", PHONE))
        if pattern.search(text)
    ]
    return [LMFinding("personal_data", where, key, f"contains {kind}") for kind in kinds]


def _place(first: Example, later: Example) -> str:
    """``line 3`` within the same file, the full ``file:line`` across files."""
    return f"line {first.line}" if first.source == later.source else first.where


def _usable(example: Example) -> bool:
    return example.text is not None or all(m.role in ROLES for m in example.messages)


def _fingerprint(example: Example) -> str:
    if example.text is not None:
        return " ".join(example.text.split()).lower()
    return json.dumps([(m.role, " ".join(m.content.split()).lower()) for m in example.messages])
