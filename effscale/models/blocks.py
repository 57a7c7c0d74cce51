"""The block library: the few building blocks every registered baseline is made of.

Layer order, bias use and channel rounding follow torchvision's reference implementations, so a
built baseline matches them parameter for parameter (tests/test_models.py pins the counts).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from effscale.models.scaling import (
    bottleneck_width,
    inverted_residual_hidden_channels,
    mbconv_hidden_channels,
    squeeze_channels,
)

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU}


def conv_bn_act(
    in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, *, groups: int = 1, act: str | None = "relu"
) -> nn.Sequential:
    """Conv (no bias: BatchNorm follows) + BatchNorm + optional activation, 'same' padding."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act is not None:
        layers.append(ACTIVATIONS[act](inplace=True))
    return nn.Sequential(*layers)


class StochasticDepth(nn.Module):
    """Drop the whole residual branch per sample (Huang et al. 2016; EfficientNet's drop_connect)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
        return x * mask.bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al. 2018); EfficientNet squeezes to 1/4 of the *block input*."""

    def __init__(self, channels: int, squeeze: int, act: str = "silu") -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.act = ACTIVATIONS[act](inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(scale))))


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-excitation and SiLU (EfficientNet Table 1)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        stride: int,
        *,
        kernel: int = 3,
        expansion: float = 6,
        se_ratio: float = 0.25,
        act: str = "silu",
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = mbconv_hidden_channels(in_ch, expansion)
        layers: list[nn.Module] = []
        if hidden != in_ch:
            layers.append(conv_bn_act(in_ch, hidden, 1, act=act))
        layers.append(conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, act=act))
        if se_ratio > 0:
            layers.append(SqueezeExcitation(hidden, squeeze_channels(in_ch, se_ratio), act))
        layers.append(conv_bn_act(hidden, out_ch, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.drop_path = StochasticDepth(drop_path) if self.use_residual else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + self.drop_path(out) if self.use_residual else out


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1, depthwise, linear projection; no SE, ReLU6."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        stride: int,
        *,
        kernel: int = 3,
        expansion: float = 6,
        act: str = "relu6",
        **_: object,
    ) -> None:
        super().__init__()
        hidden = inverted_residual_hidden_channels(in_ch, expansion)
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_act(in_ch, hidden, 1, act=act))
        layers.append(conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, act=act))
        layers.append(conv_bn_act(hidden, out_ch, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class DepthwiseSeparable(nn.Module):
    """MobileNetV1's block: depthwise kxk then pointwise 1x1, each with BatchNorm and ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, kernel: int = 3, act: str = "relu", **_: object):
        super().__init__()
        self.block = nn.Sequential(
            conv_bn_act(in_ch, in_ch, kernel, stride, groups=in_ch, act=act),
            conv_bn_act(in_ch, out_ch, 1, act=act),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class PadShortcut(nn.Module):
    """ResNet's "option A" shortcut (He et al. 2016, §4.2): the identity, subsampled by taking every
    ``stride``-th pixel (``x[:, :, ::2, ::2]``) and zero-padded to the new width. No parameters.

    The extra channels are split evenly before and after the input's (the odd one after), as the
    common CIFAR reference implementations pad (akamaster/pytorch_resnet_cifar10's
    ``F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))``); padding them all at
    the end would be just as parameter-free.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if out_ch < in_ch:
            raise ValueError(f"an option-A shortcut cannot narrow {in_ch} channels to {out_ch}; it only pads")
        self.stride = stride
        self.pad = ((out_ch - in_ch) // 2, out_ch - in_ch - (out_ch - in_ch) // 2)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad)) if any(self.pad) else x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad={self.pad}"


class _ResidualBlock(nn.Module):
    def __init__(
        self, body: nn.Sequential, in_ch: int, out_ch: int, stride: int, *, option_a: bool = False
    ) -> None:
        super().__init__()
        self.body = body
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            # Where the shape changes: a 1x1 projection (ResNet "option B", the ImageNet ResNets),
            # or the parameter-free padded identity (option A, the CIFAR ResNets).
            self.shortcut = (
                PadShortcut(in_ch, out_ch, stride) if option_a else conv_bn_act(in_ch, out_ch, 1, stride, act=None)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class BasicBlock(_ResidualBlock):
    """ResNet-18/34 block: two 3x3 convolutions."""

    option_a = False

    def __init__(self, in_ch: int, out_ch: int, stride: int, *, kernel: int = 3, **_: object) -> None:
        body = nn.Sequential(conv_bn_act(in_ch, out_ch, kernel, stride), conv_bn_act(out_ch, out_ch, kernel, act=None))
        super().__init__(body, in_ch, out_ch, stride, option_a=self.option_a)


class BasicBlockA(BasicBlock):
    """The CIFAR ResNets' block (He et al. 2016, §4.2): `BasicBlock` with the option-A shortcut."""

    option_a = True


class Bottleneck(_ResidualBlock):
    """ResNet-50 block (v1.5: the stride sits on the 3x3); ``out_ch`` is 4x the bottleneck width."""

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, *, kernel: int = 3, expansion: float = 4, **_: object
    ) -> None:
        mid = bottleneck_width(out_ch, expansion)
        body = nn.Sequential(
            conv_bn_act(in_ch, mid, 1),
            conv_bn_act(mid, mid, kernel, stride),
            conv_bn_act(mid, out_ch, 1, act=None),
        )
        super().__init__(body, in_ch, out_ch, stride)


BLOCKS: dict[str, type[nn.Module]] = {
    "mbconv": MBConv,
    "inverted_residual": InvertedResidual,
    "dwsep": DepthwiseSeparable,
    "basic": BasicBlock,
    "basic_a": BasicBlockA,
    "bottleneck": Bottleneck,
}
