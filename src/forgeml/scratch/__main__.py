"""``python -m forgeml.scratch``: run ``forgeml explain`` without the full CLI.

Handy for timing the walkthrough and for teaching from a checkout that has no ``cli.py`` yet.
"""

from __future__ import annotations

import argparse
import sys

from forgeml.errors import ForgeError
from forgeml.scratch.command import register_explain


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` as the options of ``forgeml explain``; print a ForgeError's message and return 2."""
    parser = argparse.ArgumentParser(prog="python -m forgeml.scratch")
    register_explain(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["explain", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.handler(args)
    except ForgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
