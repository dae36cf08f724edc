"""Differentially private training (``train.privacy``): DP-SGD through Opacus, and what it spent.

:class:`PrivateTraining` hands the loop's model and optimizer to Opacus' ``PrivacyEngine`` as
``make_private_with_epsilon`` does (per-sample gradients by hooks, each row's gradient clipped to
``max_grad_norm``, Gaussian noise solved for the target ε over ``train.epochs``, Poisson sampling). The loop keeps its own tensors
and slicing: instead of Opacus' DataLoader it asks :meth:`PrivateTraining.batch` for each step's
rows, drawn by Opacus' ``UniformWithReplacementSampler`` (every row in with probability
``sample_rate``) from a generator seeded by the run's seed and the global step, so a resumed run
draws exactly the batches it would have drawn. The accountant's history travels in checkpoints
(:class:`AccountantState` is a callback with state), so resuming does not reset ε.
"""

from __future__ import annotations

import functools
import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from forgeml import atomic
from forgeml.config import PrivacyConfig, TrainConfig
from forgeml.errors import ConfigError
from forgeml.extras import require
from forgeml.training.callbacks import Callback

logger = logging.getLogger(__name__)
PRIVACY_DIR = "privacy"  # in the run folder: privacy.json and the non-private twin's weights
REPORT_FILE = "privacy.json"
TWIN_WEIGHTS = "nonprivate.pt"
ACCOUNTANT_NAMES = {
    "rdp": "RDP (Renyi DP, Mironov 2017)",
    "prv": "PRV (privacy random variables, Gopi et al. 2021)",
}


