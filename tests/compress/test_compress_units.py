"""Pruning, the distillation loss and the packed-target training, checked against references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from conftest import make_mixed_table
from forgeml.compression.distill import (
    distill,
    distillation_loss,
    loop_callbacks,
    packed_data,
    student_by_width,
)
from forgeml.compression.prune import (
    kept_rows,
    make_permanent,
    mask_unstructured,
    prune_structured,
    zero_fraction,
)
from forgeml.compression.stage import pick
from forgeml.config import CNNConfig, FeaturesConfig, MLPConfig, TrainConfig
from forgeml.data import RawData, Splits
from forgeml.data.split import TaskInfo
from forgeml.evaluation.report import with_section
from forgeml.features import InputSpec, fit_features
from forgeml.models import build_model, count_parameters
from forgeml.models.mlp import resolved_hidden
from forgeml.training.loop import Session, fit
from forgeml.training.losses import make_loss
from forgeml.training.stage import tensor_data


def _masked_copy(model: nn.Module, keep: dict[str, torch.Tensor]) -> nn.Module:
    """The original model with every pruned neuron/channel zeroed (weights and bias) instead of removed."""
    clone = build_model(model.config_, model.spec_, model.output_dim_)
    clone.load_state_dict(model.state_dict())
    for name, rows in keep.items():
        layer = clone.get_submodule(name)
        dropped = torch.ones(layer.weight.shape[0], dtype=torch.bool)
        dropped[rows] = False
        with torch.no_grad():
            layer.weight[dropped] = 0
            layer.bias[dropped] = 0
    return clone.eval()


def _model(config: MLPConfig | CNNConfig, spec: InputSpec, output_dim: int) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(config, spec, output_dim).eval()
    model.config_, model.spec_, model.output_dim_ = config, spec, output_dim
    return model


def test_structured_mlp_pruning_equals_zeroing_the_dropped_neurons() -> None:
    spec = InputSpec(numeric_dim=6)
    model = _model(MLPConfig(hidden=[16, 8]), spec, 3)
    pruned, config = prune_structured(model, model.config_, spec, 3, 0.5)
    assert config.hidden == [8, 4] and count_parameters(pruned) < 0.4 * count_parameters(model)
    keep_first = kept_rows(model.layers[0].weight, 0.5)
    keep_second = kept_rows(model.layers[2].weight[:, keep_first], 0.5)
    reference = _masked_copy(model, {"layers.0": keep_first, "layers.2": keep_second})
    inputs = torch.randn(32, 6)
    torch.testing.assert_close(pruned(inputs), reference(inputs))


def test_structured_pruning_of_submodels_slices_every_head_as_zeroing_would() -> None:
    spec = InputSpec(numeric_dim=6)
    model = _model(MLPConfig(hidden=[16, 8], submodels=3), spec, 2)
    pruned, config = prune_structured(model, model.config_, spec, 2, 0.5)
    assert config.hidden == [8, 4] and config.submodels == 3
    assert pruned.heads.weight.shape == (3, 4, 2)  # each submodel's head reads the 4 kept units
    keep_first = kept_rows(model.layers[0].weight, 0.5)
    keep_second = kept_rows(model.layers[2].weight[:, keep_first], 0.5)
    reference = _masked_copy(model, {"layers.0": keep_first, "layers.2": keep_second})
    inputs = torch.randn(32, 6)
    torch.testing.assert_close(pruned(inputs), reference(inputs))


def test_structured_cnn_pruning_equals_zeroing_the_dropped_channels() -> None:
    spec = InputSpec(image_shape=(1, 8, 8))
    model = _model(CNNConfig(channels=[8, 16], dense=12), spec, 4)
    pruned, config = prune_structured(model, model.config_, spec, 4, 0.5)
    assert (config.channels, config.dense) == ([4, 8], 6)
    first = kept_rows(model.features[0].weight, 0.5)
    second = kept_rows(model.features[3].weight[:, first], 0.5)
    area = model.head[1].weight.shape[1] // 16
    columns = (second[:, None] * area + torch.arange(area)).flatten()
    dense = kept_rows(model.head[1].weight[:, columns], 0.5)
    reference = _masked_copy(model, {"features.0": first, "features.3": second, "head.1": dense})
    images = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(pruned(images), reference(images))


def test_pruning_nothing_changes_nothing_and_a_layer_never_vanishes() -> None:
    spec = InputSpec(numeric_dim=4)
    model = _model(MLPConfig(hidden=[1, 6]), spec, 1)
    same, config = prune_structured(model, model.config_, spec, 1, 0.0)
    inputs = torch.randn(8, 4)
    torch.testing.assert_close(same(inputs), model(inputs))
    assert prune_structured(model, model.config_, spec, 1, 0.99)[1].hidden == [1, 1]


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_pruning_zeroes_the_share_and_is_permanent(scope: str) -> None:
    model = _model(MLPConfig(hidden=[32, 16]), InputSpec(numeric_dim=10), 2)
    mask_unstructured(model, 0.6, scope=scope)
    make_permanent(model)
    assert zero_fraction(model) == pytest.approx(0.6, abs=0.01)
    assert all("_orig" not in name and "_mask" not in name for name in model.state_dict())


def test_a_width_factor_scales_every_width() -> None:
    assert student_by_width(MLPConfig(hidden=[32, 9]), 0.5).hidden == [16, 4]
    # hidden: auto is resolved first, then scaled
    teacher = resolved_hidden(MLPConfig(hidden="auto"))
    assert student_by_width(MLPConfig(hidden="auto"), 0.5).hidden == [round(w / 2) for w in teacher]
    student = student_by_width(CNNConfig(channels=[32, 64], dense=64), 0.25)
    assert (student.channels, student.dense) == ([8, 16], 16)


def test_the_distillation_loss_matches_its_formula() -> None:
    """Classification: alpha T^2 KL(p_t || p_s) + (1 - alpha) CE, computed by hand in NumPy."""
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 1, 0])
    packed = torch.cat([teacher, labels.float()[:, None]], dim=1)
    loss = distillation_loss(
        "classification",
        make_loss("auto", TaskInfo("classification", (0, 1, 2, 3))),
        temperature=2.0,
        alpha=0.3,
    )

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    s, t = student.double().numpy(), teacher.double().numpy()
    p_s, p_t = softmax(s / 2), softmax(t / 2)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1).mean()
    ce = -np.log(softmax(s)[np.arange(6), labels.numpy()]).mean()
    assert float(loss(student, packed)) == pytest.approx(0.3 * 4 * kl + 0.7 * ce, rel=1e-5)


def test_the_binary_soft_term_is_the_bernoulli_kl() -> None:
    student, teacher = torch.tensor([[0.5], [-1.0]]), torch.tensor([[2.0], [-0.5]])
    packed = torch.cat([teacher, torch.tensor([[1.0], [0.0]])], dim=1)
    loss = distillation_loss(
        "binary", make_loss("auto", TaskInfo("binary", ("a", "b"))), temperature=1.0, alpha=1.0
    )
    p, q = torch.sigmoid(teacher), torch.sigmoid(student)
    kl = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).mean()
    assert float(loss(student, packed)) == pytest.approx(float(kl), rel=1e-5)
    assert float(loss(teacher, packed)) == pytest.approx(0.0, abs=1e-6)


def _splits() -> tuple[Splits, object]:
    table = make_mixed_table(200)
    target = table.pop("churned")
    raw = RawData(table, None, target, "mixed")
    parts = [raw.take(np.arange(start, stop)) for start, stop in ((0, 120), (120, 160), (160, 200))]
    task = TaskInfo("binary", ("no", "yes"))
    pipeline = fit_features(parts[0], FeaturesConfig(), task)
    return Splits(*parts, task=task), pipeline


def test_distillation_runs_the_training_loop_with_early_stopping_and_checkpoints(tmp_path) -> None:
    splits, pipeline = _splits()
    torch.manual_seed(0)
    teacher = build_model(MLPConfig(hidden=[16]), pipeline.input_spec, 1).eval()
    student = build_model(MLPConfig(hidden=[4]), pipeline.input_spec, 1)
    config = TrainConfig(epochs=40, threads=1, learning_rate=0.01, early_stopping={"patience": 2})
    result = distill(
        teacher, student, pipeline, splits, config, seed=0, temperature=2.0, alpha=0.5, work_dir=tmp_path
    )
    assert all(epoch.val_loss is not None for epoch in result.history)
    assert result.best_epoch is not None and len(result.history) < 40  # early stopping stopped it
    assert (tmp_path / "checkpoints" / "best.pt").is_file()
    # the packed target resumes like any target: same data fingerprint, the state comes back
    # (the run had finished by early stopping, so the resumed loop has nothing left to do)
    train = packed_data(tensor_data(pipeline, splits.train), teacher)
    validation = packed_data(tensor_data(pipeline, splits.validation), teacher)
    loss = distillation_loss("binary", make_loss("auto", splits.task), temperature=2.0, alpha=0.5)
    resumed = fit(
        build_model(MLPConfig(hidden=[4]), pipeline.input_spec, 1), train, validation, loss, config, seed=0,
        callbacks=loop_callbacks(config, True, None), session=Session(run_dir=tmp_path, resume="require"),
    )  # fmt: skip
    assert resumed.resumed_step == 4 * len(result.history)  # 120 rows / batch 32 = 4 steps an epoch
    assert [epoch.val_loss for epoch in resumed.history] == [epoch.val_loss for epoch in result.history]


def _result(name: str, drop: float, size: int):
    from forgeml.compression.measure import VariantResult

    return VariantResult(name, None, (), "accuracy", 1 - drop, drop, size, size, 0.0, 1.0, 1.0, "x", None)  # type: ignore[arg-type]


def test_max_drop_never_picks_a_variant_over_the_budget() -> None:
    variants = [
        _result("baseline", 0.0, 100),
        _result("a", 0.0100001, 10),
        _result("b", 0.01, 50),
        _result("c", 0.02, 5),
    ]
    assert pick(variants, 0.01).name == "b"
    assert pick(variants, 0.0).name == "baseline"
    assert pick(variants, 0.05).name == "c"
    rng = np.random.default_rng(0)
    for _ in range(200):  # any table: the pick is within budget and the smallest that is
        table = [_result("baseline", 0.0, 1000)] + [
            _result(str(i), float(rng.uniform(-0.02, 0.05)), int(rng.integers(1, 999))) for i in range(6)
        ]
        chosen = pick(table, 0.01)
        assert chosen.drop <= 0.01
        assert chosen.model_bytes == min(v.model_bytes for v in table if v.drop <= 0.01)


def test_with_section_adds_then_replaces_one_section() -> None:
    page = (
        '<html><body><section><h2 id="intended-use-and-limitations">Intended use</h2></section></body></html>'
    )
    once = with_section(page, "Compression", "<p>one</p>")
    twice = with_section(once, "Compression", "<p>two</p>")
    assert once.index("Compression") < once.index("intended-use")
    assert twice.count('id="compression"') == 1 and "<p>two</p>" in twice and "<p>one</p>" not in twice
    assert pd.Series([twice]).str.contains("intended-use").all()


def test_structured_pruning_refuses_models_without_recorded_widths() -> None:
    from forgeml.compression.prune import check_structured
    from forgeml.config import TransformerConfig
    from forgeml.errors import ConfigError

    check_structured(MLPConfig())
    with pytest.raises(ConfigError, match="--prune-method global"):
        check_structured(TransformerConfig())


def test_unstructured_pruning_leaves_attention_projections_alone_and_trains() -> None:
    """Attention reads out_proj.weight without calling the layer: a mask there would break backward."""
    torch.manual_seed(0)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1)
    mask_unstructured(encoder, 0.5, scope="global")
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.1)
    for _ in range(2):  # a second step used to fail: "backward through the graph a second time"
        optimizer.zero_grad()
        encoder(torch.randn(4, 5, 8)).square().mean().backward()
        optimizer.step()
    make_permanent(encoder)
    assert not hasattr(encoder.layers[0].self_attn.out_proj, "weight_orig")
    assert float((encoder.layers[0].linear1.weight == 0).float().mean()) > 0.2


def test_minify_strips_exporter_metadata_and_unused_opsets_and_keeps_the_outputs() -> None:
    """What the exporter and the quantizer add besides the graph: it goes, the computation stays."""
    import onnx
    import onnxruntime
    from onnx import helper, numpy_helper

    from forgeml.compression.quantize import minify

    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2), "model.layers.0.weight")
    node = helper.make_node("MatMul", ["numeric", "model.layers.0.weight"], ["output"], name="node_matmul")
    graph = helper.make_graph(
        [node],
        "main_graph",
        [helper.make_tensor_value_info("numeric", onnx.TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    helper.set_metadata_props(graph, {"pkg.torch.export.graph_signature": "x" * 500})
    helper.set_metadata_props(graph.input[0], {"pkg.torch.onnx.original_node_name": "numeric"})
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    before = model.SerializeToString()

    small = minify(model)
    onnx.checker.check_model(small, full_check=True)
    assert [opset.domain for opset in small.opset_import] == [""]
    assert not small.graph.metadata_props and not small.graph.input[0].metadata_props
    assert small.ByteSize() < len(before) - 500
    rows = {"numeric": np.ones((2, 3), dtype=np.float32)}
    outputs = [
        onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, rows)[0]
        for data in (before, small.SerializeToString())
    ]
    np.testing.assert_array_equal(outputs[0], outputs[1])
