"""The lean base install: a missing extra is one line naming its ``pip install``, and base runs need none.

A package is made "not installed" by a None entry in ``sys.modules`` (import then raises
ModuleNotFoundError), for it and every submodule an earlier test may have loaded.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import make_mixed_table, mixed_table_config
from forgeml.cli import main
from forgeml.extras import MissingExtraError, require

ROOT = Path(__file__).parents[2]
# What the extras install and a tabular run must never need (transformers' own deps come with it).
EXTRA_PACKAGES = ("transformers", "peft", "gguf", "captum", "tensorboard", "model_signing", "optuna", "mlflow")


def block(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` (and their submodules) fail to import for the rest of the test."""
    for name in [*modules, *(loaded for loaded in sys.modules if loaded.startswith(modules))]:
        monkeypatch.setitem(sys.modules, name, None)


def unload(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Forget ``module`` (and its submodules) so the next import runs it again, as in a fresh process."""
    for name in [loaded for loaded in sys.modules if loaded == module or loaded.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)


def test_require_returns_the_module() -> None:
    assert require("json", "track", "anything") is json


def test_a_missing_extra_is_one_line_naming_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    block(monkeypatch, "captum")
    with pytest.raises(MissingExtraError) as caught:
        require("captum.attr", "explain", "Explaining predictions")
    assert str(caught.value) == (
        'Explaining predictions needs captum, which is not installed: pip install "forgeml[explain]"'
    )
    assert caught.value.extra == "explain"


def test_the_cli_prints_the_install_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    block(monkeypatch, "tensorboard")
    unload(monkeypatch, "torch.utils.tensorboard")  # it imports tensorboard, so it fails as it would
    config = mixed_table_config(tmp_path, train={"tensorboard": True})
    code = main(["train", str(config)])
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    assert "Traceback" not in captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert errors == [
        'error: train.tensorboard needs tensorboard, which is not installed: pip install "forgeml[track]"'
    ]


def test_a_pretrained_tokenizer_without_transformers_names_forgeml_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forgeml.features.text import TextFeatures

    block(monkeypatch, "transformers")
    table = make_mixed_table(20).rename(columns={"city": "review"})
    with pytest.raises(MissingExtraError, match=r'pip install "forgeml\[text\]"') as caught:
        TextFeatures(["review"], pretrained="some/model").fit(table)
    assert caught.value.key == "features.text.pretrained"


def test_the_base_dependencies_leave_the_extras_out() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {_name(requirement) for requirement in project["dependencies"]}
    assert base.isdisjoint(EXTRA_PACKAGES), base & set(EXTRA_PACKAGES)
    # every server takes multipart image uploads: without it forgeml verify failed on a base install
    assert {"fastapi", "uvicorn", "python-multipart"} <= base
    extras = project["optional-dependencies"]
    assert "transformers" in map(_name, extras["text"]) and "transformers" in map(_name, extras["llm"])
    assert "captum" in map(_name, extras["explain"]) and "tensorboard" in map(_name, extras["track"])
    # CI installs forgeml[dev]: it must keep pulling every extra, so every test still runs.
    assert "forgeml[all]" in extras["dev"]
    named = extras["all"][0].removeprefix("forgeml[").removesuffix("]").split(",")
    assert len(extras["all"]) == 1 and {"text", "llm", "explain", "track", "sign", "tune"} <= set(named)
    assert "optuna" in map(_name, extras["tune"]) and "mlflow-skinny" in map(_name, extras["track"])
    assert "model-signing" in map(_name, extras["sign"])


@pytest.mark.slow
def test_a_tabular_run_needs_no_extra_and_its_card_says_what_to_install(tmp_path: Path) -> None:
    """Train, evaluate and bundle in a fresh process where no extra's package can be imported."""
    config = mixed_table_config(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        for name in {EXTRA_PACKAGES!r}:
            sys.modules[name] = None
        from forgeml.cli import main
        sys.exit(main(["run", {str(config)!r}]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    run = tmp_path / "runs" / "tiny"
    note = 'needs captum, which is not installed: pip install "forgeml[explain]"'
    assert note in json.loads((run / "metrics.json").read_text())["integrated_gradients"]["not_computed"]
    assert note in html.unescape((run / "report.html").read_text())
    assert (run / "bundle" / "bundle.json").is_file()


def _name(requirement: str) -> str:
    """The distribution name of a requirement string: ``"torch>=2.10"`` -> ``"torch"``."""
    for separator in "<>=!~;[ ":
        requirement = requirement.split(separator)[0]
    return requirement.strip().lower()


def test_a_language_model_without_transformers_names_forgeml_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokenizer, model and LoRA all ask for the llm extra, each naming the config key that needs it."""
    from forgeml.config import CausalLMConfig, LoRAConfig
    from forgeml.data.lm import load_tokenizer
    from forgeml.models.causal_lm import load_model, with_lora

    block(monkeypatch, "transformers", "peft")
    config = CausalLMConfig(name="some/model")
    for load in (load_tokenizer, load_model):
        with pytest.raises(MissingExtraError, match=r'pip install "forgeml\[llm\]"') as caught:
            load(config)
        assert caught.value.key == "model.type"
    with pytest.raises(MissingExtraError, match=r'model.lora needs peft.*"forgeml\[llm\]"') as caught:
        with_lora(torch_module(), LoRAConfig())
    assert caught.value.key == "model.lora"


def torch_module() -> object:
    """A tiny stand-in model (torch is imported here, lazily, like the code under test)."""
    from torch import nn

    return nn.Linear(2, 2)
