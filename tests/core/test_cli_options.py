"""Each verb and its Python function take the same options, so the two cannot drift (STYLE.md section 7).

For every verb, the argparse destinations (positionals and flags) equal the function's parameters,
give or take the options listed below with the reason one side alone has them. Verbs whose options
live in a pydantic model (check, compress, serve) get their flags generated from it, and the
function's signature shows the same fields.
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any

import pytest

import forgeml
from forgeml.bundle.integrity import TrustOptions
from forgeml.check_options import CheckOptions
from forgeml.cli import build_parser
from forgeml.cli.options import flag_of, given
from forgeml.compression.options import CompressOptions, compress_options
from forgeml.config import ServeConfig
from forgeml.errors import ConfigError

TORCHRUN = {"nproc", "nnodes", "node_rank", "master_addr", "master_port", "rdzv_endpoint", "max_restarts"}
TRAIN_CLI_ONLY = {
    "overrides": "--set edits the config file's keys; in Python, pass a Config",
    "deterministic": "shorthand for --set train.deterministic=true",
    "profile": "shorthand for --set train.profile_steps=5",
    **dict.fromkeys(TORCHRUN, "launches torchrun workers; a Python caller is already one process"),
}
TRAIN_API_ONLY = {"callbacks": "Python objects", "console": "where progress goes; the CLI's is stdout"}
# verb -> (function, CLI-only destinations, API-only parameters), each with why only one side has it
VERBS: dict[str, tuple[Any, dict[str, str], dict[str, str]]] = {
    "train": (forgeml.train, TRAIN_CLI_ONLY, TRAIN_API_ONLY),
    "run": (forgeml.run, TRAIN_CLI_ONLY, TRAIN_API_ONLY),
    "evaluate": (forgeml.evaluate, {}, {}),
    "compare": (forgeml.compare, {}, {}),
    "predict": (forgeml.predict, {}, {"progress": "the CLI shows a bar when stderr is a terminal"}),
    "check": (
        forgeml.check,
        {"json": "prints the report as JSON", "schema": "prints the per-column table"},
        {"console": "where the --fix summary goes"},
    ),
    "export": (forgeml.export, {}, {}),
    "serve": (
        forgeml.serve,
        {"overrides": "--set takes config-style keys (serve.max_queue=64); Python passes them as keywords"},
        {},
    ),
    "verify": (forgeml.verify, {"tolerance": "decides the exit code; the report holds every difference"}, {}),
    "compress": (forgeml.compress, {}, {"console": "where progress goes; the CLI's is stdout"}),
    "init": (forgeml.init, {}, {}),
    "sign": (forgeml.sign, {}, {}),
    "plan": (forgeml.plan, {"overrides": "--set edits the config file's keys; in Python, pass a Config"}, {}),
    "tune": (
        forgeml.tune,
        {"overrides": "--set edits the config file's keys; in Python, pass a Config"},
        {"console": "where trial lines go; the CLI's is stdout"},
    ),
}
# the teaching walkthrough's Python side is forgeml.scratch (explain, trace_optimizer), not forgeml.api
NOT_IN_API = {"explain"}


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _destinations(parser: argparse.ArgumentParser) -> set[str]:
    return {
        action.dest
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and action.dest != "verbose"
    }


def _parameters(function: Any, verb: str) -> set[str]:
    parameters = inspect.signature(function).parameters.values()
    names = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if verb == "serve":  # **settings: ServeConfig's fields, checked against the bundle's kind
        names |= set(ServeConfig.model_fields)
    return names


def test_every_verb_is_matched_to_its_function() -> None:
    assert set(_verbs()) == set(VERBS) | NOT_IN_API


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_verb_and_its_function_take_the_same_options(verb: str) -> None:
    function, cli_only, api_only = VERBS[verb]
    flags = _destinations(_verbs()[verb]) - set(cli_only)
    keywords = _parameters(function, verb) - set(api_only)
    assert flags - keywords == set(), f"forgeml {verb} has options forgeml.{function.__name__} lacks"
    assert keywords - flags == set(), f"forgeml.{function.__name__} has options forgeml {verb} lacks"
    stale = (set(cli_only) - _destinations(_verbs()[verb])) | (set(api_only) - _parameters(function, verb))
    assert not stale, f"the exceptions name options that no longer exist: {stale}"


@pytest.mark.parametrize(
    ("verb", "model"),
    [
        ("compress", CompressOptions),
        ("check", CheckOptions),
        ("serve", ServeConfig),
        ("serve", TrustOptions),
        ("predict", TrustOptions),
    ],
)
def test_flags_are_generated_from_the_model(verb: str, model: type) -> None:
    """Each field is a flag whose help is the field's description."""
    actions = {action.dest: action for action in _verbs()[verb]._actions}
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no Field(description=...) for its --help"
        assert name in actions and actions[name].help.startswith(field.description.replace("%", "%%"))


def test_function_signatures_show_the_model_fields() -> None:
    for function, model in ((forgeml.compress, CompressOptions), (forgeml.check, CheckOptions)):
        parameters = inspect.signature(function).parameters
        for name, field in model.model_fields.items():
            assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
            assert parameters[name].default == field.default


def test_every_option_has_help() -> None:
    for verb, parser in _verbs().items():
        for action in parser._actions:
            if action.help != argparse.SUPPRESS:
                assert action.help, f"forgeml {verb} {action.option_strings or action.dest} has no help"


def test_a_generated_flag_reaches_the_model_and_its_errors_name_it() -> None:
    """--calibration-rows was once advertised by an error but never parsed; now every field is a flag."""
    args = build_parser().parse_args(["compress", "runs/x", "--quantize", "int8", "--calibration-rows", "64"])
    options = compress_options(**given(args, CompressOptions))
    assert options.calibration_rows == 64 and options.quantize == "int8"
    with pytest.raises(ConfigError, match="--calibration-rows must be a whole number > 0") as caught:
        compress_options(quantize="int8", calibration_rows=0)
    assert caught.value.key == flag_of("calibration_rows")


def test_serve_flags_and_set_reach_the_settings() -> None:
    from forgeml.cli.deploy import serve_settings

    args = build_parser().parse_args(
        ["serve", "b/", "--port", "9000", "--no-docs", "--set", "serve.max_queue=64", "--max-rows", "10"]
    )
    assert serve_settings(args) == {"max_queue": 64, "port": "9000", "docs": False, "max_rows": "10"}
    with pytest.raises(ConfigError, match="--config FILE"):
        serve_settings(build_parser().parse_args(["serve", "b/", "--set", "config=x.yaml"]))
