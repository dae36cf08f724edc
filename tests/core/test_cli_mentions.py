"""A flag or a command named in the code's strings (errors, help, docstrings) exists in the CLI.

An error once told users to "run `forgeml init`" and another advertised ``--calibration-rows``; neither
existed. Every string literal under src/forgeml is scanned: a ``--flag`` inside "`forgeml <verb> ...`"
must be a flag of that verb, any other ``--flag`` a flag of some verb, and every "`forgeml <verb>`"
(or "run forgeml <verb>", "forgeml <verb> --...") a verb.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path

from forgeml.cli import build_parser

SRC = Path(__file__).parents[2] / "src" / "forgeml"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# `forgeml verb ...` (its flags belong to that verb), or prose that reads as a command line
QUOTED_COMMAND = re.compile(r"`+forgeml ([a-z][a-z_-]*)([^`]*)`")
COMMAND = re.compile(
    r"(?:`+|\brun |\btry |\bwith )forgeml ([a-z][a-z_-]*)"
    r"|\bforgeml ([a-z][a-z_-]*)(?= (?:--|-o |runs/|[\w/.<>-]+\.ya?ml|<|[A-Z]{2,}|bundle/))"
)
# flags of other programs named in our strings, with the program the string (or file) must name
FOREIGN = {
    "--logdir": "tensorboard",
    "--no-deps": "pip install",
    "--nproc-per-node": "torchrun",
    "--rdzv-backend": "torchrun",
    "--standalone": "torchrun",
}


def _verbs() -> dict[str, set[str]]:
    parser = build_parser()
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    shared = {flag for action in parser._actions for flag in action.option_strings}
    return {
        verb: shared | {flag for action in sub._actions for flag in action.option_strings}
        for verb, sub in commands.items()
    }


def _strings() -> Iterator[tuple[str, str, str]]:
    """(where, the string, the whole file) for every string literal under src/forgeml."""
    for file in sorted(SRC.rglob("*.py")):
        text = file.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield f"{file.relative_to(SRC)}:{node.lineno}", node.value, text


def test_named_commands_exist() -> None:
    verbs = _verbs()
    missing = [
        f"{where}: forgeml {verb}"
        for where, text, _ in _strings()
        for match in COMMAND.finditer(text)
        if (verb := match.group(1) or match.group(2)) not in verbs
    ]
    assert not missing, f"strings name commands the CLI lacks: {missing}"


def test_named_flags_exist_for_their_command() -> None:
    verbs = _verbs()
    every_flag = set().union(*verbs.values())
    missing = []
    for where, text, file_text in _strings():
        for match in QUOTED_COMMAND.finditer(text):
            verb, rest = match.groups()
            missing += [
                f"{where}: forgeml {verb} {flag}"
                for flag in FLAG.findall(rest)
                if flag not in verbs.get(verb, ())
            ]
        for flag in FLAG.findall(text):
            if flag in FOREIGN:
                assert FOREIGN[flag] in file_text, (
                    f"{where}: {flag} is not ours and {FOREIGN[flag]} is not named"
                )
            elif flag not in every_flag:
                missing.append(f"{where}: {flag}")
    assert not missing, f"strings name flags the CLI lacks: {missing}"


def test_the_scan_catches_what_it_looks_for() -> None:
    """The patterns find the two mistakes that started this test."""
    assert COMMAND.search("run `forgeml init` first").group(1) == "init"
    assert FLAG.findall("pass --calibration-rows 512") == ["--calibration-rows"]
    assert QUOTED_COMMAND.search("``forgeml serve --prune 0.5``").groups() == ("serve", " --prune 0.5")
    assert "--prune" not in _verbs()["serve"]