@dataclass(frozen=True)
class PrivacyReport:
    """What a private run spent, in the words of the model card and metrics.json."""

    epsilon: float  # spent, by the accountant, for the steps actually taken
    target_epsilon: float
    delta: float
    delta_rule: str  # how delta was chosen
    accountant: str
    max_grad_norm: float
    noise_multiplier: float
    sample_rate: float
    steps: int
    epochs: float  # steps x sample rate: the expected passes over the data
    planned_epochs: int
    rows: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def resolve_delta(config: PrivacyConfig, rows: int) -> tuple[float, str]:
    """δ and how it was chosen; an explicit δ must be below 1/n (else one row could leak outright)."""
    if config.delta == "auto":
        return 1.0 / (10 * rows), f"auto: 1/(10 n), n = {rows} training rows"
    if config.delta >= 1.0 / rows:
        raise ConfigError(
            f"train.privacy.delta = {config.delta:g} is not below 1/n = {1.0 / rows:.3g} for n = {rows} training "
            f"rows: a mechanism may then reveal a whole row with probability delta. Set train.privacy.delta "
            f"below {1.0 / rows:.3g} (or auto).",
            key="train.privacy.delta",
        )
    return float(config.delta), "set in train.privacy.delta"


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """The loop's steps per epoch, ceil(n / batch); Opacus' sample rate is its inverse."""
    return max(1, -(-rows // batch_size))


def noise_for(config: TrainConfig, rows: int) -> tuple[float, float, float]:
    """(noise multiplier, sample rate, δ) that DP-SGD uses for this config: the one :func:`forgeml plan` shows."""
    assert config.privacy is not None
    delta, _ = resolve_delta(config.privacy, rows)
    rate = 1.0 / steps_per_epoch(rows, config.batch_size)
    noise = _solve_noise(config.privacy.epsilon, delta, rate, config.epochs, config.privacy.accountant)
    return noise, rate, delta


@functools.lru_cache(maxsize=64)
def _solve_noise(epsilon: float, delta: float, rate: float, epochs: int, accountant: str) -> float:
    """Opacus' ``get_noise_multiplier``, once per process for the same settings.

    ``make_private_with_epsilon`` is exactly this call followed by ``make_private`` (opacus 1.6
    privacy_engine.py); calling the two ourselves keeps the binary search (2.2 s for RDP, 4.7 s for
    PRV on 2 busy cores, measured) from running again for the twin, a resume or ``forgeml plan``.
    """
    accountants = require("opacus.accountants.utils", "privacy", "train.privacy", key="train.privacy")
    with (
        warnings.catch_warnings()
    ):  # "optimal order is the largest alpha": the bound stays valid, only looser
        warnings.simplefilter("ignore")
        return float(
            accountants.get_noise_multiplier(
                target_epsilon=epsilon,
                target_delta=delta,
                sample_rate=rate,
                epochs=epochs,
                accountant=accountant,
            )
        )


def epsilon_after(noise: float, rate: float, steps: int, delta: float, accountant: str) -> float:
    """ε that Opacus' accountant gives after ``steps`` steps of noise ``noise`` at sampling rate ``rate``."""
    accountants = require("opacus.accountants", "privacy", "train.privacy", key="train.privacy")
    counter = accountants.create_accountant(mechanism=accountant)
    if steps == 0:
        return 0.0
    counter.history = [(noise, rate, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(counter.get_epsilon(delta=delta))


def check_layers(model: nn.Module) -> None:
    """Refuse, naming the first one, a layer that Opacus' validator rejects (BatchNorm, MultiheadAttention...)."""
    validators = require("opacus.validators", "privacy", "train.privacy", key="train.privacy")
    rules = validators.ModuleValidator.VALIDATORS
    for name, module in model.named_modules():
        rule = rules.get(type(module))
        errors = rule(module) if rule is not None else []
        if errors:
            raise ConfigError(
                f"train.privacy: layer {name or 'model'} ({type(module).__name__}) is not supported by Opacus' "
                f"DP-SGD: {str(errors[0]).splitlines()[0][:200]} Use a model without it (text models: "
                "bag_of_embeddings or text_cnn), or remove train.privacy.",
                key="train.privacy",
            )


class AccountantState(Callback):
    """Carries the privacy accountant's history through checkpoints (ε continues after a resume)."""

    def __init__(self, accountant: Any) -> None:
        self.accountant = accountant

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": [list(entry) for entry in self.accountant.history],
            "mechanism": self.accountant.mechanism(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.accountant.load_state_dict(
            {"history": [tuple(entry) for entry in state["history"]], "mechanism": state["mechanism"]}
        )


class PrivateTraining:
    """The loop's model and optimizer made private; the source of each step's Poisson batch."""

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, rows: int, config: TrainConfig, *, seed: int
    ) -> None:
        assert config.privacy is not None
        opacus = require("opacus", "privacy", "train.privacy", key="train.privacy")
        check_layers(model)
        self.config, self.privacy, self.rows, self.seed = config, config.privacy, rows, seed
        self.delta, self.delta_rule = resolve_delta(config.privacy, rows)
        noise, rate, _ = noise_for(config, rows)
        indices = torch.utils.data.TensorDataset(torch.arange(rows))
        loader = torch.utils.data.DataLoader(indices, batch_size=config.batch_size)
        # Opacus' hooks fire on a first layer whose inputs need no gradient; torch warns each time
        warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
        with warnings.catch_warnings():  # Opacus warns that secure_mode is off: docs/privacy.md says so
            warnings.simplefilter("ignore")
            self.engine = opacus.PrivacyEngine(accountant=config.privacy.accountant)
            self.module, self.optimizer, dp_loader = self.engine.make_private(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                noise_multiplier=noise,  # solved for target_epsilon, as make_private_with_epsilon does
                max_grad_norm=config.privacy.max_grad_norm,
                poisson_sampling=True,
            )
        assert dp_loader.sample_rate == rate  # the rate the noise was solved for
        self.sample_rate = float(dp_loader.sample_rate)
        self.callback = AccountantState(self.engine.accountant)
        logger.info(
            "DP-SGD: noise multiplier %.3f, sample rate %.4g, delta %.3g",
            self.optimizer.noise_multiplier,
            self.sample_rate,
            self.delta,
        )

    def batch(self, step: int, device: torch.device) -> torch.Tensor:
        """The rows of global step ``step``: each row in independently with probability ``sample_rate``."""
        from opacus.utils.uniform_sampler import UniformWithReplacementSampler

        generator = torch.Generator().manual_seed((self.seed << 32) + step)
        sampler = UniformWithReplacementSampler(
            num_samples=self.rows, sample_rate=self.sample_rate, generator=generator, steps=1
        )
        return torch.tensor(next(iter(sampler)), dtype=torch.long, device=device)

    def loss(self, loss_function):
        """``loss_function``, but 0 for an empty Poisson batch (a mean over no rows would be NaN)."""

        def private_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return loss_function(output, target) if len(target) else output.sum() * 0.0

        return private_loss

    def close(self) -> PrivacyReport:
        """Remove Opacus' hooks (the model exports and serves as before) and say what was spent."""
        self.module._close()
        history = self.engine.accountant.history
        steps = sum(int(entry[2]) for entry in history)
        with warnings.catch_warnings():  # "optimal order is the largest alpha": valid, only looser
            warnings.simplefilter("ignore")
            epsilon = float(self.engine.accountant.get_epsilon(delta=self.delta)) if steps else 0.0
        report = PrivacyReport(
            epsilon=epsilon,
            target_epsilon=self.privacy.epsilon,
            delta=self.delta,
            delta_rule=self.delta_rule,
            accountant=ACCOUNTANT_NAMES[self.privacy.accountant],
            max_grad_norm=self.privacy.max_grad_norm,
            noise_multiplier=float(self.optimizer.noise_multiplier),
            sample_rate=self.sample_rate,
            steps=steps,
            epochs=steps * self.sample_rate,
            planned_epochs=self.config.epochs,
            rows=self.rows,
        )
        logger.info(
            "DP-SGD spent epsilon %.3f of %.3g (delta %.3g) in %d steps, %.2f of %d planned epochs",
            report.epsilon, report.target_epsilon, report.delta, report.steps, report.epochs, report.planned_epochs,
        )  # fmt: skip
        return report


def refuse_processes(world_size: int) -> None:
    """DP-SGD runs in one process: Opacus' DPDDP would need its own sampler and noise split, not wired here."""
    if world_size > 1:
        raise ConfigError(
            f"train.privacy trains in one process; this job has {world_size} (torchrun). Run it without "
            "torchrun, or remove train.privacy.",
            key="train.privacy",
        )


def write_privacy(run_dir: Path, report: PrivacyReport, twin: Any | None) -> None:
    """``privacy/privacy.json`` (what was spent) and the non-private twin's weights, for evaluation.

    ``twin`` is the twin's TrainResult (or None when ``train.privacy.compare`` is false).
    """
    folder = run_dir / PRIVACY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    if twin is not None:
        torch.save(twin.model.state_dict(), folder / TWIN_WEIGHTS)
    document = report.to_json() | {"nonprivate_seconds": twin.seconds if twin is not None else None}
    atomic.write_text(folder / REPORT_FILE, json.dumps(document, indent=2))


def read_privacy(run_dir: Path) -> dict[str, Any] | None:
    """The training side's privacy.json, or None for a run trained without privacy."""
    path = run_dir / PRIVACY_DIR / REPORT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def plan_rows(config: TrainConfig, rows: int) -> list[tuple[str, str]]:
    """``forgeml plan``'s privacy lines: the noise a target ε costs, and ε if training stops early."""
    noise, rate, delta = noise_for(config, rows)
    assert config.privacy is not None
    per_epoch = steps_per_epoch(rows, config.batch_size)
    stops = sorted({max(1, config.epochs // 4), max(1, config.epochs // 2), config.epochs})
    spent = ", ".join(
        f"{epochs} ep: {epsilon_after(noise, rate, epochs * per_epoch, delta, config.privacy.accountant):.2f}"
        for epochs in stops
    )
    return [
        ("privacy: target (epsilon, delta)", f"({config.privacy.epsilon:g}, {delta:.3g})"),
        (
            "privacy: noise multiplier / sample rate",
            f"{noise:.3f} / {rate:.4g} ({config.privacy.accountant})",
        ),
        ("privacy: epsilon if stopped after", spent),
    ]
