"""Static guards: every module imports only from its own layer or lower ones, and nothing unpickles
untrusted bytes.

The layers, lowest first (a module may import its own layer and any layer to its left)::

    errors, atomic, extras, config, check_options, config_reference, templates   (base: THE schema, what every stage needs)
    data -> checks -> features -> models -> bundle -> training -> evaluation -> compression -> deploy
    api (and the package's __init__, its public face) -> cli (the cli/ package and the __main__ entry points)

``scratch`` (the hand-written teaching network) stands apart: it imports only ``errors`` and
``atomic``, and only ``api`` and the CLI import it; its ``__main__`` (``python -m forgeml.scratch``)
is an entry point into the CLI and sits in the CLI's layer. Imports inside functions (the lazy ones that keep
``forgeml --help`` fast) and under ``TYPE_CHECKING`` count like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "forgeml"
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("atomic",),
    ("extras",),
    ("config",),
    ("check_options",),
    ("config_reference",),
    ("templates",),
    ("data",),
    ("checks",),
    ("features",),
    ("models",),
    ("bundle",),
    ("training",),
    ("evaluation",),
    ("compression",),
    ("deploy",),
    ("tracking",),
    ("tuning",),
    ("api", "__init__"),
    ("cli", "__main__"),
]
ENTRY_POINTS = {"scratch/__main__.py": "cli"}  # modules placed by their path, not their package
SCRATCH = "scratch"
SCRATCH_MAY_IMPORT = {"errors", "atomic", SCRATCH}
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
FIRST_ABOVE_STAGES = RANK["api"]  # the lowest layer that may import scratch


def _part(module: str) -> str | None:
    """The top-level part of forgeml a dotted module name belongs to (``__init__`` for the package itself)."""
    if module == "forgeml":
        return "__init__"
    if not module.startswith("forgeml."):
        return None
    return module.split(".")[1]


def _imported(tree: ast.AST, package: str) -> set[str]:
    """Every forgeml module a module's source imports, wherever the import statement sits."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "forgeml":  # `from forgeml import atomic` imports forgeml.atomic
                names.update(
                    f"forgeml.{alias.name}"
                    if (SRC / f"{alias.name}.py").is_file() or (SRC / alias.name).is_dir()
                    else "forgeml"
                    for alias in node.names
                )
            else:
                names.add(module)
    return {name for name in names if _part(name) is not None}


def layer_violations(relative: str, source: str) -> list[str]:
    """The imports of the module at ``relative`` (a path under src/forgeml) that break the layers."""
    parts = Path(relative).with_suffix("").parts
    own = parts[0]
    package = ".".join(["forgeml", *parts[:-1]]) if parts[-1] != "__init__" or len(parts) > 1 else "forgeml"
    if parts == ("__init__",):
        own = "__init__"
    own = ENTRY_POINTS.get(Path(relative).as_posix(), own)
    bad = []
    for name in sorted(_imported(ast.parse(source), package)):
        other = _part(name)
        assert other is not None
        if own == SCRATCH:
            allowed = other in SCRATCH_MAY_IMPORT
        elif other == SCRATCH:
            allowed = RANK[own] >= FIRST_ABOVE_STAGES
        else:
            allowed = RANK[other] <= RANK[own]
        if not allowed:
            bad.append(name)
    return bad


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    """A new top-level module or package must be placed in LAYERS (or be scratch) before it can pass."""
    unplaced = {
        file.relative_to(SRC).parts[0].removesuffix(".py")
        for file in _modules()
        if file.relative_to(SRC).parts[0].removesuffix(".py") not in {*RANK, SCRATCH}
    }
    assert not unplaced, f"place these in tests/core/test_architecture.py LAYERS: {sorted(unplaced)}"


@pytest.mark.parametrize("file", _modules(), ids=lambda file: str(file.relative_to(SRC)))
def test_a_module_imports_only_its_layer_or_lower_ones(file: Path) -> None:
    relative = str(file.relative_to(SRC))
    bad = layer_violations(relative, file.read_text(encoding="utf-8"))
    assert not bad, f"{relative} imports a higher layer: {bad}"


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("training/resume.py", "from forgeml import __version__"),  # the package __init__ sits with api
        ("compression/stage.py", "def f():\n    from forgeml.deploy import serving\n"),  # lazy, in a function
        ("deploy/command.py", "from forgeml.cli import console"),
        ("deploy/command.py", "import forgeml.api"),
        ("bundle/reader.py", "from ..training import loop"),  # relative
        ("data/lm.py", "from forgeml.models.causal_lm import load_model"),
        ("config.py", "from forgeml.data import load_data"),
        ("scratch/walkthrough.py", "from forgeml.config import Config"),  # scratch: errors/atomic only
        ("training/loop.py", "from forgeml.scratch import explain"),  # stages never import scratch
        ("scratch/render.py", "from forgeml.cli import console"),  # only its entry point may
        ("checks/runner.py", "from forgeml.cli.options import given"),  # no stage holds CLI code
        ("api.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from forgeml.cli import main\n"),
    ],
)
def test_the_guard_catches_a_back_import(relative: str, source: str) -> None:
    assert layer_violations(relative, source), f"{relative}: {source!r} was not caught"


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        (
            "training/lm.py",
            "from forgeml.bundle.causal_lm import write_lm_bundle\nfrom forgeml import atomic",
        ),
        ("compression/stage.py", "from forgeml.bundle.predictor import Predictor"),
        ("cli/explain.py", "from forgeml.scratch.walkthrough import explain\nfrom forgeml import api"),
        (
            "scratch/__main__.py",
            "from forgeml.cli.explain import explain_main",
        ),  # the entry point, in the CLI's layer
        ("scratch/walkthrough.py", "from forgeml.errors import ConfigError\nfrom . import layers"),
        ("__init__.py", "from forgeml import api"),
    ],
)
def test_the_guard_lets_a_downward_import_through(relative: str, source: str) -> None:
    assert layer_violations(relative, source) == []


def test_only_the_cli_parses_arguments() -> None:
    """No stage holds CLI code: argparse is imported by the cli package alone."""
    holders = [
        str(file.relative_to(SRC))
        for file in _modules()
        if file.relative_to(SRC).parts[0] != "cli"
        and any(
            isinstance(node, ast.Import | ast.ImportFrom)
            and "argparse" in {getattr(node, "module", None), *(alias.name for alias in node.names)}
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8")))
        )
    ]
    assert not holders, f"argument parsing outside forgeml/cli: {holders}"


def test_no_unsafe_deserialisation_in_src() -> None:
    for file in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = getattr(node.func.value, "id", "")
            call = f"{owner}.{node.func.attr}"
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            assert call not in {"pickle.load", "pickle.loads", "yaml.load", "joblib.load"}, f"{file}: {call}"
            if call == "torch.load":
                value = keywords.get("weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, (
                    f"{file}: torch.load without weights_only=True"
                )
            if call == "np.load":
                value = keywords.get("allow_pickle")
                assert isinstance(value, ast.Constant) and value.value is False, (
                    f"{file}: np.load without allow_pickle=False"
                )
