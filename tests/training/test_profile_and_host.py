"""`forgeml train --profile` writes a trace a viewer can open; the host speed settings take effect."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from conftest import forgeml, write_config
from forgeml.config import CNNConfig, TrainConfig
from forgeml.features import InputSpec
from forgeml.models.cnn import CNN
from forgeml.training.host import tune_allocator, wants_channels_last
from forgeml.training.loop import TensorData, fit
from forgeml.training.optim import make_optimizer


def test_profile_flag_writes_a_chrome_trace_of_training_steps(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", "sklearn:breast_cancer", train={"epochs": 2, "threads": 1})
    done = forgeml("train", config, "--profile")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "runs" / "tiny" / "profile"
    assert "profiler trace:" in done.stdout
    traces = list(folder.glob("*.pt.trace.json"))
    assert len(traces) == 1
    events = json.loads(traces[0].read_text())["traceEvents"]
    names = {event.get("name") for event in events}
    assert "aten::addmm" in names and any("ProfilerStep#" in str(name) for name in names)
    assert "Self CPU" in (folder / "top_ops.txt").read_text()


def test_allocator_tuning_applies_on_glibc() -> None:
    assert tune_allocator() is True
    assert tune_allocator() is True  # idempotent


def test_channels_last_trains_the_same_function_and_returns_a_contiguous_model() -> None:
    spec = InputSpec(image_shape=(1, 8, 8))
    images = torch.rand(64, 1, 8, 8)
    data = TensorData((images,), (images.mean(dim=(1, 2, 3)) > 0.5).long())
    results = {}
    for setting in ("on", "off"):
        torch.manual_seed(0)
        model = CNN(CNNConfig(channels=[4, 8], dense=8), spec, 2)
        assert wants_channels_last(setting, model, torch.device("cpu")) is (setting == "on")
        config = TrainConfig(epochs=2, batch_size=16, threads=1, channels_last=setting, early_stopping=None)
        trained = fit(model, data, None, nn.CrossEntropyLoss(), config, seed=0, callbacks=[]).model
        weight = trained.features[0].weight
        assert weight.is_contiguous()  # bundles and ONNX export get the ordinary layout back
        results[setting] = trained(images)
    # The layout changes the order of float sums only, never the function being learned.
    torch.testing.assert_close(results["on"], results["off"], atol=1e-4, rtol=1e-4)


def test_fused_optimizer_is_used_where_torch_has_it() -> None:
    model = nn.Linear(3, 2)
    fused = make_optimizer(model, TrainConfig(fused_optimizer=True))
    plain = make_optimizer(model, TrainConfig(fused_optimizer=False))
    assert fused.defaults["fused"] is True and not plain.defaults["fused"]
