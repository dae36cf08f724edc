"""Starting the CLI imports no torch (nor pandas): every verb's parser loads in ~1 s, and a verb pays for what it runs."""

from __future__ import annotations

import subprocess
import sys


def test_help_and_verb_parsers_do_not_import_torch() -> None:
    code = (
        "import sys; from forgeml.cli import build_parser; build_parser(); "
        "import forgeml.deploy, forgeml.compression; "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr


def test_help_does_not_import_pandas() -> None:
    """Every verb's parser is built on each call; pandas (forgeml.checks, forgeml.data) waits for a verb that reads data."""
    code = "import sys; from forgeml.cli import build_parser; build_parser(); print('pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr


def test_lazy_package_names_still_resolve() -> None:
    import forgeml.compression
    import forgeml.deploy

    assert forgeml.deploy.Predictor.__name__ == "Predictor"
    assert callable(forgeml.compression.compress_run)
    try:
        forgeml.deploy.no_such_name  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
