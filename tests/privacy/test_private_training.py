"""train.privacy: DP-SGD through Opacus in the loop; epsilon as Opacus' accountant counts it, across a resume."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from forgeml.config import PrivacyConfig, TrainConfig
from forgeml.errors import ConfigError
from forgeml.extras import MissingExtraError
from forgeml.training import privacy
from forgeml.training.loop import Session, TensorData, TrainingInterrupted, fit
from forgeml.training.privacy import check_layers, epsilon_after, noise_for, plan_rows, refuse_processes
from forgeml.training.steps import SIGNAL_AT_STEP_ENV

ROWS = 139  # the mixed table's training rows (test_privacy_report.py): one noise solve serves both


def data() -> TensorData:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(ROWS, 4, generator=generator)
    return TensorData((x,), (x[:, 0] + x[:, 1] > 0).long())


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def config(**settings) -> TrainConfig:
    chosen = {
        "epochs": 3,
        "batch_size": 16,
        "learning_rate": 0.05,
        "early_stopping": None,
        "checkpoint_every": 3,
    }
    return TrainConfig(**(chosen | {"privacy": PrivacyConfig(epsilon=3.0)} | settings))


def train(run_dir: Path | None, resume: str = "never", **settings):
    session = Session(run_dir=run_dir, resume=resume)
    return fit(
        model(),
        data(),
        None,
        nn.CrossEntropyLoss(),
        config(**settings),
        seed=0,
        callbacks=[],
        session=session,
    )


def test_epsilon_is_opacus_accountant_for_the_steps_taken_across_a_resume(tmp_path, monkeypatch) -> None:
    straight = train(tmp_path / "straight")
    monkeypatch.setenv(SIGNAL_AT_STEP_ENV, "5")  # a real SIGTERM after step 5 of 27: checkpoint, stop
    with pytest.raises(TrainingInterrupted):
        train(tmp_path / "resumed")
    monkeypatch.delenv(SIGNAL_AT_STEP_ENV)
    resumed = train(tmp_path / "resumed", resume="auto")
    assert resumed.resumed_step == 5
    report = resumed.privacy
    assert report is not None and report.steps == 27  # 3 epochs x ceil(139 / 16): the resume did not reset it
    noise, rate, delta = noise_for(config(), ROWS)
    assert (report.noise_multiplier, report.sample_rate, report.delta) == (noise, rate, delta)
    assert report.epsilon == pytest.approx(epsilon_after(noise, rate, 27, delta, "rdp"), rel=1e-9)
    assert report.epsilon <= 3.0 and report.epsilon > epsilon_after(noise, rate, 22, delta, "rdp")
    assert report.epsilon == pytest.approx(straight.privacy.epsilon, rel=1e-12)
    # same Poisson batches and the same noise: the interrupted run ends where the straight one did
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # Opacus' hooks are gone: the trained model is a plain module again
    assert not any(module._forward_hooks for module in resumed.model.modules())


def test_noise_changes_the_weights_and_empty_poisson_batches_train(monkeypatch) -> None:
    """batch_size 1 on 30 rows: each row in with rate 1/30, so about a third of the batches are empty."""
    plain = fit(model(), data(), None, nn.CrossEntropyLoss(), config(privacy=None), seed=0, callbacks=[])
    private = train(None)
    assert not torch.equal(plain.model[0].weight, private.model[0].weight)
    monkeypatch.setattr(
        privacy, "_solve_noise", lambda *settings: 1.0
    )  # the solve is tested above; not the point
    rows = TensorData(tuple(tensor[:30] for tensor in data().inputs), data().target[:30])
    tiny = fit(
        model(), rows, None, nn.CrossEntropyLoss(), config(batch_size=1, epochs=1), seed=0, callbacks=[]
    )
    assert tiny.privacy is not None and tiny.privacy.steps == 30 and tiny.privacy.noise_multiplier == 1.0
    assert all(torch.isfinite(p).all() for p in tiny.model.parameters())


def test_plan_estimates_the_epsilon_the_run_will_spend() -> None:
    rows = dict(plan_rows(config(), ROWS))
    noise, rate, delta = noise_for(config(), ROWS)
    assert rows["privacy: noise multiplier / sample rate"].startswith(f"{noise:.3f} / {rate:.4g}")
    full = epsilon_after(noise, rate, 27, delta, "rdp")
    assert 2.9 <= full <= 3.0 and rows["privacy: epsilon if stopped after"].endswith(f"3 ep: {full:.2f}")
    assert epsilon_after(noise, rate, 27, delta, "prv") < full  # PRV's bound is the tighter one


@pytest.mark.parametrize(
    ("layers", "named"),
    [
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)), "layer 1 (BatchNorm2d)"),
        (nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 1, enable_nested_tensor=False), "layers.0.self_attn (MultiheadAttention)"),
    ],
)  # fmt: skip
def test_an_unsupported_layer_is_named(layers: nn.Module, named: str) -> None:
    with pytest.raises(ConfigError, match=r"train.privacy: layer ") as caught:
        check_layers(layers)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_delta_must_be_below_one_over_n_and_processes_are_refused() -> None:
    settings = TrainConfig(epochs=1, privacy=PrivacyConfig(epsilon=1.0, delta=1 / ROWS))
    with pytest.raises(
        ConfigError,
        match=rf"train.privacy.delta = {1 / ROWS:g} is not below 1/n = {1 / ROWS:.3g} for n = {ROWS} ",
    ) as caught:
        noise_for(settings, ROWS)
    assert caught.value.key == "train.privacy.delta"
    with pytest.raises(ConfigError, match="train.privacy trains in one process; this job has 2"):
        refuse_processes(2)


def test_a_missing_opacus_names_the_extra(monkeypatch) -> None:
    for name in [loaded for loaded in sys.modules if loaded == "opacus" or loaded.startswith("opacus.")] + [
        "opacus"
    ]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError, match=r'pip install "forgeml\[privacy\]"'):
        train(None)
