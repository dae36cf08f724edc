"""The search space of ``forgeml tune``: the config's ``tune.space``, or the model type's default.

A space maps dotted config keys to distributions (:class:`forgeml.config.SearchRange`). Each key is
checked before any trial starts by putting its extreme values (both bounds, every choice) into the
config and validating it with the config's own schema: an unknown key gets the config's "did you
mean", and a bound the key cannot take (a float for an integer key, a learning rate of 0) is named
with the bound, so a search never fails fifty trials in.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from forgeml.config import AUTO, CAUSAL_LM, Config, SearchRange, config_from_dict, config_json
from forgeml.errors import ConfigError

_NETWORK = {
    "train.learning_rate": {"log_uniform": [1e-4, 1e-2]},
    "train.weight_decay": {"log_uniform": [1e-6, 1e-2]},
    "train.batch_size": {"choice": [16, 32, 64, 128]},
    "model.dropout": {"uniform": [0.0, 0.5]},
}
# Per model type; the ranges are the common ones of Optuna's and Keras Tuner's examples, with the
# sizes our own defaults sit in the middle of. ``text`` models share the network keys plus their widths.
# On a table, the MLP's two choices that the tuning tables showed to depend on the table (docs/tables.md,
# 3 seeds): periodic numeric embeddings took phone_churn from 0.920 to 0.949 (the better validation error
# picked them on all 3 seeds) but lost on wine_red and forbes_value; standard scaling instead of auto's
# log1p rule took cell_segmentation from 0.819 to 0.838 and lost on forbes_value. Neither changes an image
# MLP: it has no numeric columns to embed or scale.
_TABLE_MLP = {
    "model.numeric_embedding": {"choice": ["none", "periodic"]},
    "features.numeric.scale": {"choice": ["auto", "standard", "quantile"]},
}
DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "mlp": _NETWORK
    | _TABLE_MLP
    | {"model.hidden": {"choice": ["auto", [64], [128, 64], [256, 128], [256, 128, 64]]}},
    "cnn": _NETWORK
    | {
        "model.channels": {"choice": [[16, 32], [32, 64], [64, 128]]},
        "model.dense": {"choice": [32, 64, 128]},
    },
    "bag_of_embeddings": _NETWORK | {"model.embedding_dim": {"choice": [32, 64, 128]}},
    "text_cnn": _NETWORK
    | {"model.channels": {"choice": [32, 64, 128]}, "model.embedding_dim": {"choice": [32, 64, 128]}},
    "transformer": _NETWORK | {"model.width": {"choice": [32, 64, 128]}, "model.layers": {"int": [1, 4]}},
    # a pretrained encoder fine-tunes at learning rates a hundred times smaller than a network from scratch
    "pretrained": _NETWORK | {"train.learning_rate": {"log_uniform": [1e-5, 1e-3]}},
    "gbm": {
        "train.learning_rate": {"log_uniform": [0.01, 0.3]},
        "model.num_leaves": {"log_int": [8, 256]},
        "model.min_data_in_leaf": {"log_int": [5, 100]},
        "model.feature_fraction": {"uniform": [0.5, 1.0]},
        "model.bagging_fraction": {"uniform": [0.5, 1.0]},
        "model.bagging_freq": {"choice": [0, 1]},
        "model.lambda_l2": {"log_uniform": [1e-8, 10.0]},
        "model.max_rounds": {"choice": [100, 300, 1000]},
    },
}


def search_space(config: Config) -> dict[str, SearchRange]:
    """``tune.space`` or the model type's default, each key checked against the config (ConfigError)."""
    model_type = config.model.type
    if config.kind == CAUSAL_LM:
        raise ConfigError(
            "forgeml tune searches prediction models; a causal_lm fine-tune is one long run. "
            "Train it with forgeml train.",
            key="model.type",
        )
    space = dict(config.tune.space)
    if not space:
        if model_type == AUTO:
            raise ConfigError(
                "model.type auto already searches: it trains its candidates and ensembles them, so tune has "
                "no default space for it. Set model.type gbm or mlp to tune one model (each has a default "
                "space), or list the keys to search in tune.space.",
                key="tune.space",
            )
        space = {key: SearchRange.model_validate(value) for key, value in DEFAULT_SPACES[model_type].items()}
    base = config_json(config)
    for key, distribution in space.items():
        for value in extremes(distribution):
            probe(base, {key: value}, origin=f"tune.space[{key!r}] (value {value!r})")
    return space


def extremes(distribution: SearchRange) -> list[Any]:
    """The values that bound what a distribution draws: both ends, or every choice."""
    if distribution.choice is not None:
        return list(distribution.choice)
    name = kind_of(distribution)
    low, high = bounds(distribution)
    if name in ("int", "log_int") or low == high:
        return [low, high]
    # an inner value with a fraction: bounds like [1, 3] are whole numbers an integer key would accept
    return [low, high, low + (high - low) * 0.37]


def kind_of(distribution: SearchRange) -> str:
    """The one key set on a SearchRange: uniform, log_uniform, int, log_int or choice."""
    return next(name for name in type(distribution).model_fields if getattr(distribution, name) is not None)


def bounds(distribution: SearchRange) -> tuple[float, float]:
    """Low and high of a range (not a choice)."""
    ranges = (distribution.uniform, distribution.log_uniform, distribution.int, distribution.log_int)
    return next(values for values in ranges if values is not None)


def probe(base: dict[str, Any], overrides: dict[str, Any], *, origin: str) -> Config:
    """``base`` (config_json) with ``overrides`` set at their dotted keys, validated (ConfigError naming ``origin``)."""
    raw = copy.deepcopy(base)
    for key, value in overrides.items():
        node = raw
        *sections, leaf = key.split(".")
        for part in sections:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {} if child is None else child
            if not isinstance(child, dict):
                raise ConfigError(
                    f"{origin}: {part} is a value, not a section; name a key inside it.", key=key
                )
            node = child
        node[leaf] = value
    return config_from_dict(raw, origin=origin)


def suggest(trial: Any, space: dict[str, SearchRange]) -> dict[str, Any]:
    """One value per key from an Optuna trial; choices that are not plain numbers or text travel as JSON."""
    values: dict[str, Any] = {}
    for key, distribution in space.items():
        name = kind_of(distribution)
        if name == "choice":
            choices = distribution.choice or []
            plain = all(isinstance(c, str | int | float | bool) or c is None for c in choices)
            picked = trial.suggest_categorical(key, choices if plain else [json.dumps(c) for c in choices])
            values[key] = picked if plain else json.loads(picked)
        elif name in ("int", "log_int"):
            low, high = bounds(distribution)
            values[key] = trial.suggest_int(key, int(low), int(high), log=name == "log_int")
        else:
            low, high = bounds(distribution)
            values[key] = trial.suggest_float(key, low, high, log=name == "log_uniform")
    return values
