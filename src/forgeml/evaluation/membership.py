"""Membership inference (``evaluate.privacy_audit``): how well can one tell training rows from held-out rows?

Two attacks on a classifier's confidence in each row's true class, both scored on the run's training
rows (members) against its test rows (non-members):

- **loss threshold** (Yeom et al., 2018): a row is called a member when its loss is low; the score
  is ``-loss``. Its AUC is 0.5 for a model that leaks nothing through its losses.
- **likelihood ratio**, shadow-free: the logit-scaled confidence ``phi = log(p / (1 - p))`` of the
  true class (Carlini et al., 2022) is modelled per class by one Gaussian for members and one for
  non-members, fitted on one half of the rows and scored on the other (two folds, so every row is
  scored by distributions it did not shape). No shadow models are trained: it costs one pass of
  predictions, which is why it stands in for the full LiRA here.

Each attack gives its ROC AUC and the true-positive rate at 1% false positives (the rate that
matters for privacy: confident hits on few rows, not average-case separation). With a test split of
a few hundred rows, 1% FPR rests on a handful of non-members: the card says how many there were.
When the run was trained with ``train.privacy``, the non-private twin (same config and seed,
trained without privacy) is audited beside it, and its test metric gives the accuracy cost.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forgeml.config import Config
from forgeml.data import RawData
from forgeml.evaluation.metrics import class_indices, compute_metrics
from forgeml.features import FeaturePipeline
from forgeml.models import build_model, predict_outputs
from forgeml.training.privacy import PRIVACY_DIR, TWIN_WEIGHTS, read_privacy

logger = logging.getLogger(__name__)
FALSE_POSITIVE_RATE = 0.01
_FOLDS = 2


@dataclass(frozen=True)
class Attack:
    """One attack's success: ROC AUC over member/non-member rows and the TPR at 1% FPR."""

    auc: float
    tpr_at_1pct_fpr: float


@dataclass(frozen=True)
class ModelAudit:
    """One model's test metric and both attacks' success against it (``members`` 0: not audited)."""

    name: str
    private: bool
    metric: str
    value: float
    loss_threshold: Attack | None  # None: not audited (evaluate.privacy_audit false, regression)
    likelihood_ratio: Attack | None
    members: int
    non_members: int


