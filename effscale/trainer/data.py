"""Proxy datasets in memory: a source loaded once as uint8 tensors and split deterministically by seed.

A source is a string (``load_data("digits")``, ``"synthetic:classes=4,size=16,n=200"``,
``"folder:PATH"``, ``"cifar:PATH"``, ``"npz:PATH"``), read by `effscale.trainer.sources` (and
`effscale.trainer.folders` for image folders). Whatever the source, the result is a `ProxyData` of
plain tensors -- uint8 N×C×H×W images and int64 labels -- so that it pickles cheaply to Ray workers
and moves to a GPU in one copy. Resizing to a trial's resolution and augmentation happen later, on
the device, in `effscale.trainer.proxy`.

Sources that ship their own split (``folder:`` with ``train/`` and ``val/``, CIFAR's test batch,
an npz with ``x_val``/``y_val``) keep it; the others are split per class by ``seed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from effscale.errors import UsageError
from effscale.trainer.folders import IMAGE_EXTENSIONS, decode_count, default_cache_dir, read_folder
from effscale.trainer.sources import READERS, SOURCES, Raw, check_data_spec, parse_spec

__all__ = [
    "IMAGE_EXTENSIONS",
    "SOURCES",
    "ProxyData",
    "check_data_spec",
    "decode_count",
    "default_cache_dir",
    "load_data",
]

# `_channel_stats` converts the training set to float64 in chunks of at most this many bytes.
_STATS_CHUNK_BYTES = 256 * 1024**2


@dataclass
class ProxyData:
    """A proxy dataset in memory: uint8 N×C×H×W images, int64 labels, and what the trainer needs.

    ``mean``/``std`` are the training images' per-channel statistics on the 0..1 scale; the
    trainer normalises with them after resizing. ``allow_flip`` is False where a mirror image is a
    different class (digits) or is not a plausible sample (synthetic prototypes).
    """

    x_train: Tensor = field(repr=False)
    y_train: Tensor = field(repr=False)
    x_val: Tensor = field(repr=False)
    y_val: Tensor = field(repr=False)
    num_classes: int
    channels: int
    native_size: int
    allow_flip: bool
    spec: str
    mean: Tensor = field(repr=False)  # the dataclass repr would print every pixel
    std: Tensor = field(repr=False)
    classes: list[str] = field(default_factory=list, repr=False)

    @property
    def num_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def num_val(self) -> int:
        return int(self.x_val.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device: str | torch.device, *, non_blocking: bool = False) -> ProxyData:
        """A copy on ``device`` (the same object if it is already there)."""
        device = torch.device(device)
        if self.x_train.device == device:
            return self
        move = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        return replace(
            self,
            x_train=move(self.x_train),
            y_train=move(self.y_train),
            x_val=move(self.x_val),
            y_val=move(self.y_val),
            mean=move(self.mean),
            std=move(self.std),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "num_train": self.num_train,
            "num_val": self.num_val,
            "num_classes": self.num_classes,
            "channels": self.channels,
            "native_size": self.native_size,
            "allow_flip": self.allow_flip,
        }


def _stratified_split(y: Tensor, val_fraction: float, seed: int) -> Tensor:
    """Boolean is-validation mask: each class split in the same proportion, the same for a seed."""
    g = torch.Generator().manual_seed(seed)
    is_val = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        # At least one validation sample per class (tiny folders would otherwise validate on
        # nothing) and at least one training sample; a class of one stays in training.
        k = min(len(idx) - 1, max(1, int(len(idx) * val_fraction + 0.5)))
        is_val[idx[:k]] = True
    return is_val


def load_data(
    spec: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    channels: int = 3,
    max_resolution: int | None = None,
) -> ProxyData:
    """Load a proxy dataset into memory; see the module docstring for the sources.

    ``channels=3`` repeats grayscale images so that ImageNet stems accept them; ``channels=1``
    keeps (or converts to) a single luminance channel. ``max_resolution`` is the largest input
    size the run will train at (a search's largest candidate resolution, a training run's
    resolution): ``folder:`` images are decoded and cached at min(their smallest short side,
    ``max_resolution``) -- `effscale.trainer.folders.FOLDER_MAX_SIZE` when it is None -- and
    refused before decoding if they would not fit in memory; other sources load at their own size
    whatever it says. Raises `UsageError` on any bad input.
    """
    if not (0.0 < float(val_fraction) < 1.0):
        raise UsageError(f"val_fraction={val_fraction} must be between 0 and 1 (exclusive), e.g. 0.2")
    if channels not in (1, 3):
        raise UsageError(f"channels={channels}; pass 1 or 3")
    if max_resolution is not None and (isinstance(max_resolution, bool) or not isinstance(max_resolution, int)
                                       or max_resolution < 1):
        raise UsageError(f"max_resolution={max_resolution!r} must be a whole number of pixels >= 1, e.g. 224")
    raw = _read_source(spec, cache_dir, max_resolution)
    x = _take_images(raw, channels)  # N×C×H×W
    y = _checked_labels(torch.from_numpy(raw.y), raw.num_classes, spec)
    is_val = torch.from_numpy(raw.is_val) if raw.is_val is not None else _stratified_split(y, val_fraction, seed)
    if not is_val.any() or is_val.all():
        raise UsageError(f"{spec}: the train/validation split left one side empty "
                         f"({int((~is_val).sum())} train, {int(is_val.sum())} val); add images")
    x_train = x[~is_val].contiguous()
    mean, std = _channel_stats(x_train)
    data = ProxyData(
        x_train=x_train,
        y_train=y[~is_val].contiguous(),
        x_val=x[is_val].contiguous(),
        y_val=y[is_val].contiguous(),
        num_classes=int(raw.num_classes),
        channels=int(x.shape[1]),
        native_size=int(min(x.shape[2], x.shape[3])),
        allow_flip=raw.allow_flip,
        spec=spec,
        mean=mean,
        std=std,
        classes=raw.classes or [str(c) for c in range(raw.num_classes)],
    )
    return data.to(device)


def _read_source(spec: str, cache_dir: str | os.PathLike[str] | None, max_resolution: int | None) -> Raw:
    check_data_spec(spec)
    kind, arg = parse_spec(spec)
    if kind == "folder":
        return read_folder(spec, arg, Path(cache_dir) if cache_dir is not None else None, max_resolution)
    return READERS[kind](spec, arg)


def _take_images(raw: Raw, channels: int) -> Tensor:
    """``raw``'s images as N×C×H×W with ``channels`` channels, taken out of ``raw``: the N×H×W×C
    array is freed as soon as it is converted, so loading holds the set at most twice (see
    `FOLDER_LOAD_COPIES`), not three times."""
    nhwc, raw.x = raw.x, np.empty((0, 0, 0, 0), np.uint8)
    return _to_channels(torch.from_numpy(np.ascontiguousarray(nhwc)).permute(0, 3, 1, 2), channels)


def _to_channels(x: Tensor, channels: int) -> Tensor:
    if x.shape[1] == channels:
        return x.contiguous()
    if channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    # ITU-R 601 luma, the same weights as Pillow's convert("L").
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8).contiguous()


def _checked_labels(y: Tensor, num_classes: int, spec: str) -> Tensor:
    if num_classes < 2 or len(torch.unique(y)) < 2:
        raise UsageError(f"{spec}: only one class in the data; a classifier needs at least two")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise UsageError(f"{spec}: labels out of range 0..{num_classes - 1}")
    return y


def _channel_stats(x_train: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std on the 0..1 scale, in float64 over chunks of at most 8192 images
    and `_STATS_CHUNK_BYTES` (8192 CIFAR images are 192 MiB of float64, 8192 at 224 px 9.2 GiB)."""
    total = torch.zeros(x_train.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    per_image = 8 * x_train[:1].numel()
    for chunk in x_train.split(max(1, min(8192, _STATS_CHUNK_BYTES // max(1, per_image)))):
        c = chunk.to(torch.float64) / 255.0
        total += c.sum(dim=(0, 2, 3))
        total_sq += (c * c).sum(dim=(0, 2, 3))
    count = x_train.shape[0] * x_train.shape[2] * x_train.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return mean.float(), std.float()
