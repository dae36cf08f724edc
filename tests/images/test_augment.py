"""features.image.augment: per-image random changes in training mode only, no weights, same outputs at eval."""

from __future__ import annotations

import torch

from forgeml.config import AugmentConfig, CNNConfig
from forgeml.features import InputSpec
from forgeml.models import build_model
from forgeml.models.cnn import Augment

ON = AugmentConfig(enabled=True, flip=0.5, crop_scale=0.6, rotation=20.0, jitter=0.3).model_dump_json()


def test_training_batches_change_per_image_and_eval_is_the_identity() -> None:
    torch.manual_seed(0)
    images = torch.rand(1, 3, 16, 16).repeat(8, 1, 1, 1)  # eight copies of one image
    augment = Augment(ON, (3, 16, 16)).train()
    changed = augment(images)
    assert changed.shape == images.shape and float(changed.min()) >= 0 and float(changed.max()) <= 1
    assert not torch.allclose(changed[0], images[0])
    assert len({round(float(row.sum()), 3) for row in changed}) == 8  # each image its own draw
    assert torch.equal(augment.eval()(images), images)


def test_a_flip_only_augmentation_mirrors_exactly() -> None:
    settings = AugmentConfig(
        enabled=True, flip=0.999, crop_scale=1.0, rotation=0.0, jitter=0.0
    ).model_dump_json()
    image = torch.arange(16.0).view(1, 1, 4, 4) / 16
    assert torch.allclose(Augment(settings, (1, 4, 4)).train()(image), image.flip(-1), atol=1e-5)


def test_the_cnn_with_augmentation_has_the_same_weights_and_eval_outputs() -> None:
    plain_spec = InputSpec(image_shape=(3, 16, 16))
    spec = InputSpec(image_shape=(3, 16, 16), image_augment=ON)
    torch.manual_seed(0)
    plain = build_model(CNNConfig(channels=[4]), plain_spec, 3)
    torch.manual_seed(0)
    augmented = build_model(CNNConfig(channels=[4]), spec, 3)
    assert plain.state_dict().keys() == augmented.state_dict().keys()
    images = torch.rand(4, 3, 16, 16)
    assert torch.equal(plain.eval()(images), augmented.eval()(images))
    assert not torch.equal(plain.train()(images), augmented.train()(images))