def true_class_scores(
    task, model: nn.Module, pipeline: FeaturePipeline, rows: RawData
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(log p, phi, y)`` per row: log-probability and logit-scaled confidence of the true class, its index.

    Computed from the raw outputs (logits) in float64: a well-fitted model gives many rows p = 1.0
    in floating point, and scores read from probabilities would tie there (as LiRA notes, the
    logit keeps them apart).
    """
    assert rows.target is not None
    labels = class_indices(task, rows.target)
    inputs = pipeline.transform(rows).ordered(pipeline.input_spec.names)
    logits = predict_outputs(model, inputs).double().numpy()  # (N, output_dim)
    if task.kind == "binary":  # one logit z for the positive class: phi = +-z
        phi = np.where(labels == 1, logits[:, 0], -logits[:, 0])
    else:  # phi = z_y - logsumexp(z of the other classes)
        from scipy.special import logsumexp

        others = logits.copy()
        others[np.arange(len(labels)), labels] = -np.inf
        phi = logits[np.arange(len(labels)), labels] - logsumexp(others, axis=1)
    return -np.logaddexp(0.0, -phi), phi, labels  # log p = -log(1 + e^-phi), exact where p rounds to 1


def attack_success(is_member: np.ndarray, score: np.ndarray) -> Attack:
    """AUC and TPR at 1% FPR of ``score`` (higher = member) against the truth ``is_member``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    false_positive, true_positive, _ = roc_curve(is_member, score)
    return Attack(
        auc=float(roc_auc_score(is_member, score)),
        tpr_at_1pct_fpr=float(true_positive[false_positive <= FALSE_POSITIVE_RATE].max()),
    )


def likelihood_ratio_scores(
    phi: np.ndarray, labels: np.ndarray, is_member: np.ndarray, *, seed: int
) -> np.ndarray:
    """Per-row log N(phi; members of its class) - log N(phi; non-members of its class), two folds."""
    from scipy.stats import norm

    fold = np.random.default_rng(seed).integers(0, _FOLDS, len(phi))
    scores = np.zeros(len(phi))
    for held in range(_FOLDS):
        fit, score = fold != held, fold == held
        for cls in np.unique(labels[score]):
            rows = score & (labels == cls)
            log_in = norm.logpdf(
                phi[rows], *_gaussian(phi[fit & is_member & (labels == cls)], phi[fit & is_member])
            )
            log_out = norm.logpdf(
                phi[rows], *_gaussian(phi[fit & ~is_member & (labels == cls)], phi[fit & ~is_member])
            )
            scores[rows] = log_in - log_out
    return scores


def _gaussian(values: np.ndarray, fallback: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of ``values`` (of ``fallback``, all classes, when under 2 rows)."""
    chosen = values if len(values) >= 2 else fallback
    return float(chosen.mean()), max(float(chosen.std()), 1e-3)


def audit_model(
    name: str,
    model: nn.Module,
    pipeline: FeaturePipeline,
    members: RawData | None,
    non_members: RawData,
    *,
    private: bool,
    seed: int,
    predict,
) -> ModelAudit:
    """``model``'s headline test metric (on ``non_members``, the test rows) and, given ``members``, both attacks."""
    task = pipeline.task
    decoded_out = predict(model, pipeline, non_members)
    assert non_members.target is not None
    metric, value = compute_metrics(task, non_members.target.to_numpy(), decoded_out).headline
    if members is None:
        return ModelAudit(name, private, metric, float(value), None, None, 0, len(non_members))
    log_in, phi_in, y_in = true_class_scores(task, model, pipeline, members)
    log_out, phi_out, y_out = true_class_scores(task, model, pipeline, non_members)
    is_member = np.r_[np.ones(len(log_in), bool), np.zeros(len(log_out), bool)]
    log_p, phi, labels = np.r_[log_in, log_out], np.r_[phi_in, phi_out], np.r_[y_in, y_out]
    return ModelAudit(
        name=name,
        private=private,
        metric=metric,
        value=float(value),
        loss_threshold=attack_success(is_member, log_p),  # -loss = log p of the true class
        likelihood_ratio=attack_success(
            is_member, likelihood_ratio_scores(phi, labels, is_member, seed=seed)
        ),
        members=len(log_in),
        non_members=len(log_out),
    )


def privacy_section(
    run_dir: Path,
    model: nn.Module,
    pipeline: FeaturePipeline,
    members: RawData | None,
    test: RawData,
    config: Config,
    *,
    predict,
) -> dict[str, Any] | None:
    """metrics.json's ``privacy``: what training spent (privacy.json) and the audits, or None when off.

    ``predict(model, pipeline, rows) -> Decoded`` is evaluation's own prediction path.
    """
    spent = read_privacy(run_dir)
    wanted = config.evaluate.privacy_audit
    audit = (spent is not None) if wanted is None else wanted
    if spent is None and not audit:
        return None
    section: dict[str, Any] = {"training": spent, "models": [], "audit_skipped": None}
    if not audit:
        section["audit_skipped"] = "evaluate.privacy_audit is false"
    elif pipeline.task.kind == "regression":
        section["audit_skipped"] = (
            "the attacks score a classifier's confidence in the true class; this is a regression"
        )
    elif members is None:
        section["audit_skipped"] = "no training rows to compare with (evaluation on a --data file)"
    attack = section["audit_skipped"] is None
    name = f"private (epsilon {spent['epsilon']:.2f})" if spent is not None else "this model"
    models = [(name, model, spent is not None)]
    twin = _twin(run_dir, pipeline, config)
    if twin is not None:
        models.append(("non-private (same config)", twin, False))
    audits = [
        audit_model(label, net, pipeline, members if attack else None, test, private=private, seed=config.seed, predict=predict)
        for label, net, private in models
    ]  # fmt: skip
    for item in audits:
        if item.loss_threshold is not None and item.likelihood_ratio is not None:
            logger.info(
                "membership audit of %s: loss-threshold AUC %.3f (TPR %.3f at 1%% FPR), likelihood-ratio AUC %.3f (TPR %.3f)",
                item.name, item.loss_threshold.auc, item.loss_threshold.tpr_at_1pct_fpr,
                item.likelihood_ratio.auc, item.likelihood_ratio.tpr_at_1pct_fpr,
            )  # fmt: skip
    section["models"] = [asdict(item) for item in audits]
    return section


def _twin(run_dir: Path, pipeline: FeaturePipeline, config: Config) -> nn.Module | None:
    """The non-private twin that training kept beside a private run, or None."""
    path = run_dir / PRIVACY_DIR / TWIN_WEIGHTS
    if not path.is_file():
        return None
    model = build_model(
        config.model, pipeline.input_spec, pipeline.target_.output_dim, pretrained_weights=False
    )
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
