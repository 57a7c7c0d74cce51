"""On-device image ops for the proxy trainer: whole-set resize, and batched crop+flip.

Nothing here loops over samples in Python: the hot loop calls `crop_flip` once per batch.

The rules here that decide memory -- `crop_padding` and the resize's chunks
(`resize_chunk_images`, `resize_working_bytes`) -- are public because the memory model
(`effscale.trainer.memory`) computes with these same functions rather than restating them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "RESIZE_CHUNK_BYTES",
    "crop_flip",
    "crop_padding",
    "normalizer",
    "resize_chunk_images",
    "resize_uint8",
    "resize_working_bytes",
]

# Float working memory one resize chunk may use. Why bytes and not images: a fixed 2048 images
# was 18 GB of float32 for digits resized to 1024 px, and a few KiB at 8 px. 256 MiB keeps the
# chunks large enough that the per-chunk overhead is nothing (digits at 32 px: one chunk).
RESIZE_CHUNK_BYTES = 256 * 1024**2


def crop_padding(resolution: int) -> int:
    """Pixels of padding on each side of the training set for random crops: CIFAR's 4 px at 32,
    scaled with the resolution (at least 1)."""
    return max(1, resolution // 8)


def _float_bytes_per_image(channels: int, in_hw: tuple[int, int], size: int) -> int:
    """One image's float32 working memory while resized: the input, the separable antialiased
    kernel's intermediate (input height by output width) and the output."""
    h, w = in_hw
    return 4 * channels * (h * w + h * size + size * size)


def resize_chunk_images(
    channels: int, in_hw: tuple[int, int], size: int, *, max_bytes: int = RESIZE_CHUNK_BYTES
) -> int:
    """Images per chunk of `resize_uint8`: as many as fit ``max_bytes`` of float working memory
    (at least one)."""
    return max(1, max_bytes // _float_bytes_per_image(channels, in_hw, size))


def resize_working_bytes(
    n: int, channels: int, in_hw: tuple[int, int], size: int, *, max_bytes: int = RESIZE_CHUNK_BYTES
) -> int:
    """Peak transient memory of `resize_uint8` on ``n`` images: one chunk's float working memory
    (its uint8 result comes after the input and intermediate are freed, so it adds nothing);
    0 when no resize is needed."""
    if tuple(in_hw) == (size, size) or n == 0:
        return 0
    chunk = min(n, resize_chunk_images(channels, in_hw, size, max_bytes=max_bytes))
    return chunk * _float_bytes_per_image(channels, in_hw, size)


def resize_uint8(x: Tensor, size: int, *, max_bytes: int = RESIZE_CHUNK_BYTES) -> Tensor:
    """Resize a uint8 N×C×H×W set to size×size, bilinear with antialiasing, once per trial.

    Stays uint8 so that a trial's copy costs a quarter of float32's memory (CIFAR at 64 px is
    0.6 GB as uint8). Works in chunks of whole images holding at most ``max_bytes`` of float
    memory (`resize_chunk_images`); each image is resized on its own, so the chunking never
    changes a pixel of the result.
    """
    if x.shape[-2:] == (size, size):
        return x
    chunk = resize_chunk_images(x.shape[1], (x.shape[2], x.shape[3]), size, max_bytes=max_bytes)
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.uint8, device=x.device)
    for i in range(0, x.shape[0], chunk):
        part = x[i : i + chunk].float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i : i + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def crop_flip(padded: Tensor, idx: Tensor, size: int, *, flip: bool, generator: torch.Generator) -> Tensor:
    """Random size×size crops of the pre-padded images ``padded[idx]``, mirrored at random.

    Speed trick: crop and flip are one gather. Each sample's row and column index vectors are
    built from its random offset (columns reversed for flipped samples), and a single advanced-
    indexing read produces the whole batch -- no per-sample Python, no second pass for the flip.
    """
    n = idx.shape[0]
    pad2 = padded.shape[-1] - size
    device = padded.device
    # The generator lives on the data's device, so no host round trip per batch on CUDA.
    dy = torch.randint(0, pad2 + 1, (n, 1), generator=generator, device=device)
    dx = torch.randint(0, pad2 + 1, (n, 1), generator=generator, device=device)
    ar = torch.arange(size, device=device)
    rows = dy + ar  # n×size
    if flip:
        mirror = torch.rand((n, 1), generator=generator, device=device) < 0.5
        cols = dx + torch.where(mirror, size - 1 - ar, ar)
    else:
        cols = dx + ar
    c = padded.shape[1]
    return padded[
        idx.view(n, 1, 1, 1),
        torch.arange(c, device=device).view(1, c, 1, 1),
        rows.view(n, 1, size, 1),
        cols.view(n, 1, 1, size),
    ]


def normalizer(mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
    """(scale, shift) so that ``x_uint8 * scale + shift`` is the standardised image: one fused
    multiply-add per batch instead of divide-by-255, subtract, divide."""
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
    shift = (-mean / std).view(1, -1, 1, 1)
    return scale, shift
