"""Static guards: stages never import later stages, and nothing unpickles untrusted bytes."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "forgeml"
# compression runs before serving but imports deploy (bundles, ONNX export, the Predictor) to build
# and measure its variants, so it is last in the import order; deploy never imports compression.
# llm (language models) imports the training engine and the deploy server's pieces, and no stage
# imports it, so it comes after deploy.
STAGES = ["data", "checks", "features", "models", "training", "evaluation", "deploy", "compression", "llm"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_imports_only_stages_to_its_left(stage: str) -> None:
    later = STAGES[STAGES.index(stage) + 1 :]
    for file in (SRC / stage).rglob("*.py"):
        bad = {
            name
            for name in _imports(file)
            for other in later
            if name == f"forgeml.{other}" or name.startswith(f"forgeml.{other}.")
        }
        assert not bad, f"{file.relative_to(SRC)} imports a later stage: {bad}"


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
