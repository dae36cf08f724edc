"""Every preprocessor passes the same contract (scikit-learn's idea): fit returns self, transform
before fit raises, the JSON state round-trips exactly, and fitting is deterministic."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_mixed_table
from forgeml.config import FeaturesConfig
from forgeml.data import RawData, TaskInfo
from forgeml.errors import NotFittedError
from forgeml.features import FeaturePipeline
from forgeml.features.categorical import CategoricalFeatures
from forgeml.features.image import ImageFeatures
from forgeml.features.numeric import NumericFeatures
from forgeml.features.text import TextFeatures

TABLE = make_mixed_table(60)
TEXTS = pd.DataFrame({"text": ["a good film", "", "bad plot, naïve 東京 🙂", None, "good good bad"] * 4})
IMAGES = np.random.default_rng(0).integers(0, 255, (10, 1, 4, 4)).astype(np.float32)
RAW = RawData(TABLE.drop(columns="churned"), None, TABLE["churned"], "test")
TASK = TaskInfo("binary", ("no", "yes"))

CASES = {
    "numeric": (lambda: NumericFeatures(["age", "income"]), TABLE, lambda f, d: f.transform(d)),
    "categorical": (lambda: CategoricalFeatures(["city", "plan"]), TABLE, lambda f, d: f.one_hot(d)),
    "image": (lambda: ImageFeatures(), IMAGES, lambda f, d: f.transform(d)),
    "text_wordpiece": (
        lambda: TextFeatures(["text"], vocab_size=50, max_length=8),
        TEXTS,
        lambda f, d: f.encode(d),
    ),
    "text_bpe": (
        lambda: TextFeatures(["text"], tokenizer="bpe", vocab_size=300, max_length=8),
        TEXTS,
        lambda f, d: f.encode(d),
    ),
    "pipeline": (
        lambda: FeaturePipeline(FeaturesConfig(), TASK),
        RAW,
        lambda f, d: f.transform(d).tensors["numeric"].numpy(),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_preprocessor_contract(name: str) -> None:
    make, data, apply = CASES[name]
    with pytest.raises(NotFittedError):
        apply(make(), data)
    fitted = make()
    assert fitted.fit(data) is fitted
    out = apply(fitted, data)
    restored = type(fitted).from_json(json.loads(json.dumps(fitted.to_json())))
    np.testing.assert_array_equal(apply(restored, data), out)
    np.testing.assert_array_equal(apply(make().fit(data), data), out)


def test_numeric_fits_on_train_only_and_imputes_median() -> None:
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan]})
    features = NumericFeatures(["x"]).fit(train)
    assert features.fill_values_[0] == 2.0
    other = features.transform(pd.DataFrame({"x": [100.0, np.nan]}))
    assert other[1, 0] == pytest.approx((2.0 - features.means_[0]) / features.stds_[0])
    assert other[0, 0] > 10  # scaled with the train statistics, not refitted


def test_unseen_and_missing_categories_share_the_unknown_bucket() -> None:
    features = CategoricalFeatures(["city"]).fit(pd.DataFrame({"city": ["a", "b", "a"]}))
    ids = features.ids(pd.DataFrame({"city": ["b", "zzz", None]}))
    assert ids[:, 0].tolist() == [2, 0, 0]


def test_categories_from_whole_floats_match_ints() -> None:
    features = CategoricalFeatures(["code"]).fit(pd.DataFrame({"code": [1, 2, 3]}))
    assert features.ids(pd.DataFrame({"code": [2.0, np.nan]}))[:, 0].tolist() == [2, 0]


def test_pipeline_honours_forced_kinds_and_exclusions() -> None:
    config = FeaturesConfig(categorical_columns=["age"], exclude=["income"])
    pipeline = FeaturePipeline(config, TASK).fit(RAW)
    assert pipeline.numeric_.columns == []
    assert pipeline.categorical_.columns == ["age", "city", "plan"]
