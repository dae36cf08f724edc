"""Knowledge distillation: a smaller student learns the teacher's softened outputs and the labels.

The student trains with the *same* loop as any model (:func:`forgeml.training.loop.fit`), its
callbacks (progress, early stopping with best weights restored) and its checkpoints. The loop
needs no change: the teacher's outputs are computed once, before training, and packed next to the
label into the target tensor, ``target = [teacher outputs (D), label]`` ``(N, D + 1)``, and the
loss splits it again. Batches slice inputs and targets together, so every batch carries its own
teacher outputs; the validation loss, which early stopping watches, is the same mixed loss on the
validation rows.

Loss (Hinton et al., 2015), with temperature ``T`` and weight ``alpha`` on the teacher:
``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * hard(s, label)``, where ``hard``
is the run's own training loss (class weights and label smoothing included). A binary model's one
logit is a two-class softmax, so its soft term is the Bernoulli KL; for regression the soft term
is the squared difference to the teacher's (standardized) output and ``T`` does not apply.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from pydantic import ValidationError
from rich.console import Console
from torch import nn

from forgeml.config import MODEL_CONFIG, CNNConfig, MLPConfig, ModelConfig, TrainConfig
from forgeml.data import Splits
from forgeml.errors import ConfigError
from forgeml.features import FeaturePipeline
from forgeml.models import build_model, predict_outputs
from forgeml.models.mlp import resolved_hidden
from forgeml.training.callbacks import Callback, ProgressReporter
from forgeml.training.loop import Session, TensorData, TrainResult, fit, seed_everything, set_threads
from forgeml.training.losses import LossFunction, class_weights_for, each_submodel, make_loss
from forgeml.training.stage import early_stopping, tensor_data


def student_from_file(path: str | Path) -> ModelConfig:
    """The student's model config from a YAML file: a ``model:`` section (a whole forgeml config works) or the model mapping itself."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"--distill {path}: file not found. Pass a YAML file with a model section, e.g. examples/digits_cnn_student.yaml.",
            key="--distill",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--distill {path}: not valid YAML ({exc}).", key="--distill") from None
    section = raw.get("model", raw) if isinstance(raw, dict) else raw
    if not isinstance(section, dict) or "type" not in section:
        raise ConfigError(
            f"--distill {path}: expected a model section with a type, e.g. `model: {{type: mlp, hidden: [8]}}`.",
            key="--distill",
        )
    try:
        return MODEL_CONFIG.validate_python(section)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"] if part != section.get("type"))
        raise ConfigError(
            f"--distill {path}: model.{key} {error['msg'].lower()}, got {error.get('input')!r}. Fix the student config.",
            key="--distill",
        ) from None


def student_by_width(teacher: ModelConfig, factor: float) -> ModelConfig:
    """The teacher's architecture with every width multiplied by ``factor`` (at least 1 unit each)."""

    def scaled(width: int) -> int:
        return max(1, round(width * factor))

    if isinstance(teacher, MLPConfig):  # hidden: auto is resolved first
        return teacher.model_copy(update={"hidden": [scaled(width) for width in resolved_hidden(teacher)]})
    if isinstance(teacher, CNNConfig):
        return teacher.model_copy(
            update={"channels": [scaled(width) for width in teacher.channels], "dense": scaled(teacher.dense)}
        )
    raise ConfigError(
        f"--distill-width scales model.type mlp and cnn teachers; this run's model is {teacher.type!r}. "
        "Write the student's model section in a YAML file and pass --distill student.yaml.",
        key="--distill-width",
    )


def check_student(config: ModelConfig, pipeline: FeaturePipeline, origin: str) -> nn.Module:
    """Build the student for the teacher's inputs and outputs; an impossible pairing is a ConfigError."""
    if config.type == "pretrained":
        raise ConfigError(
            f"{origin}: a pretrained student would download a backbone; distil into mlp, cnn, "
            "bag_of_embeddings, text_cnn or transformer.",
            key="--distill",
        )
    try:
        return build_model(config, pipeline.input_spec, pipeline.target_.output_dim)
    except ConfigError as exc:
        raise ConfigError(
            f"{origin}: the student does not fit this run's data: {exc}", key="--distill"
        ) from None


