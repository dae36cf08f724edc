"""The feature pipeline: decides each column's kind, fits every transform on train, applies it anywhere.

Its JSON state goes into the bundle, so evaluation, batch prediction and the server run exactly
the transform that training ran (no train/serve skew).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from forgeml.config import FeaturesConfig
from forgeml.data import RawData, TaskInfo
from forgeml.errors import ConfigError, DataError, NotFittedError
from forgeml.features.categorical import CategoricalFeatures
from forgeml.features.columns import clean_strings, plan_columns
from forgeml.features.image import ImageFeatures, pixel_tensor
from forgeml.features.image_backbone import BackboneDescription, describe_backbone
from forgeml.features.numeric import NumericFeatures
from forgeml.features.target import TargetEncoder
from forgeml.features.text import TextFeatures

logger = logging.getLogger(__name__)
INPUT_ORDER = ("numeric", "categorical", "image", "text", "text_mask")


@dataclass(frozen=True)
class InputSpec:
    """The shapes a model is built for: numeric width, categorical vocabularies, image shape, text.

    Text: ``text_columns`` columns of ``text_length`` tokens from a vocabulary of ``vocab_size``;
    ``backbone_config`` is the pretrained encoder's Hugging Face config as JSON text ("" when the
    tokenizer was trained here) and ``backbone`` the name it was loaded from. Images with a pretrained
    vision backbone: ``backbone_config`` is its :class:`BackboneDescription` JSON. Every field is plain
    JSON with a default, so ``InputSpec(**json.loads(json.dumps(asdict(spec))))`` rebuilds it.
    """

    numeric_dim: int = 0
    # the first continuous_dim numeric inputs are real numbers (the rest one-hot indicators): the ones a
    # numeric embedding expands; train_rows sizes default widths. Both 0 in bundles that predate them.
    continuous_dim: int = 0
    train_rows: int = 0
    categorical_cardinalities: tuple[int, ...] = ()
    embedding_dim: int = 8
    image_shape: tuple[int, ...] | None = None
    image_augment: str = ""  # features.image.augment as JSON when enabled (training-time only; models/cnn.py)
    text_columns: int = 0
    text_length: int = 0
    vocab_size: int = 0
    backbone: str = ""
    backbone_config: str = ""

    @property
    def is_table(self) -> bool:
        """Whether these inputs are a table's: no image, no text column (what the table defaults key on)."""
        return self.image_shape is None and not self.text_columns

    def __post_init__(self) -> None:
        # JSON turns tuples into lists; keep the spec hashable and equal to the original.
        object.__setattr__(self, "categorical_cardinalities", tuple(self.categorical_cardinalities))
        if self.image_shape is not None:
            object.__setattr__(self, "image_shape", tuple(self.image_shape))

    @property
    def names(self) -> tuple[str, ...]:
        """The model's inputs, in the order its ``forward`` takes them.

        ``text`` is ``(N, C, L)`` int64 token ids and ``text_mask`` its ``(N, C, L)`` int64 mask.
        """
        present = {
            "numeric": self.numeric_dim > 0,
            "categorical": bool(self.categorical_cardinalities),
            "image": self.image_shape is not None,
            "text": self.text_columns > 0,
            "text_mask": self.text_columns > 0,
        }
        return tuple(name for name in INPUT_ORDER if present[name])


