"""User-supplied baselines for the tests: ``user_baselines:small_cnn`` and two broken ones."""

from __future__ import annotations

import math

from torch import nn


def small_cnn(depth: float, width: float, num_classes: int) -> nn.Module:
    """A plain CNN that scales like the paper: ceil on blocks, channels to a multiple of 8."""
    channels = max(8, int(16 * width + 4) // 8 * 8)
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 2, 1), nn.BatchNorm2d(channels), nn.ReLU()]
    for _ in range(math.ceil(2 * depth)):
        layers += [nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


small_cnn.base_resolution = 32  # type: ignore[attr-defined]
small_cnn.min_resolution = 2  # type: ignore[attr-defined]


def not_a_module(depth: float, width: float, num_classes: int) -> str:
    return "a string"


def wrong_arity(depth: float) -> nn.Module:
    return nn.Linear(1, 1)
