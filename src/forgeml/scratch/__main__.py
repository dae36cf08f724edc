"""``python -m forgeml.scratch``: the same as ``forgeml explain`` (the options follow directly).

An entry point, in the CLI's layer like ``forgeml/__main__.py``: the rest of :mod:`forgeml.scratch`
imports nothing of the CLI.
"""

from __future__ import annotations

import sys

from forgeml.cli.explain import explain_main


def main(argv: list[str] | None = None) -> int:
    """Run ``forgeml explain`` with ``argv``; a ForgeError prints one line and returns 2."""
    return explain_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
