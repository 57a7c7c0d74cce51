"""User-supplied baselines for the tests: ``user_baselines:small_cnn``, one that takes ``--stem
small``, an attention net, a net that runs at one size only, and two broken ones."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _channels(width: float) -> int:
    """16 channels scaled by ``width``, to a multiple of 8 as the paper rounds them."""
    return max(8, int(16 * width + 4) // 8 * 8)


def small_cnn(depth: float, width: float, num_classes: int) -> nn.Module:
    """A plain CNN that scales like the paper: ceil on blocks, channels to a multiple of 8."""
    channels = _channels(width)
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 2, 1), nn.BatchNorm2d(channels), nn.ReLU()]
    for _ in range(math.ceil(2 * depth)):
        layers += [nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


small_cnn.base_resolution = 32  # type: ignore[attr-defined]
small_cnn.min_resolution = 2  # type: ignore[attr-defined]


def stem_cnn(depth: float, width: float, num_classes: int, stem: str = "standard") -> nn.Module:
    """`small_cnn` with a ``stem`` parameter, so it takes ``--stem small``: a stride-1 stem then.

    The two stems have the same parameters and modules; only a stride tells them apart.
    """
    model = small_cnn(depth, width, num_classes)
    if stem == "small":
        model[0].stride = (1, 1)
    return model


stem_cnn.base_resolution = 32  # type: ignore[attr-defined]
stem_cnn.min_resolution = 2  # type: ignore[attr-defined]


class SelfAttention2d(nn.Module):
    """Single-head self-attention over the H*W positions of a feature map, with a residual.

    Its two matmuls (q·kᵀ and attention·v) cost (H*W)² * C: a whole multiple of the area at every
    size, yet not proportional to it, which is what the cost path must not rescale by area.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).flatten(2).chunk(3, dim=1)  # each (b, c, h*w)
        attention = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)  # (b, hw, hw)
        return x + (v @ attention.transpose(1, 2)).view(b, c, h, w)


def attention_cnn(depth: float, width: float, num_classes: int) -> nn.Module:
    """A conv stem (total stride 4), ceil(depth) self-attention blocks, then pool and classify."""
    channels = _channels(width)
    layers: list[nn.Module] = [
        nn.Conv2d(3, channels, 3, 2, 1),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, 2, 1),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
    ]
    layers += [SelfAttention2d(channels) for _ in range(math.ceil(depth))]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


attention_cnn.base_resolution = 32  # type: ignore[attr-defined]
attention_cnn.min_resolution = 4  # type: ignore[attr-defined]


def fixed_size_cnn(depth: float, width: float, num_classes: int) -> nn.Module:
    """A CNN whose classifier reads the flattened 8x8 map, so it runs at 32 px and nowhere else."""
    channels = _channels(width)
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, 4, 1), nn.ReLU(), nn.Flatten(), nn.Linear(channels * 8 * 8, num_classes)
    )


fixed_size_cnn.base_resolution = 32  # type: ignore[attr-defined]
fixed_size_cnn.min_resolution = 32  # type: ignore[attr-defined]


def not_a_module(depth: float, width: float, num_classes: int) -> str:
    return "a string"


def wrong_arity(depth: float) -> nn.Module:
    return nn.Linear(1, 1)
