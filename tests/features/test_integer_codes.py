"""features.numeric.integer_codes: which columns are codes, their indicators in numpy, torch and ONNX,
the config rules (networks only), and what they are for: a network that learns each code's own effect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import forgeml
from forgeml.bundle.predictive import input_schema
from forgeml.config import config_from_dict
from forgeml.data import RawData
from forgeml.errors import ConfigError
from forgeml.evaluation.explain import integrated_gradients
from forgeml.features.codes import MAX_VALUES, MIN_ROWS, code_values
from forgeml.features.numeric import NumericFeatures
from forgeml.features.numeric_graph import NumericGraph


def test_a_code_is_a_whole_number_column_whose_values_the_target_follows_unevenly() -> None:
    rng = np.random.default_rng(0)
    person = np.repeat(np.arange(40.0), 10)  # 40 values: at least MIN_VALUES
    jagged = rng.normal(0, 1, 40)[person.astype(int)] + rng.normal(0, 0.3, 400)
    assert code_values(person, jagged).tolist() == list(range(40))
    smooth = 0.1 * person + rng.normal(0, 0.3, 400)  # a straight line: the number is enough
    assert code_values(person, smooth) is None
    assert code_values(person, rng.normal(0, 1, 400)) is None  # the target ignores it
    classes = np.where(jagged > 0, 1, 0).astype(np.int64)  # class indices: judged one 0/1 column a class
    assert code_values(person, classes) is not None
    rare = np.concatenate([person, [77.0] * (MIN_ROWS - 1), [np.nan] * 5])  # 77 is too rare; NaN is missing
    padded = np.concatenate([jagged, np.zeros(MIN_ROWS - 1 + 5)])
    assert code_values(rare, padded).tolist() == list(range(40))
    assert code_values(person + 0.5, jagged) is None  # fractions: a measurement
    rating = np.repeat(np.arange(10.0), 40)  # under MIN_VALUES: a rating or a small count, however uneven
    assert code_values(rating, rng.normal(0, 1, 10)[rating.astype(int)]) is None
    flag = np.repeat([0.0, 1.0], 200)
    assert code_values(flag, flag + rng.normal(0, 0.1, 400)) is None  # the number says it all
    many = np.arange(MAX_VALUES + 1.0).repeat(MIN_ROWS)  # too many values: an amount
    assert code_values(many, rng.normal(0, 1, len(many))) is None


def test_a_thin_jumpy_tail_does_not_make_a_smooth_column_a_code() -> None:
    # Years of experience: wages follow a smooth curve over 40 years of 300 rows each; the last three
    # years have 8 rows each and jump. Unweighted, those three neighbour pairs outweighed the 39 smooth
    # ones and the column read as a code (census_wage); weighed by their rows, it does not.
    for seed in range(5):
        rng = np.random.default_rng(seed)
        years = np.repeat(np.arange(43.0), np.r_[np.full(40, 300), [8, 8, 8]])
        tail = np.r_[np.zeros(40), [-0.6, 0.3, -0.9]][years.astype(int)]
        wages = -0.0008 * (years - 20) ** 2 + tail + rng.normal(0, 0.5, len(years))
        assert code_values(years, wages) is None
        # the same rows with every year's own level, in no order, still read as a code
        levels = rng.normal(0, 0.3, 43)[years.astype(int)]
        assert code_values(years, levels + rng.normal(0, 0.5, len(years))) is not None


def table(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "person": rng.integers(0, 30, rows),
            "visits": rng.geometric(0.05, rows),  # a skewed count: log1p-scaled, and a code
            "height": rng.normal(170, 10, rows),
        }
    )


def outcome(frame: pd.DataFrame) -> np.ndarray:
    """A target with each person's and each visit count's own effect, in no order of the numbers."""
    effects = np.random.default_rng(9).normal(0, 1, 200)
    return (
        effects[frame["person"]] + effects[100 + frame["visits"].clip(upper=99)] + 0.01 * frame["height"]
    ).to_numpy()


def test_indicators_follow_the_scaled_numbers_and_read_the_raw_values() -> None:
    train = table()
    fitted = NumericFeatures(list(train), scale="auto", integer_codes="auto").fit(train, outcome(train))
    plain = NumericFeatures(list(train), scale="auto").fit(train, outcome(train))
    assert sorted(fitted.codes_) == [0, 1] and fitted.log_[1]  # visits is logged and still a code
    assert fitted.width == 3 + len(fitted.codes_[0]) + len(fitted.codes_[1]) and plain.width == 3
    rows = pd.DataFrame({"person": [7, 999, None], "visits": [3, 2, 1], "height": [160.0, 170.0, 180.0]})
    out = fitted.transform(rows)
    np.testing.assert_array_equal(out[:, :3], plain.transform(rows))  # the numbers are scaled as before
    person = out[:, 3 : 3 + len(fitted.codes_[0])]
    assert person[0].tolist() == (fitted.codes_[0] == 7).tolist() and person[0].sum() == 1
    assert person[1].sum() == person[2].sum() == 0  # unseen and missing set no indicator
    visits = out[:, 3 + len(fitted.codes_[0]) :]
    assert visits[:, fitted.codes_[1].tolist().index(3.0)].tolist() == [1, 0, 0]  # raw 3, not log1p(3)
    unjudged = NumericFeatures(list(train), scale="auto", integer_codes="auto").fit(train)
    assert unjudged.codes_ == {}  # no target to judge the columns by: no codes


def test_torch_graph_and_onnx_equal_the_numpy_transform_and_json_round_trips(tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    train, other = table(), table(rows=200, seed=1)
    other.loc[::9, "person"] = np.nan
    other.loc[3, "person"] = 500  # unseen
    fitted = NumericFeatures(list(train), scale="auto", integer_codes="auto").fit(train, outcome(train))
    restored = NumericFeatures.from_json(fitted.to_json())
    assert restored.width == fitted.width and restored.codes_.keys() == fitted.codes_.keys()
    graph = NumericGraph(restored).eval()
    raw = other.to_numpy(dtype=np.float64, copy=True)
    expected = fitted.transform(other)
    np.testing.assert_allclose(graph(torch.from_numpy(raw)).to(torch.float32).numpy(), expected, atol=1e-6)
    path = tmp_path / "numeric.onnx"
    torch.onnx.export(graph, (torch.zeros(2, 3, dtype=torch.float64),), str(path), dynamo=True,
                      input_names=["numeric"], dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"numeric": raw})
    assert onnx_out.shape == expected.shape and np.abs(onnx_out - expected).max() <= 1e-5
    old = {key: value for key, value in fitted.to_json().items() if key not in ("codes", "integer_codes")}
    assert NumericFeatures.from_json(old).width == 3  # a bundle written before integer codes


def test_networks_read_codes_by_default_trees_never() -> None:
    base = {"data": {"source": "t.csv", "target": "y"}}
    assert config_from_dict(base | {"model": {"type": "mlp"}}).features.numeric.integer_codes == "auto"
    assert config_from_dict(base | {"model": {"type": "gbm"}}).features.numeric.integer_codes == "none"
    assert config_from_dict(base).features.numeric.integer_codes == "none"  # auto: its boosters' pipeline
    with pytest.raises(
        ConfigError, match=r"features\.numeric\.integer_codes does not apply to model\.type gbm"
    ):
        config_from_dict(
            base | {"model": {"type": "gbm"}, "features": {"numeric": {"integer_codes": "auto"}}}
        )


def people(rows: int, seed: int, effect: np.ndarray) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    person, dose, age = rng.integers(0, len(effect), rows), rng.normal(0, 1, rows), rng.integers(20, 70, rows)
    y = effect[person] + 0.5 * dose + 0.02 * (age - 45) + rng.normal(0, 0.2, rows)
    return pd.DataFrame({"person": person, "dose": dose, "age": age, "y": y})


def test_a_network_learns_each_codes_own_effect(tmp_path: Path) -> None:
    # Each of 60 people has their own effect, in no order of their number: a smooth curve through the
    # codes cannot fit it; one indicator per person can.
    effect = np.random.default_rng(0).normal(0, 1, 60)
    people(3000, 1, effect).to_csv(tmp_path / "rows.csv", index=False)
    fresh = people(1000, 2, effect)

    def r2(codes: str) -> tuple[float, forgeml.api.Run]:
        config = config_from_dict(
            {
                "seed": 0,
                "output_dir": str(tmp_path / codes),
                "data": {"source": str(tmp_path / "rows.csv"), "target": "y"},
                "model": {"type": "mlp", "hidden": [64], "numeric_embedding": "none"},
                "features": {"numeric": {"integer_codes": codes}},
                "train": {"epochs": 25, "threads": 1},
                "check": {"enabled": False},
            }
        )
        run = forgeml.train(config)
        guess = forgeml.load(run.bundle_path).predict(fresh.drop(columns="y"))["prediction"].to_numpy()
        return 1 - np.mean((fresh["y"] - guess) ** 2) / np.var(fresh["y"]), run

    with_codes, run = r2("auto")
    without, _ = r2("none")
    assert with_codes > 0.9 and without < 0.6, (with_codes, without)
    assert list(run.pipeline.numeric_.codes_) == [
        0
    ]  # person; age follows a straight line: its number is enough
    # the explanations fold a code's indicators into its column: one row per raw column, person first
    explained = integrated_gradients(run.model, run.pipeline, RawData(fresh, None, None, "fresh"), seed=0)
    assert explained is not None and explained.columns == ("person", "dose", "age")
    assert explained.mean_abs[0] > explained.mean_abs[1]  # people differ by sd 1, doses move y by sd 0.5
    schema = input_schema(forgeml.load(run.bundle_path).pipeline)
    assert schema["columns"] == [{"name": name, "kind": "numeric"} for name in ("person", "dose", "age")]


def test_auto_gives_codes_to_its_network_not_its_booster_and_exports_one_graph(tmp_path: Path) -> None:
    effect = np.random.default_rng(0).normal(0, 1, 40)
    people(1200, 1, effect).to_csv(tmp_path / "rows.csv", index=False)
    config = config_from_dict(
        {
            "seed": 0,
            "output_dir": str(tmp_path),
            "data": {"source": str(tmp_path / "rows.csv"), "target": "y"},
            "model": {"type": "auto", "candidates": ["gbm", "mlp"], "bag_folds": 0},
            "train": {"epochs": 3, "threads": 1},
            "check": {"enabled": False},
        }
    )
    run = forgeml.train(config)
    assert run.pipeline.numeric_.codes_ == {}  # the boosters' pipeline: raw numbers
    networks = [module for name, module, _ in run.model.candidates() if name.startswith("mlp")]
    assert networks and list(networks[0].inference.numeric_graph.code_columns) == [0]  # person
    forgeml.export(run.bundle_path)
    rows = people(300, 2, effect).drop(columns="y")
    rows.loc[::7, "person"] = np.nan  # missing: no indicator, imputed number
    onnx_out = forgeml.load(run.bundle_path, engine="onnx").predict(rows)["prediction"].to_numpy(float)
    torch_out = forgeml.load(run.bundle_path, engine="torch").predict(rows)["prediction"].to_numpy(float)
    assert np.abs(onnx_out - torch_out).max() <= 1e-4
