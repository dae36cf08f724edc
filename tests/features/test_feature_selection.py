"""Features that add no noise: ids and free text left out (and reported), rare categories grouped,
string values trimmed so " Private" is "Private" and " ?" is missing, at training and through the Predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forgeml
from forgeml.config import FeaturesConfig
from forgeml.data import RawData, TaskInfo
from forgeml.errors import DataError
from forgeml.features import fit_features
from forgeml.features.categorical import CategoricalFeatures


def people(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = np.array(["Ann", "Bob", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hal"])
    last = np.array(["Smith", "Jones", "Brown", "Lee", "Khan", "Diaz", "Rossi", "Wu", "Ng", "Ito"])
    work = rng.choice([" Private", " Self-emp", " State-gov"], rows)
    age = rng.normal(40, 10, rows).round()
    return pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + rows),  # a dense run of unique integers
            "name": [f"{first[i % 8]} {last[(i // 8) % 10]} {i}" for i in range(rows)],  # mostly unique, spaced
            "age": age,
            "workclass": work,
            "y": np.where((age > 40) ^ (work == " Private"), "yes", "no"),
        }
    )


def fitted(table: pd.DataFrame, **features: object):
    raw = RawData(table.drop(columns="y"), None, table["y"], "people.csv")
    return fit_features(raw, FeaturesConfig(**features), TaskInfo("classification", ("no", "yes")))


def test_identifier_is_left_out_and_listed_with_the_key_that_brings_it_back() -> None:
    pipeline = fitted(people())
    assert "customer_id" not in pipeline.input_columns
    assert "features.numeric_columns" in pipeline.left_out_["customer_id"]
    assert "customer_id" in pipeline.to_json()["left_out"]
    kept = fitted(people(), numeric_columns=["customer_id"])
    assert "customer_id" in kept.input_columns and "customer_id" not in kept.left_out_


def test_free_text_column_is_left_out_with_a_finding_naming_text_columns() -> None:
    pipeline = fitted(people())
    assert "name" not in pipeline.input_columns
    assert "features.text_columns" in pipeline.left_out_["name"]
    assert pipeline.categorical_.columns == ["workclass"]
    everything = fitted(people(), leave_out=[])
    assert {"customer_id", "name"} <= set(everything.input_columns)


def test_rare_categories_are_grouped_and_still_accepted_by_a_rejecting_server() -> None:
    table = pd.DataFrame({"c": ["a"] * 20 + ["b"] * 10 + ["rare"] * 2})
    categories = CategoricalFeatures(["c"], min_frequency=5).fit(table)
    assert categories.vocabularies_["c"] == ["<unknown>", "a", "b"]
    ids = categories.ids(pd.DataFrame({"c": ["rare", "a", None]}), unseen="reject")
    assert ids[:, 0].tolist() == [0, 1, 0]  # grouped with unknown and missing, not an error
    with pytest.raises(DataError, match="never-seen"):
        categories.ids(pd.DataFrame({"c": ["never-seen"]}), unseen="reject")
    assert FeaturesConfig().categorical.min_frequency == 5


def test_values_are_trimmed_at_training_and_at_prediction(tmp_path: Path) -> None:
    table = people()
    table.loc[::9, "workclass"] = " ?"  # the README's missing marker, after the CSV's space
    source = tmp_path / "people.csv"
    table.to_csv(source, index=False)
    from conftest import write_config

    config = write_config(
        tmp_path / "c.yaml", str(source), data={"target": "y"}, train={"epochs": 2}, check={"enabled": False}
    )
    run = forgeml.train(config)
    categories = run.pipeline.categorical_
    assert categories.vocabularies_["workclass"] == ["<unknown>", "Private", "Self-emp", "State-gov"]
    assert set(run.pipeline.left_out_) == {"customer_id", "name"}
    predictor = forgeml.load(run.bundle_path)
    rows = pd.DataFrame({"age": [30.0, 30.0, 50.0, 50.0], "workclass": [" Private", "Private", " ?", None]})
    out = predictor.predict(rows)
    probabilities = out.filter(like="yes").to_numpy()
    assert np.allclose(probabilities[0], probabilities[1]) and np.allclose(probabilities[2], probabilities[3])
    records = [{"age": 30.0, "workclass": "Private  "}, {"age": 30.0, "workclass": " Private"}]
    from forgeml.bundle.encode import RecordEncoder

    encoded = RecordEncoder(run.pipeline, unseen="reject").encode(records)  # the server's path
    assert encoded["categorical"][:, 0].tolist() == [1, 1]
