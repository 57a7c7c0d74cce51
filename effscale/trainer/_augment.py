"""On-device image ops for the proxy trainer: whole-set resize, and batched crop+flip.

Nothing here loops over samples in Python: the hot loop calls `crop_flip` once per batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_uint8(x: Tensor, size: int, *, chunk: int = 2048) -> Tensor:
    """Resize a uint8 N×C×H×W set to size×size, bilinear with antialiasing, once per trial.

    Stays uint8 so that a trial's copy costs a quarter of float32's memory (CIFAR at 64 px is
    0.6 GB as uint8); chunks bound the float working memory.
    """
    if x.shape[-2:] == (size, size):
        return x
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