@dataclass(frozen=True)
class ModelInputs:
    """Tensors for the model, keyed by input name, all with N rows."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def ordered(self, names: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(self.tensors[name] for name in names)


class FeaturePipeline:
    """Every input transform plus the target encoder, fitted together on the training split."""

    def __init__(self, config: FeaturesConfig, task: TaskInfo, *, backbone: str | None = None) -> None:
        self.config = config
        self.task = task
        self.backbone = backbone  # a pretrained vision model's name: images are fitted to its input

    def fit(self, train: RawData) -> FeaturePipeline:
        self._check_listed(train.table)
        table = clean_strings(train.table, list(map(str, train.table.columns)))
        plan = plan_columns(table, self.config)
        numeric, categorical = plan.numeric, plan.categorical
        self.left_out_ = plan.left_out
        for reason in plan.left_out.values():
            logger.warning(reason)
        text = self.config.text
        self.text_ = TextFeatures(
            list(self.config.text_columns),
            tokenizer=text.tokenizer,
            vocab_size=text.vocab_size,
            min_frequency=text.min_frequency,
            lowercase=text.lowercase,
            max_length=text.max_length,
            truncation_side=text.truncation_side,
            pretrained=text.pretrained,
        )
        if self.text_.columns:  # a table without text trains no tokenizer
            self.text_.fit(train.table)
        if train.target is None:
            raise DataError("the training rows have no target values.")
        self.target_ = TargetEncoder(self.task).fit(train.target)
        number = self.config.numeric
        self.numeric_ = NumericFeatures(
            numeric, impute=number.impute, scale=number.scale, integer_codes=number.integer_codes
        ).fit(table, self.target_.encode(train.target))
        if self.numeric_.codes_:
            logger.info(
                "integer codes, read by networks as one indicator per value beside the number "
                "(features.numeric.integer_codes): %s",
                ", ".join(
                    f"{numeric[i]} ({len(kept)} values)" for i, kept in sorted(self.numeric_.codes_.items())
                ),
            )
        cat = self.config.categorical
        self.categorical_ = CategoricalFeatures(
            categorical,
            encoding=cat.encoding,
            max_categories=cat.max_categories,
            min_frequency=cat.min_frequency,
        ).fit(table)
        self.image_ = None if train.images is None else self._fit_images(train)
        self.embedding_dim_ = cat.embedding_dim
        self.train_rows_ = len(train)
        return self

    @property
    def input_spec(self) -> InputSpec:
        self._require_fitted()
        one_hot = self.categorical_.encoding == "onehot"
        width = self.numeric_.width + (sum(self.categorical_.cardinalities) if one_hot else 0)
        return InputSpec(
            numeric_dim=width,
            continuous_dim=len(self.numeric_.columns),
            train_rows=self.train_rows_,
            categorical_cardinalities=() if one_hot else tuple(self.categorical_.cardinalities),
            embedding_dim=self.embedding_dim_,
            image_shape=None if self.image_ is None else self.image_.shape_,
            image_augment=self.config.image.augment.model_dump_json() if self._augments else "",
            **self._text_spec(),
        )

    def _fit_images(self, train: RawData) -> ImageFeatures:
        """Image features at ``features.image.size``; ``auto`` is 64, or a pretrained backbone's own size.

        With a backbone its description (architecture, size, normalisation) is kept for the model
        and the bundle, as the text path keeps a pretrained tokenizer's config.
        """
        image = self.config.image
        self.backbone_: BackboneDescription | None = None
        size = None if image.size == "auto" else image.size
        if self.backbone is not None:
            described = describe_backbone(self.backbone)
            chosen = described.size if size is None else _pair(size)
            self.backbone_ = described.at_size(chosen)
            size = list(chosen)
        return ImageFeatures.from_config(image.model_copy(update={"size": size or 64})).fit(train.images)

    @property
    def _augments(self) -> bool:
        return self.image_ is not None and self.config.image.augment.enabled

    def _text_spec(self) -> dict[str, Any]:
        vision = getattr(self, "backbone_", None)
        if vision is not None:  # images never come with text columns
            return {"backbone": self.backbone, "backbone_config": vision.to_json()}
        if not self.text_.columns:
            return {}
        return {
            "text_columns": len(self.text_.columns),
            "text_length": self.text_.length,
            "vocab_size": self.text_.vocabulary_size,
            "backbone": self.text_.pretrained or "",
            "backbone_config": self.text_.backbone_config_,
        }

    @property
    def input_columns(self) -> list[str]:
        """The table columns a prediction request must carry."""
        self._require_fitted()
        return [*self.numeric_.columns, *self.categorical_.columns, *self.text_.columns]

    def transform(self, raw: RawData) -> ModelInputs:
        """Model-ready tensors for ``raw``; raises DataError naming a missing column or a bad value."""
        self._require_fitted()
        missing = [column for column in self.input_columns if column not in raw.table.columns]
        if missing:
            raise DataError(
                f"missing input column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}. The model was trained with them.",
                column=missing[0],
            )
        tensors: dict[str, torch.Tensor] = {}
        table = clean_strings(raw.table, self.numeric_.columns)  # categorical values are trimmed as looked up
        blocks = [self.numeric_.transform(table)]
        if self.categorical_.encoding == "onehot":
            blocks.append(self.categorical_.one_hot(table))
        elif self.categorical_.columns:
            tensors["categorical"] = torch.from_numpy(self.categorical_.ids(table))
        numeric = np.concatenate(blocks, axis=1)
        if numeric.shape[1]:
            tensors["numeric"] = torch.from_numpy(np.ascontiguousarray(numeric))
        if self.image_ is not None:
            tensors["image"] = pixel_tensor(self.image_.transform(raw.images))  # may be the read-only cache
        if self.text_.columns:
            ids, mask = self.text_.encode(raw.table)
            tensors["text"], tensors["text_mask"] = torch.from_numpy(ids), torch.from_numpy(mask)
        return ModelInputs(tensors)

    def encode_target(self, raw: RawData) -> torch.Tensor:
        if raw.target is None:
            raise DataError(f"{raw.source}: no target values to train or evaluate on.")
        return torch.from_numpy(self.target_.encode(raw.target))

    def to_json(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            "numeric": self.numeric_.to_json(),
            "categorical": self.categorical_.to_json(),
            "image": None if self.image_ is None else self.image_.to_json(),
            "text": self.text_.to_json() if self.text_.columns else None,
            "target": self.target_.to_json(),
            "embedding_dim": self.embedding_dim_,
            "train_rows": self.train_rows_,
            "left_out": self.left_out_,
            "config": self.config.model_dump(mode="json"),
            **self._backbone_json(),
        }

    def _backbone_json(self) -> dict[str, Any]:
        vision = getattr(self, "backbone_", None)
        return (
            {}
            if vision is None
            else {"image_backbone": {"name": self.backbone, "description": vision.to_json()}}
        )

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> FeaturePipeline:
        target = TargetEncoder.from_json(state["target"])
        pipeline = cls(FeaturesConfig.model_validate(state["config"]), target.task)
        pipeline.numeric_ = NumericFeatures.from_json(state["numeric"])
        pipeline.categorical_ = CategoricalFeatures.from_json(state["categorical"])
        pipeline.image_ = None if state["image"] is None else ImageFeatures.from_json(state["image"])
        text = state.get("text")  # absent in bundles written before text support
        pipeline.text_ = TextFeatures([]) if text is None else TextFeatures.from_json(text)
        pipeline.target_ = target
        pipeline.embedding_dim_ = int(state["embedding_dim"])
        pipeline.train_rows_ = int(state.get("train_rows", 0))  # absent before widths were sized to the data
        pipeline.left_out_ = dict(state.get("left_out", {}))
        vision = state.get("image_backbone")  # only a pretrained vision model's pipeline has one
        pipeline.backbone = None if vision is None else str(vision["name"])
        pipeline.backbone_ = None if vision is None else BackboneDescription.from_json(vision["description"])
        return pipeline

    def _check_listed(self, table: pd.DataFrame) -> None:
        """Every column named in features.* is in the data (a typo would otherwise be silently ignored)."""
        for key in ("numeric_columns", "categorical_columns", "exclude", "text_columns"):
            unknown = sorted(set(getattr(self.config, key)) - set(map(str, table.columns)))
            if unknown:
                raise ConfigError(
                    f"features.{key}: column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} not in the data.",
                    key=f"features.{key}",
                )

    def _require_fitted(self) -> None:
        if not hasattr(self, "target_"):
            raise NotFittedError("FeaturePipeline used before fit.")


def _pair(size: int | list[int]) -> tuple[int, int]:
    """``features.image.size`` as ``(height, width)``."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[-1]))
