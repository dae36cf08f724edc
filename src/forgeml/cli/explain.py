"""``forgeml explain``: argparse options in, the walkthrough (or trace, or comparison) out.

The handler stays thin, calling the same :mod:`forgeml.scratch` functions a user would (``explain``,
``compare_document``, ``trace_optimizer``); they are the Python side of this verb, not
:mod:`forgeml.api`, because the teaching network stands apart from the stages. Numbers are read
as text and checked by those functions, so a bad ``--lr`` gets the same ConfigError as a bad weight.
"""

from __future__ import annotations

import argparse
import json
from typing import NamedTuple

from forgeml.errors import ConfigError
from forgeml.scratch.document import compare_document
from forgeml.scratch.losses import LOSSES
from forgeml.scratch.optimizers import OPTIMIZER_NAMES
from forgeml.scratch.render import render_comparison, render_explanation, render_trace
from forgeml.scratch.trace import trace_optimizer
from forgeml.scratch.walkthrough import explain

_DESCRIPTION = """\
Walk through one forward pass, backward pass and gradient-descent step of a tiny network and print
every intermediate value beside its formula. Without options this is the design document's section
4.3 example (3 -> 2 -> 2 -> 1, ReLU, sigmoid, sigmoid, loss ½(y - ŷ)², α = 0.1) with its mistakes
fixed; --compare-document lists them."""


def register_explain(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``explain`` sub-command to ``subparsers`` and set its handler; return the sub-parser."""
    parser = subparsers.add_parser(
        "explain",
        help="the document's worked example, step by step",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    network = parser.add_argument_group("the network")
    network.add_argument(
        "--input", default="1,0,1", metavar="X", help="comma-separated inputs (default 1,0,1)"
    )
    network.add_argument("--target", default="1", metavar="Y", help="comma-separated targets (default 1)")
    network.add_argument(
        "--activations",
        default="relu,sigmoid,sigmoid",
        metavar="NAMES",
        help="one per layer: relu, sigmoid, tanh, softmax (default relu,sigmoid,sigmoid)",
    )
    network.add_argument("--loss", default="half_sse", help=f"one of {', '.join(LOSSES)} (default half_sse)")
    network.add_argument("--lr", default="0.1", metavar="ALPHA", help="learning rate α (default 0.1)")
    network.add_argument(
        "--weights", metavar="FILE", help="YAML of weights; see examples/explain_weights.yaml"
    )
    views = parser.add_argument_group("what to show")
    views.add_argument(
        "--compare-document",
        action="store_true",
        help="show where the document's printed numbers are wrong and why",
    )
    views.add_argument("--json", action="store_true", help="print the same numbers as JSON")
    views.add_argument(
        "--optimizer", metavar="NAME", help=f"trace several steps of {', '.join(OPTIMIZER_NAMES)} instead"
    )
    views.add_argument("--steps", default="3", metavar="N", help="optimizer steps to trace (default 3)")
    optimizer = parser.add_argument_group("optimizer settings (with --optimizer)")
    optimizer.add_argument("--momentum", default="0.9", metavar="MU", help="momentum μ (default 0.9)")
    optimizer.add_argument("--beta1", default="0.9", help="Adam β1 (default 0.9)")
    optimizer.add_argument("--beta2", default="0.999", help="Adam β2 (default 0.999)")
    optimizer.add_argument("--eps", default="1e-8", help="Adam ε (default 1e-8)")
    parser.set_defaults(handler=run_explain)
    return parser


def explain_main(argv: list[str]) -> int:
    """``python -m forgeml.scratch``: this verb alone, without the other verbs' parsers (and pandas)."""
    from forgeml.cli import run_command

    parser = argparse.ArgumentParser(prog="python -m forgeml.scratch")
    register_explain(parser.add_subparsers(dest="command"))
    return run_command(parser, ["explain", *argv])


def run_explain(args: argparse.Namespace) -> int:
    """Handle ``forgeml explain``: print the walkthrough, the comparison or the optimizer trace; return 0."""
    network = NetworkOptions(args.input, args.target, args.activations, args.loss, args.weights)
    if args.optimizer is not None:
        if args.compare_document:
            raise ConfigError(
                "--compare-document and --optimizer show different things; pick one.", key="--optimizer"
            )
        trace = trace_optimizer(
            args.optimizer, steps=args.steps, learning_rate=args.lr, momentum=args.momentum,
            beta1=args.beta1, beta2=args.beta2, eps=args.eps, **network._asdict(),
        )  # fmt: skip
        _emit(trace.to_dict(), render_trace(trace), as_json=args.json)
        return 0
    explanation = explain(learning_rate=args.lr, **network._asdict())
    if args.compare_document:
        comparison = compare_document(explanation)
        payload = {"walkthrough": explanation.to_dict(), "comparison": comparison.to_dict()}
        _emit(payload, render_comparison(comparison), as_json=args.json)
    else:
        _emit(explanation.to_dict(), render_explanation(explanation), as_json=args.json)
    return 0


class NetworkOptions(NamedTuple):
    """The options that pick the network, passed as text to ``explain`` and ``trace_optimizer``."""

    inputs: str
    target: str
    activations: str
    loss: str
    weights: str | None


def _emit(payload: dict[str, object], text: str, *, as_json: bool) -> None:
    """Print the JSON form for programs or the text form for people, to stdout."""
    print(json.dumps(payload, indent=2, ensure_ascii=False) if as_json else text)
