"""Text models: shapes, padding invariance, mixed tables, freezing, LoRA merged for export."""

import io
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console
from text_fixtures import make_text_table, make_tiny_bert

from forgeml.config import (
    BagOfEmbeddingsConfig,
    FeaturesConfig,
    LoRAConfig,
    MLPConfig,
    PretrainedConfig,
    TextCNNConfig,
    TextConfig,
    TrainConfig,
    TransformerConfig,
)
from forgeml.data import RawData, TaskInfo
from forgeml.errors import ConfigError
from forgeml.features import FeaturePipeline, InputSpec
from forgeml.models import build_model, exportable, predict_outputs
from forgeml.training import train_model

TASK = TaskInfo("binary", ("neg", "pos"))
SPEC = InputSpec(
    numeric_dim=2,
    categorical_cardinalities=(3,),
    embedding_dim=4,
    text_columns=2,
    text_length=10,
    vocab_size=50,
)
QUIET = Console(file=io.StringIO())


def _raw(table):
    return RawData(table.drop(columns="label"), None, table["label"], "t")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), list(make_text_table(200).review))


def _inputs(length: int, real: int = 6) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 50, (5, 2, length), generator=generator)
    mask = torch.zeros_like(ids)
    mask[..., :real] = 1
    ids = ids * mask  # padding id 0 past each text
    return torch.randn(5, 2, generator=generator), torch.randint(0, 3, (5, 1), generator=generator), ids, mask


@pytest.mark.parametrize(
    "config",
    [
        BagOfEmbeddingsConfig(embedding_dim=8),
        BagOfEmbeddingsConfig(embedding_dim=8, pooling="max", hidden=[8]),
        TextCNNConfig(embedding_dim=8, channels=4),
        TransformerConfig(width=16, heads=2, hidden=[8]),
        TransformerConfig(width=16, heads=2, positional="sinusoidal", pooling="cls"),
    ],
    ids=lambda c: f"{c.type}",
)
def test_text_models_read_mixed_inputs_and_ignore_padding(config) -> None:
    torch.manual_seed(0)
    model = build_model(config, SPEC, 3).eval()
    assert SPEC.names == ("numeric", "categorical", "text", "text_mask")
    short = _inputs(10)
    out = model(*short)
    assert out.shape == (5, 3)
    with torch.no_grad():
        numeric, categorical, ids, mask = short
        empty = mask.clone()
        empty[0] = 0  # a row whose texts are all empty still gives finite outputs
        assert torch.isfinite(model(numeric, categorical, ids * empty, empty)).all()
    # Encoders ignore padding: 10 or 7 positions (6 real tokens) give the same vectors.
    flat_ids, flat_mask = short[2].reshape(10, 10), short[3].reshape(10, 10)
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode(flat_ids, flat_mask), model.encode(flat_ids[:, :7], flat_mask[:, :7])
        )


def test_mlp_refuses_text_and_text_models_need_text() -> None:
    with pytest.raises(ConfigError, match="model.type"):
        build_model(MLPConfig(), SPEC, 2)
    with pytest.raises(ConfigError, match="features.text_columns"):
        build_model(BagOfEmbeddingsConfig(), InputSpec(numeric_dim=3), 2)
    with pytest.raises(ConfigError, match="features.text.pretrained"):
        build_model(PretrainedConfig(), SPEC, 2)
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(width=10, heads=3)


@pytest.mark.alone  # trains within 10 s
def test_bag_of_embeddings_trains_in_seconds() -> None:
    table = make_text_table(400, seed=1)
    config = FeaturesConfig(text_columns=["review"], text=TextConfig(vocab_size=300, max_length=24))
    start = time.perf_counter()
    pipeline = FeaturePipeline(config, TASK).fit(_raw(table[:300]))
    train = TrainConfig(epochs=10, learning_rate=0.01, threads=1, early_stopping=None)
    result = train_model(
        pipeline, _raw(table[:300]), _raw(table[300:]), BagOfEmbeddingsConfig(), train, seed=0, console=QUIET
    )
    seconds = time.perf_counter() - start
    outputs = predict_outputs(
        result.model, pipeline.transform(_raw(table[300:])).ordered(pipeline.input_spec.names)
    )
    accuracy = ((outputs[:, 0] > 0).numpy() == (table[300:].label == "pos").to_numpy()).mean()
    assert accuracy > 0.8 and seconds < 10


