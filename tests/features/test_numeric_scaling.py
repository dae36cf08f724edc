"""features.numeric.scale: the auto rule per column, and the quantile/log map equal in numpy, torch and ONNX."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from forgeml.config import config_from_dict
from forgeml.features.numeric import NumericFeatures
from forgeml.features.numeric_graph import NumericGraph
from forgeml.features.scaling import choose_scaling, quantile_knots


def columns(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "normal": rng.normal(40, 12, rows),
            "income": rng.lognormal(10, 1.0, rows),  # heavy right tail, never negative: log1p is enough
            "returns": rng.standard_t(2, rows),  # heavy tails both ways: standard
            "rating": rng.integers(1, 6, rows).astype(float),  # five values: standard
            "spiky": np.where(rng.random(rows) < 0.05, 1e6, 1.0) * rng.normal(0, 1, rows),  # far outliers: quantile
        }
    )


def test_auto_chooses_from_the_training_values() -> None:
    fitted = NumericFeatures(list(columns()), scale="auto").fit(columns())
    chosen = dict(zip(fitted.columns, fitted.scalings_, strict=True))
    assert chosen == {
        "normal": "standard",
        "income": "standard",
        "returns": "standard",
        "rating": "standard",
        "spiky": "quantile",
    }
    assert fitted.log_.tolist() == [False, True, False, False, False]
    assert "skewness" in fitted.reasons_["income"] and "log1p" in fitted.reasons_["income"]
    assert "far outliers" in fitted.reasons_["spiky"]
    heavy = fitted.transform(columns(seed=1))
    # far outliers would squash the rest of the column to ~0 under standard scaling: the quantile map
    # keeps it spread and bounded; a heavy tail (t with 2 degrees of freedom) keeps its shape in
    # standard units, tens of units out at most, not the hundreds of a value beyond a squashed column
    assert np.abs(heavy[:, 4]).max() < 6 and np.abs(heavy[:, 4]).std() > 0.5
    assert np.abs(heavy).max() < 60


def test_the_default_is_auto_and_every_named_scaling_is_accepted() -> None:
    base = {"data": {"source": "t.csv", "target": "y"}, "model": {"type": "mlp"}}
    assert config_from_dict(base).features.numeric.scale == "auto"
    for scale in ("standard", "robust", "quantile", "none"):
        config = config_from_dict(base | {"features": {"numeric": {"scale": scale}}})
        assert choose_scaling(np.arange(50.0), config.features.numeric.scale).name == scale


def test_quantile_map_is_continuous_through_ties_and_flat_outside() -> None:
    values = np.concatenate([np.zeros(500), np.linspace(1, 10, 500)])  # half the rows tie at 0
    knots, scores = quantile_knots(values)
    assert np.all(np.diff(knots) > 0) and np.all(np.diff(scores) > 0)
    fitted = NumericFeatures(["x"], scale="quantile").fit(pd.DataFrame({"x": values}))
    out = fitted.transform(pd.DataFrame({"x": [-100.0, 0.0, 10.0, 1e9]}))[:, 0]
    assert out[0] == out[1] == pytest.approx(scores[0], abs=1e-6)  # below the range: the first knot's score
    assert out[3] == out[2] == pytest.approx(scores[-1], abs=1e-6)


@pytest.mark.parametrize("scale", ["auto", "quantile", "robust", "standard"])
def test_torch_graph_equals_the_numpy_transform(scale: str) -> None:
    train, other = columns(), columns(rows=500, seed=2)
    other.iloc[::5, 1] = np.nan  # imputed inside the graph
    other.iloc[3, 1] = -50.0  # below a log column's training minimum: clipped at 0 in both
    other.iloc[4, 2] = 1e12  # beyond the last knot
    fitted = NumericFeatures(list(train), scale=scale).fit(train)
    graph = NumericGraph(fitted).eval()
    raw = torch.from_numpy(other.to_numpy(dtype=np.float64, copy=True))
    # float32 output: relative for the unbounded scalings' far values (1e12 / IQR), 1e-5 elsewhere
    np.testing.assert_allclose(graph(raw).to(torch.float32).numpy(), fitted.transform(other), rtol=1e-6, atol=1e-5)


def test_quantile_and_log_onnx_equal_eager(tmp_path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    train, other = columns(), columns(rows=700, seed=3)
    other.iloc[::7, 0] = np.nan
    fitted = NumericFeatures(list(train), scale="auto").fit(train)
    assert {"quantile", "standard"} <= set(fitted.scalings_) and fitted.log_.any()
    graph = NumericGraph(fitted).eval()
    example = torch.zeros(2, len(train.columns), dtype=torch.float64)
    path = tmp_path / "numeric.onnx"
    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(graph, (example,), str(path), dynamo=True, input_names=["numeric"],
                      dynamic_shapes=({0: batch},))  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"numeric": other.to_numpy(dtype=np.float64)})
    assert np.abs(onnx_out - fitted.transform(other)).max() <= 1e-5
