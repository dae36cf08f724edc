"""Property-based tests of the config loader (issue 18 item 6): any bytes in a config file, any
``--set`` override and any nested dict give a Config or a ForgeError naming the problem, never
another exception (a traceback for the user).

The strategies reach past the first check: dictionaries keyed by the names the schema knows (walked
from :class:`forgeml.config.Config`, so every section and kind is tried) with values of every JSON
and YAML type, the same dumped as YAML and then damaged, YAML's own constructs (tags, anchors, duplicate
keys) and raw bytes. ``derandomize=True`` makes every CI run try the same cases.
"""

from __future__ import annotations

import tempfile
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from forgeml.config import Config, config_from_dict, load_config
from forgeml.errors import ForgeError

BOUNDED = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


def schema_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every field name of ``model`` and the models its fields hold (unions, lists and dicts opened)."""
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for inner in _models(field.annotation):
            names |= schema_names(inner, seen)
    return names


def _models(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _models(argument)
    if isinstance(annotation, types.UnionType):
        for argument in annotation.__args__:
            yield from _models(argument)


NAMES = sorted(schema_names(Config))
# Values the validators turn on: each kind's name, task names, paths, and numbers at the edges.
# fmt: off
WORDS = ["mlp", "gbm", "auto", "cnn", "causal_lm", "pretrained", "transformer", "classification",
         "regression", "adam", "cosine", "x.csv", "data.jsonl", "sklearn:iris", "label", "", "-1", "1e3"]
# fmt: on
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, 1, -1, 2**31, 10**26]),
    st.floats(),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)
configs = st.dictionaries(st.sampled_from(NAMES), values, max_size=8)

# fmt: off
YAML_PIECES = [
    "data:\n", "  source: x.csv\n", "model:\n", "  type: mlp\n", "train:\n", "  epochs: 3\n",
    "  epochs: true\n", "  epochs: 10^26\n", "a: &a [1, 2]\n", "b: *a\n", "c: *missing\n", "<<: *a\n",
    "!!python/object/apply:os.system ['true']\n", "!!binary aGVsbG8=\n", "? [x]\n: 1\n", "key: value\n",
    "key: value\n", "- item\n", "---\n", "...\n", "%YAML 1.1\n", "\t", "  ", "{", "}", "[", "]", ",",
    ":", "'", '"', "#", "\x00", "\ufeff", "é", "\ud800",
]
# fmt: on
yaml_text = st.lists(st.sampled_from(YAML_PIECES), max_size=30).map("".join)
config_bytes = st.one_of(
    configs.map(lambda raw: yaml.safe_dump(raw, allow_unicode=True)).map(str.encode),
    st.tuples(configs, st.integers(0, 400), yaml_text).map(  # a valid dump with YAML spliced in
        lambda parts: _splice(yaml.safe_dump(parts[0]), parts[1], parts[2])
    ),
    yaml_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
)
overrides = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(WORDS)).map(
            lambda parts: f"{parts[0]}.{parts[1]}={parts[2]}"
        ),
        yaml_text,
        st.text(max_size=20),
    ),
    max_size=3,
)


def _splice(text: str, at: int, piece: str) -> bytes:
    at = min(at, len(text))
    return (text[:at] + piece + text[at:]).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="forgeml-config-properties-") as name:
        yield Path(name)


def test_the_strategies_know_every_section() -> None:
    assert {"data", "model", "train", "serve", "source", "epochs", "type", "learning_rate"} <= set(NAMES)


@BOUNDED
@given(content=config_bytes, sets=overrides)
def test_any_config_file_loads_or_raises_a_forge_error(folder: Path, content: bytes, sets: list[str]) -> None:
    path = folder / "config.yaml"
    path.write_bytes(content)
    for given_overrides in ([], sets):
        try:
            load_config(path, given_overrides)
        except ForgeError as error:
            assert str(error).strip()


@pytest.mark.parametrize("depth", [50, 2_000, 100_000])
def test_deep_nesting_is_a_config_error_not_a_recursion_error(folder: Path, depth: int) -> None:
    """Found by the property below: PyYAML composes recursively, so thousands of nested brackets in the
    file (or in a --set value) overflowed the stack with a RecursionError traceback."""
    path = folder / "deep.yaml"
    path.write_text("[" * depth + "]" * depth)
    with pytest.raises(ForgeError):
        load_config(path)
    path.write_text("data:\n  source: x.csv\n")
    try:  # an unclosed bracket is not YAML: the value is kept as text, a (strange) file name
        load_config(path, ["data.source=" + "[" * depth + "]" * depth])
    except ForgeError as error:
        assert "data.source" in str(error)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(raw=configs)
def test_any_nested_dict_validates_or_raises_a_forge_error(raw: dict) -> None:
    try:
        config = config_from_dict(raw)
    except ForgeError as error:
        assert str(error).strip()
    else:
        assert isinstance(config, Config)
