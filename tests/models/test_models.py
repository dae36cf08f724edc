import pytest
import torch

from forgeml.config import CNNConfig, MLPConfig
from forgeml.errors import ConfigError
from forgeml.features import InputSpec
from forgeml.models import build_model, count_parameters


@pytest.mark.parametrize(("shape", "padding"), [((1, 8, 8), 1), ((1, 28, 28), 0), ((3, 28, 28), 1)])
def test_cnn_fits_small_and_mnist_sized_images(shape: tuple[int, ...], padding: int) -> None:
    model = build_model(CNNConfig(padding=padding), InputSpec(image_shape=shape), 10)
    assert model(torch.zeros(4, *shape)).shape == (4, 10)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convolutions] == [32, 64]  # the document's Conv32 -> Conv64


def test_cnn_refuses_images_that_shrink_to_nothing_and_tables() -> None:
    with pytest.raises(ConfigError, match="model.channels"):
        build_model(CNNConfig(padding=0, channels=[8, 8, 8]), InputSpec(image_shape=(1, 8, 8)), 10)
    with pytest.raises(ConfigError, match="model.type"):
        build_model(CNNConfig(), InputSpec(numeric_dim=5), 2)


def test_mlp_combines_numeric_embeddings_and_images() -> None:
    spec = InputSpec(numeric_dim=3, categorical_cardinalities=(4, 5), embedding_dim=2, image_shape=(1, 2, 2))
    model = build_model(MLPConfig(hidden=[7]), spec, 3)
    out = model(torch.zeros(6, 3), torch.zeros(6, 2, dtype=torch.long), torch.zeros(6, 1, 2, 2))
    assert out.shape == (6, 3)
    assert model.layers[0].in_features == 3 + 2 * 2 + 4


def test_same_seed_same_weights() -> None:
    def weights(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return torch.cat(
            [p.flatten() for p in build_model(MLPConfig(), InputSpec(numeric_dim=4), 2).parameters()]
        )

    assert torch.equal(weights(1), weights(1))
    assert not torch.equal(weights(1), weights(2))
    assert (
        count_parameters(build_model(MLPConfig(hidden=[3]), InputSpec(numeric_dim=4), 2))
        == 4 * 3 + 3 + 3 * 2 + 2
    )
