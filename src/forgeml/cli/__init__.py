"""The command line: argv -> the :mod:`forgeml.api` function of the same name -> a short summary.

One module per verb or small group of verbs (train and run, check, evaluate and compare, predict,
export, serve and verify, compress, plan, explain); each registers its parser and a thin handler.
Options declared by a pydantic model get their flags from it (:mod:`forgeml.cli.options`).
A ForgeError (bad input) prints one clear line and exits 2; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.markup import escape

from forgeml.errors import ForgeError

console = Console(highlight=False, soft_wrap=True)
error_console = Console(stderr=True, highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), argv)


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run its handler: a ForgeError is one line and its exit code (2: bad input)."""
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s: %(message)s"
    )
    try:
        return int(args.handler(args) or 0)
    except ForgeError as exc:
        if verbose:
            error_console.print_exception()
        error_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True
        )
        return getattr(exc, "exit_code", 2)  # 2: bad input; DataQualityError: 1, the data itself is dirty
    except KeyboardInterrupt:
        error_console.print("interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forgeml", description="From raw data to a deployed model with one config file."
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="show info logs and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _registrations():
        register(commands)
    for sub in commands.choices.values():  # --verbose also works after the verb
        sub.add_argument(
            "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def _registrations() -> list[Callable[[argparse._SubParsersAction], object]]:
    """Each verb's parser, in the order ``forgeml --help`` lists them; none imports torch."""
    from forgeml.cli import check, compress, deploy, evaluate, explain, init, plan, train, tune

    return [
        init.register_init,
        train.register_train,
        tune.register_tune,
        evaluate.register_evaluate,
        deploy.register_predict,
        check.register_check,
        deploy.register_deploy,
        compress.register_compress,
        plan.register_plan,
        explain.register_explain,
    ]


if __name__ == "__main__":
    sys.exit(main())
