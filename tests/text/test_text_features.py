"""Text columns become fixed-length token ids and masks; odd input is handled or named precisely."""

import json

import numpy as np
import pandas as pd
import pytest
from text_fixtures import make_text_table

from forgeml.config import FeaturesConfig, TextConfig, config_from_dict
from forgeml.data import RawData, TaskInfo
from forgeml.errors import ConfigError, DataError
from forgeml.features import FeaturePipeline, InputSpec
from forgeml.features.text import TextFeatures, resolve_pretrained

TABLE = make_text_table(80)


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_empty_long_and_any_unicode_text_tokenize_to_fixed_length(kind: str) -> None:
    features = TextFeatures(["review"], tokenizer=kind, vocab_size=200, max_length=12).fit(TABLE)
    odd = pd.DataFrame({"review": ["", None, "word " * 500, "東京 🙂 naïve Ünïcödé \u200b\t\n", 42]})
    ids, mask = features.encode(odd)
    assert ids.shape == mask.shape == (5, 1, 12) and ids.dtype == np.int64
    assert mask[0, 0].sum() == mask[1, 0].sum() == 2  # [CLS] [SEP] only
    assert mask[2, 0].sum() == 12  # truncated to max_length
    assert mask[3, 0].sum() > 2


def test_truncation_side_keeps_the_start_or_the_end() -> None:
    text = pd.DataFrame({"review": [" ".join(["great"] * 20 + ["awful"] * 20)]})
    right = TextFeatures(["review"], vocab_size=100, max_length=6).fit(TABLE)
    left = TextFeatures(["review"], vocab_size=100, max_length=6, truncation_side="left").fit(TABLE)
    kept_right = right.tokenizer_.decode(right.encode(text)[0][0, 0].tolist())
    kept_left = left.tokenizer_.decode(left.encode(text)[0][0, 0].tolist())
    assert "great" in kept_right and "awful" not in kept_right
    assert "awful" in kept_left and "great" not in kept_left


def test_truncation_off_refuses_a_long_text_naming_its_row_everywhere() -> None:
    """truncation_side: error: the Python predictor raises and the server answers 422 for rows[i]."""
    from forgeml.bundle.encode import RecordEncoder
    from forgeml.deploy.server.schema import data_error

    strict = TextFeatures(["review"], vocab_size=100, max_length=12, truncation_side="error").fit(TABLE)
    rows = pd.DataFrame({"review": ["great film", " ".join(["great"] * 40), "awful"]})
    with pytest.raises(
        DataError, match=r"column 'review', row 2: the text is longer than 12 tokens"
    ) as caught:
        strict.encode(rows)
    error = data_error(caught.value)
    assert (error.status, error.field, error.row) == (422, "rows[1].review", 1)
    ids, _ = strict.encode(rows.iloc[[0, 2]])  # texts that fit still encode
    assert ids.shape == (2, 1, 12)
    config = TextConfig(truncation_side="error", vocab_size=100, max_length=12)
    pipeline = FeaturePipeline(
        FeaturesConfig(text_columns=["review"], text=config), TaskInfo("binary", ("neg", "pos"))
    )
    pipeline.fit(RawData(TABLE.drop(columns="label"), None, TABLE["label"], "t"))
    with pytest.raises(DataError, match="row 2: the text is longer than 12 tokens"):
        RecordEncoder(pipeline).encode([dict(record) for record in rows.to_dict("records")])


def test_undecodable_bytes_name_the_row() -> None:
    features = TextFeatures(["review"], vocab_size=100).fit(TABLE)
    rows = pd.DataFrame({"review": [b"fine", "ok", b"bad \xff\xfe bytes"]})
    with pytest.raises(DataError, match="row 3") as caught:
        features.encode(rows)
    assert caught.value.column == "review" and caught.value.row == 3
    with pytest.raises(DataError, match="row 2"):
        features.encode(pd.DataFrame({"review": pd.Series(["ok", "lone \udcff surrogate"], dtype=object)}))


def test_undecodable_bytes_in_a_csv_name_the_row(tmp_path) -> None:
    from forgeml.data import load_source

    path = tmp_path / "reviews.csv"
    # a real UTF-8 accent keeps the file UTF-8 (a file with none would be read as cp1252 by the dialect rule)
    path.write_bytes('review,label\ncafé au lait,a\n"bad '.encode() + b'\xff\xfe bytes",b\nok,a\n')
    with pytest.raises(DataError, match="column 'review', row 2"):
        load_source(str(path), "label")


def test_pipeline_mixes_text_numeric_and_categorical_and_round_trips() -> None:
    raw = RawData(TABLE.drop(columns="label"), None, TABLE["label"], "t")
    config = FeaturesConfig(text_columns=["review"], text=TextConfig(vocab_size=150, max_length=16))
    pipeline = FeaturePipeline(config, TaskInfo("binary", ("neg", "pos"))).fit(raw)
    spec = pipeline.input_spec
    assert spec.names == ("numeric", "text", "text_mask")  # shop is one-hot inside numeric
    assert (spec.text_columns, spec.text_length) == (1, 16) and spec.vocab_size <= 150
    assert pipeline.input_columns == ["stars_hint", "shop", "review"]
    tensors = pipeline.transform(raw).tensors
    assert tensors["text"].shape == (80, 1, 16) and tensors["numeric"].shape == (80, 4)
    restored = FeaturePipeline.from_json(json.loads(json.dumps(pipeline.to_json())))
    assert restored.input_spec == spec
    assert InputSpec(**json.loads(json.dumps(spec.__dict__))) == spec  # what the bundle stores
    assert np.array_equal(restored.transform(raw).tensors["text"], tensors["text"])


def test_text_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="features.text.tokenizer"):
        config_from_dict(
            {
                "data": {"source": "x.csv"},
                "model": {"type": "mlp"},
                "features": {"text": {"tokenizer": "chars"}},
            }
        )
    # without model:, a table gets auto, which reads no text settings: the error says so and the way out
    with pytest.raises(
        ConfigError, match=r"auto is the default for a table without model:; set model: \{type: mlp\}"
    ):
        config_from_dict({"data": {"source": "x.csv"}, "features": {"text": {"max_length": 64}}})
    raw = RawData(TABLE.drop(columns="label"), None, TABLE["label"], "t")
    with pytest.raises(ConfigError, match="features.text_columns"):
        FeaturePipeline(FeaturesConfig(text_columns=["nope"]), TaskInfo("binary", ("neg", "pos"))).fit(raw)
    with pytest.raises(ConfigError, match="features.text.pretrained"):
        resolve_pretrained("package:no_such_model_package_here")
    with pytest.raises(ConfigError, match="features.text.pretrained"):
        TextFeatures(["review"], pretrained="/no/such/folder").fit(TABLE)
