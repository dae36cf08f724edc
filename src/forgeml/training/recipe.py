"""How a table's MLP trains where its config leaves the train keys unset: the recipe for the table's size.

A table is small below :data:`~forgeml.models.mlp.SMALL_TABLE_ROWS` training rows (where it also gets
submodels). A small table's MLP keeps the engine's training defaults (20 epochs of batch 32 at a constant
1e-3, patience 5) and keeps the epoch of least validation loss (:data:`SMALL_TABLE_STOPPING`); a larger
one trains by :data:`~forgeml.config.TABLE_MLP_DEFAULTS` (a cosine schedule over 200 epochs, batch 128).
The training rows are known only once the features are fitted, so every stage that trains the network
resolves its train section here: train (and tune, and torchrun's workers), plan, and compress's
fine-tuning and distillation. A key the config sets always wins.
"""

from __future__ import annotations

from typing import Any

from forgeml.config import TABLE_MLP_DEFAULTS, ModelConfig, ScheduleConfig, TrainConfig
from forgeml.features import InputSpec
from forgeml.models.mlp import is_small_table

# The small-table recipe, measured on the 67 tuning tables under 6,300 rows (3 seeds, one thread,
# benchmarks/results/tabular_quality_small_recipe.*): two layers of 256 with 4 submodels trained this way
# (20 epochs of batch 32 at 1e-3, the least validation loss kept) against the 200-epoch cosine schedule.
# The figures are in docs/tables.md.
SMALL_TABLE_STOPPING: dict[str, Any] = {"monitor": "loss"}


def filled(config: TrainConfig, train: dict[str, Any], stopping: dict[str, Any]) -> TrainConfig:
    """``config`` with the ``train`` keys it does not set taken from ``train``, and likewise the keys of its
    early stopping from ``stopping`` (no early stopping, ``early_stopping: null``, stays so)."""
    update: dict[str, Any] = {key: train[key] for key in train.keys() - config.model_fields_set}
    if isinstance(update.get("schedule"), dict):
        update["schedule"] = ScheduleConfig(**update["schedule"])
    current = config.early_stopping
    if current is not None and stopping:
        unset = stopping.keys() - current.model_fields_set
        update["early_stopping"] = current.model_copy(update={key: stopping[key] for key in unset})
    return config.model_copy(update=update)


def network_training(model: ModelConfig, config: TrainConfig, spec: InputSpec) -> TrainConfig:
    """The train section a ``model`` on ``spec``'s inputs trains with: a table mlp's recipe for the keys
    ``config`` leaves unset; images, text and other model types keep ``config`` as it is."""
    if model.type != "mlp" or not spec.is_table:
        return config
    if is_small_table(spec):
        return filled(config, {}, SMALL_TABLE_STOPPING)
    return filled(config, TABLE_MLP_DEFAULTS["train"], TABLE_MLP_DEFAULTS["train.early_stopping"])