def _pretrained_pipeline(folder: Path, table) -> FeaturePipeline:
    config = FeaturesConfig(text_columns=["review"], text=TextConfig(pretrained=str(folder), max_length=24))
    return FeaturePipeline(config, TASK).fit(_raw(table))


def test_pretrained_backbone_rebuilds_from_the_spec_alone(tiny_bert: Path) -> None:
    table = make_text_table(40)
    pipeline = _pretrained_pipeline(tiny_bert, table)
    spec = pipeline.input_spec
    assert spec.backbone == str(tiny_bert) and '"hidden_size": 32' in spec.backbone_config
    torch.manual_seed(0)
    model = build_model(PretrainedConfig(pooling="cls"), spec, 1)
    # Serving: no folder, no hub; the architecture comes from the config JSON in the spec.
    served = build_model(
        PretrainedConfig(pooling="cls"),
        InputSpec(**{**spec.__dict__, "backbone": "/gone"}),
        1,
        pretrained_weights=False,
    )
    served.load_state_dict(exportable(model).state_dict())
    inputs = pipeline.transform(_raw(table)).ordered(spec.names)
    torch.testing.assert_close(predict_outputs(served, inputs), predict_outputs(model, inputs))
    with pytest.raises(ConfigError, match="model.name"):
        build_model(PretrainedConfig(name="other/model"), spec, 1)


def test_frozen_backbone_trains_only_the_head(tiny_bert: Path) -> None:
    table = make_text_table(64)
    pipeline = _pretrained_pipeline(tiny_bert, table)
    before = {
        name: p.clone()
        for name, p in build_model(PretrainedConfig(freeze=True), pipeline.input_spec, 1).named_parameters()
    }
    train = TrainConfig(epochs=1, learning_rate=0.01, threads=1, early_stopping=None)
    torch.manual_seed(0)
    result = train_model(
        pipeline, _raw(table), _raw(table[:0]), PretrainedConfig(freeze=True), train, seed=0, console=QUIET
    )
    after = dict(result.model.named_parameters())
    assert all(torch.equal(before[name], after[name]) for name in before if name.startswith("backbone."))
    assert not torch.equal(before["head.0.weight"], after["head.0.weight"])
    result.model.train()
    assert not result.model.backbone.training  # no dropout in a frozen encoder


def test_lora_trains_adapters_and_merged_weights_predict_the_same(tiny_bert: Path) -> None:
    table = make_text_table(96)
    pipeline = _pretrained_pipeline(tiny_bert, table)
    config = PretrainedConfig(
        lora=LoRAConfig(r=4, alpha=8, dropout=0.1, target_modules=["query", "value"]), hidden=[8]
    )
    train = TrainConfig(epochs=2, learning_rate=0.01, threads=1, early_stopping=None)
    result = train_model(pipeline, _raw(table), _raw(table[:0]), config, train, seed=0, console=QUIET)
    trainable = [name for name, p in result.model.named_parameters() if p.requires_grad]
    assert all("lora_" in name or name.startswith("head.") for name in trainable)
    assert any("lora_B" in name for name in trainable)
    merged = exportable(result.model)
    assert not any("lora" in key for key in merged.state_dict())
    served = build_model(config, pipeline.input_spec, 1, pretrained_weights=False)
    served.load_state_dict(merged.state_dict())  # strict: plain keys, no peft needed
    inputs = pipeline.transform(_raw(table)).ordered(pipeline.input_spec.names)
    lora_outputs = predict_outputs(result.model, inputs)
    assert (predict_outputs(served, inputs) - lora_outputs).abs().max() <= 1e-5
    assert (predict_outputs(merged, inputs) - lora_outputs).abs().max() <= 1e-5