def distillation_loss(kind: str, hard: LossFunction, *, temperature: float, alpha: float) -> LossFunction:
    """``loss(student outputs (N, D), packed (N, D + 1))``; see the module docstring for the formula."""
    squared = temperature * temperature

    def loss(outputs: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
        teacher, label = packed[:, :-1], packed[:, -1]  # (N, D), (N,)
        if kind == "classification":
            soft = F.kl_div(
                F.log_softmax(outputs / temperature, dim=1),
                F.log_softmax(teacher / temperature, dim=1),
                log_target=True,
                reduction="batchmean",
            )
            return alpha * squared * soft + (1 - alpha) * hard(outputs, label.long())
        if kind == "binary":
            target = torch.sigmoid(teacher / temperature)
            # cross-entropy minus the teacher's own entropy: the Bernoulli KL, 0 when they agree
            soft = F.binary_cross_entropy_with_logits(
                outputs / temperature, target
            ) - F.binary_cross_entropy_with_logits(teacher / temperature, target)
            return alpha * squared * soft + (1 - alpha) * hard(outputs, label)
        return alpha * F.mse_loss(outputs, teacher) + (1 - alpha) * hard(outputs, label)

    return each_submodel(loss)  # a student with model.submodels learns each submodel on its own


def packed_data(data: TensorData, teacher: nn.Module) -> TensorData:
    """``data`` with its target replaced by ``[teacher outputs, label]`` ``(N, D + 1)`` float32."""
    outputs = predict_outputs(teacher, data.inputs).float()  # (N, D)
    return TensorData(data.inputs, torch.cat([outputs, data.target.float().unsqueeze(1)], dim=1))


def distill(
    teacher: nn.Module,
    student: nn.Module,
    pipeline: FeaturePipeline,
    splits: Splits,
    config: TrainConfig,
    *,
    seed: int,
    temperature: float,
    alpha: float,
    work_dir: Path | None = None,
    console: Console | None = None,
    callbacks: list[Callback] | None = None,
) -> TrainResult:
    """Train ``student`` (in place) on ``teacher``'s outputs with the run's train config.

    ``work_dir`` receives the loop's checkpoints (``checkpoints/``), as a training run's folder does.
    """
    set_threads(config.threads)
    if config.early_stopping is not None:  # the packed target is [teacher outputs, label]: the loss is what it scores
        config = config.model_copy(
            update={"early_stopping": config.early_stopping.model_copy(update={"monitor": "loss"})}
        )
    train = tensor_data(pipeline, splits.train)
    validation = tensor_data(pipeline, splits.validation) if len(splits.validation) else None
    hard = run_loss(config, pipeline, train.target)
    loss = distillation_loss(pipeline.task.kind, hard, temperature=temperature, alpha=alpha)
    packed_validation = packed_data(validation, teacher) if validation is not None else None
    return fit(
        student,
        packed_data(train, teacher),
        packed_validation,
        loss,
        config,
        seed=seed,
        callbacks=loop_callbacks(config, validation is not None, console) + list(callbacks or []),
        session=Session(run_dir=work_dir),
    )


def run_loss(config: TrainConfig, pipeline: FeaturePipeline, target: torch.Tensor) -> LossFunction:
    """The run's own training loss (``train.loss``, class weights from ``target``, label smoothing)."""
    classes = max(2, len(pipeline.task.labels)) if pipeline.task.kind != "regression" else 0
    weights = class_weights_for(config.class_weights, target, classes) if classes else None
    return make_loss(
        config.loss, pipeline.task, class_weights=weights, label_smoothing=config.label_smoothing
    )


def loop_callbacks(config: TrainConfig, has_validation: bool, console: Console | None) -> list[Callback]:
    """The callbacks ``train_model`` ships: progress lines, and early stopping when there is validation."""
    shipped: list[Callback] = [ProgressReporter(console or Console(file=io.StringIO()))]
    if config.early_stopping is not None and has_validation:
        shipped.append(early_stopping(config.early_stopping))
    return shipped


def seeded_student(config: ModelConfig, pipeline: FeaturePipeline, seed: int) -> nn.Module:
    """A freshly initialised student, seeded like training seeds its model."""
    seed_everything(seed)
    return build_model(config, pipeline.input_spec, pipeline.target_.output_dim)
