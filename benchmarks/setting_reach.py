"""How far one config setting travels through the package, and how often imports climb back up.

Issue #19 measured the structure by following one setting (``train.learning_rate``) through the code.
This script makes that figure repeatable on any checkout:

- *modules that read it*: modules whose source names the setting (an attribute, a key or a keyword);
- *modules on its path*: those modules plus every forgeml module they import, transitively (what a
  reader may have to open to see where the value goes);
- *back-imports*: import edges (top level or inside a function) from a module to one in a higher
  layer of the order below; the architecture test now forbids them, so the figure is 0 after #19.

    python benchmarks/setting_reach.py [--src src/forgeml] [--setting learning_rate]
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path


def _enforced_layers() -> list[tuple[str, ...]]:
    """The order tests/core/test_architecture.py enforces (read from it, not copied), plus the place
    the old forgeml.llm package had, just above deploy, so an old checkout ranks too."""
    test = Path(__file__).parents[1] / "tests" / "core" / "test_architecture.py"
    tree = ast.parse(test.read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "LAYERS")
    layers = ast.literal_eval(node.value)
    at = next(index for index, names in enumerate(layers) if "deploy" in names)
    return [*layers[: at + 1], ("llm",), *layers[at + 1 :]]


# Lowest first; a module is ranked by its top folder or file.
LAYERS = _enforced_layers()


def layer_of(module: str) -> int:
    """The layer index of ``forgeml.<part>...`` (a stage's ``command`` module ranks with its stage)."""
    parts = module.split(".")[1:] or ["__init__"]
    for index, names in enumerate(LAYERS):
        if parts[0] in names:
            return index
    return -1  # scratch and other standalone modules: not ranked


def module_name(src: Path, file: Path) -> str:
    relative = file.relative_to(src.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports(file: Path, modules: set[str]) -> set[str]:
    """The forgeml modules ``file`` imports; ``from forgeml import atomic`` is forgeml.atomic, not forgeml."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            names.update(submodules or {node.module})
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names & modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).parents[1] / "src" / "forgeml")
    parser.add_argument("--setting", default="learning_rate")
    args = parser.parse_args()
    src: Path = args.src.resolve()
    files = {module_name(src, file): file for file in sorted(src.rglob("*.py"))}
    graph = {name: imports(file, set(files)) for name, file in files.items()}
    pattern = re.compile(rf"\b{re.escape(args.setting)}\b")
    readers = sorted(name for name, file in files.items() if pattern.search(file.read_text(encoding="utf-8")))
    path, todo = set(readers), list(readers)
    while todo:
        for child in graph[todo.pop()] - path:
            path.add(child)
            todo.append(child)
    back = [
        (name, target)
        for name, targets in graph.items()
        for target in targets
        if layer_of(name) >= 0 and layer_of(target) > layer_of(name)
    ]
    back_on_path = [edge for edge in back if edge[0] in path]
    print(f"modules: {len(files)}")
    print(f"modules that read {args.setting}: {len(readers)}")
    print(f"modules on its path (readers + what they import): {len(path)}")
    print(f"back-imports on its path: {len(back_on_path)}; in the whole package: {len(back)}")
    for name, target in sorted(back):
        print(f"  {name} -> {target}")


if __name__ == "__main__":
    main()
