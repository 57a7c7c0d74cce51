"""Baselines as data: each is a stem, a list of frozen `StageSpec` rows and a head.

`scale_spec` is the one pure function that turns (spec, depth, width) into the concrete network
description that gets built, measured and cached. Each table below names the paper table it copies.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from effscale.errors import UsageError
from effscale.models.scaling import bottleneck_output_channels, round_channels, round_repeats

# The input stems a spec baseline can be built with: its own ("standard"), or the common
# small-image adaptation (`small_stem`).
STEMS = ("standard", "small")
# The total stride `small_stem` brings a network to: 32 px images then end on a 4x4 map, as
# kuangliu/pytorch-cifar's MobileNetV2 and ResNets do, rather than 1x1 (stride 32) or 2x2 (16).
SMALL_STEM_TOTAL_STRIDE = 8


@dataclass(frozen=True)
class StageSpec:
    """One row of a paper's architecture table.

    ``channels`` is the stage's output width, except for ``bottleneck`` stages where it is the
    bottleneck width and the output is ``channels * expansion`` (ResNet's 64-64-256 rows), so that
    width scaling rounds the 3x3 conv's width, as the paper scales "channels".
    """

    block: str
    repeats: int
    channels: int
    stride: int
    kernel: int = 3
    expansion: float = 1.0
    se_ratio: float = 0.0


@dataclass(frozen=True)
class ProxyDefaults:
    """A baseline's own proxy-recipe defaults: what `ProxyRecipe.for_baseline` fills in where the
    user left a value unset. Pure data, so that models never import the trainer.

    Measured, not copied from a paper: each row below names its measurement. ``sgd_lr_per_256`` is
    SGD's peak learning rate per 256 images (scaled linearly with the batch size); RMSProp keeps
    the generic peak, since it was not tuned per baseline.
    """

    sgd_lr_per_256: float
    weight_decay: float
    label_smoothing: float


@dataclass(frozen=True)
class BaselineSpec:
    name: str
    stages: tuple[StageSpec, ...]
    stem_channels: int
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_pool: bool = False  # ResNet's 3x3/2 max-pool after the stem
    head_channels: int | None = None  # a 1x1 conv before pooling (EfficientNet, MobileNetV2)
    act: str = "relu"
    dropout: float = 0.0
    drop_path: float = 0.0  # stochastic depth, rising linearly to this over the blocks
    base_resolution: int = 224
    source: str = ""
    proxy: ProxyDefaults | None = None  # None: the generic recipe (effscale.trainer.recipe)
    stem: str = "standard"  # one of STEMS: "small" once `small_stem` adapted it to small images

    @property
    def total_stride(self) -> int:
        # Geometry, not scaling: no depth, width or resolution factor changes a stride, so this
        # stays with the table it reads. It is the smallest input side accepted: 1x1 last maps.
        return self.stem_stride * (2 if self.stem_pool else 1) * math.prod(s.stride for s in self.stages)


@dataclass(frozen=True)
class ScaledStage:
    block: str
    repeats: int
    in_channels: int
    out_channels: int
    stride: int
    kernel: int
    expansion: float
    se_ratio: float


@dataclass(frozen=True)
class ScaledSpec:
    """A baseline after scaling and rounding: exactly the network that gets built."""

    name: str
    stem_channels: int
    stages: tuple[ScaledStage, ...]
    head_channels: int | None
    spec: BaselineSpec = field(compare=False, repr=False)
    stem: str = "standard"

    @property
    def signature(self) -> tuple:
        """What makes two settings the same network: rounded repeats and channels per stage, and
        the stem where it is not the standard one.

        The stem enters only when it is not "standard", so that every standard signature, and with
        it every arch_id and cost-cache key made before stems existed, stays as it was.
        """
        signature = (
            self.name,
            self.stem_channels,
            tuple((s.block, s.repeats, s.in_channels, s.out_channels) for s in self.stages),
            self.head_channels,
        )
        return signature if self.stem == "standard" else (*signature, ("stem", self.stem))

    @property
    def num_blocks(self) -> int:
        return sum(s.repeats for s in self.stages)

    # The rest of what `ScalableNet` builds from, read off the baseline: the network's whole layout
    # is then one flat record, which `effscale.export` writes out as plain data.
    @property
    def stem_kernel(self) -> int:
        return self.spec.stem_kernel

    @property
    def stem_stride(self) -> int:
        return self.spec.stem_stride

    @property
    def stem_pool(self) -> bool:
        return self.spec.stem_pool

    @property
    def act(self) -> str:
        return self.spec.act

    @property
    def dropout(self) -> float:
        return self.spec.dropout

    @property
    def drop_path(self) -> float:
        return self.spec.drop_path


def scale_spec(spec: BaselineSpec, depth: float = 1.0, width: float = 1.0) -> ScaledSpec:
    """Scale ``spec`` by depth and width with the paper's rounding rules (see `scaling`)."""
    stem = round_channels(spec.stem_channels, width)
    in_ch = stem
    stages = []
    for stage in spec.stages:
        out_ch = round_channels(stage.channels, width)
        if stage.block == "bottleneck":
            out_ch = bottleneck_output_channels(out_ch, stage.expansion)
        stages.append(
            ScaledStage(
                block=stage.block,
                repeats=round_repeats(stage.repeats, depth),
                in_channels=in_ch,
                out_channels=out_ch,
                stride=stage.stride,
                kernel=stage.kernel,
                expansion=stage.expansion,
                se_ratio=stage.se_ratio,
            )
        )
        in_ch = out_ch
    head = round_channels(spec.head_channels, width) if spec.head_channels else None
    return ScaledSpec(
        name=spec.name, stem_channels=stem, stages=tuple(stages), head_channels=head, spec=spec, stem=spec.stem
    )


def check_stem(stem: str) -> str:
    """``stem`` if it is one of `STEMS`; otherwise a one-line `UsageError` naming the choices."""
    if stem not in STEMS:
        raise UsageError(f"--stem {stem} is not one of {', '.join(STEMS)}; pass one of them")
    return stem


def small_stem(spec: BaselineSpec) -> BaselineSpec:
    """``spec`` adapted to small images, the way CIFAR versions of ImageNet networks are.

    The stem keeps its width but gets stride 1 and no max-pool, with a 3x3 conv (ResNet's 7x7 was
    sized for 224 px photos). Where the total stride is still above `SMALL_STEM_TOTAL_STRIDE`, the
    first stride-2 stages go to stride 1 until it is reached, as kuangliu/pytorch-cifar's
    MobileNetV2 does: ResNet-18/34/50, EfficientNet-B0 and MobileNetV1/V2 all end at stride 8.
    Only strides change, so every parameter outside the stem conv is the standard network's.

    A spec whose stem already has stride 1 and no pool (resnet20_cifar) is refused: there is
    nothing to adapt.
    """
    if spec.stem_stride == 1 and not spec.stem_pool:
        raise UsageError(
            f"{spec.name} already has a small-image stem (total stride {spec.total_stride}); drop --stem small"
        )
    stages = []
    total = math.prod(s.stride for s in spec.stages)  # the stages' share, once the stem has stride 1
    for stage in spec.stages:
        if stage.stride > 1 and total > SMALL_STEM_TOTAL_STRIDE:
            total //= stage.stride
            stage = dataclasses.replace(stage, stride=1)
        stages.append(stage)
    return dataclasses.replace(
        spec, stem_kernel=3, stem_stride=1, stem_pool=False, stages=tuple(stages), stem="small"
    )


def _mbconv(expansion: float, kernel: int, stride: int, channels: int, repeats: int) -> StageSpec:
    return StageSpec("mbconv", repeats, channels, stride, kernel, expansion, se_ratio=0.25)


# EfficientNet paper, Table 1 (EfficientNet-B0); stem 32 and head 1280 scale with width too.
EFFICIENTNET_B0 = BaselineSpec(
    name="efficientnet_b0",
    stem_channels=32,
    stages=(
        _mbconv(1, 3, 1, 16, 1),
        _mbconv(6, 3, 2, 24, 2),
        _mbconv(6, 5, 2, 40, 2),
        _mbconv(6, 3, 2, 80, 3),
        _mbconv(6, 5, 1, 112, 3),
        _mbconv(6, 5, 2, 192, 4),
        _mbconv(6, 3, 1, 320, 1),
    ),
    head_channels=1280,
    act="silu",
    dropout=0.2,
    drop_path=0.2,
    source="EfficientNet (Tan & Le, 2019), Table 1",
    # Measured: val top-1 of `effscale train efficientnet_b0 --data digits --resolution 32
    # --epochs 5 --seed 1/2/3` (batch 128, dropout and drop-path off). SGD lr per 256 with
    # smoothing 0.1: 0.05 -> -/0.852/0.825, 0.1 -> 0.955/0.880/0.900, 0.15 -> 0.969/0.939/0.894,
    # 0.2 -> 0.883/0.919/0.911, 0.3 -> -/0.799/0.880, 0.4 -> 0.869/0.883/0.749. lr 0.1 without
    # smoothing: 0.955/0.936/0.922, the only setting above 0.9 for all three -- but seeds 4/5 give
    # 0.875/0.919, so b0 at batch 128 sits near 0.9 whatever the lr (batch 64: >= 0.922 for seeds
    # 1-5). Weight decay barely acts in ~55 steps; the generic 5e-5 stays.
    proxy=ProxyDefaults(sgd_lr_per_256=0.1, weight_decay=5e-5, label_smoothing=0.0),
)


def _resnet(
    name: str, block: str, repeats: tuple[int, int, int, int], proxy: ProxyDefaults | None = None
) -> BaselineSpec:
    expansion = 4.0 if block == "bottleneck" else 1.0
    return BaselineSpec(
        name=name,
        stem_channels=64,
        stem_kernel=7,
        stem_pool=True,
        stages=tuple(
            StageSpec(block, n, c, s, 3, expansion) for n, c, s in zip(repeats, (64, 128, 256, 512), (1, 2, 2, 2))
        ),
        act="relu",
        source="ResNet (He et al., 2016), Table 1",
        proxy=proxy,
    )


# ResNet paper, Table 1: conv2_x..conv5_x, 64/128/256/512 wide (x4 out for bottlenecks).
# resnet18's proxy defaults are the generic recipe, measured: 0.978/0.983/0.969 val top-1 on digits
# at 32 px, 5 epochs, seeds 1-3. resnet34/50 were not measured and get the generic recipe too.
RESNET18 = _resnet("resnet18", "basic", (2, 2, 2, 2), ProxyDefaults(0.1, 5e-5, 0.1))
RESNET34 = _resnet("resnet34", "basic", (3, 4, 6, 3))
RESNET50 = _resnet("resnet50", "bottleneck", (3, 4, 6, 3))

# MobileNetV1 paper, Table 1: 13 depthwise-separable layers (the last 1024 block at stride 1).
MOBILENET_V1 = BaselineSpec(
    name="mobilenet_v1",
    stem_channels=32,
    stages=(
        StageSpec("dwsep", 1, 64, 1),
        StageSpec("dwsep", 2, 128, 2),
        StageSpec("dwsep", 2, 256, 2),
        StageSpec("dwsep", 6, 512, 2),
        StageSpec("dwsep", 2, 1024, 2),
    ),
    act="relu",
    source="MobileNets (Howard et al., 2017), Table 1",
)

# MobileNetV2 paper, Table 2: (t, c, n, s) rows, head 1x1 conv to 1280.
MOBILENET_V2 = BaselineSpec(
    name="mobilenet_v2",
    stem_channels=32,
    stages=tuple(
        StageSpec("inverted_residual", n, c, s, 3, t)
        for t, c, n, s in (
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        )
    ),
    head_channels=1280,
    act="relu6",
    dropout=0.2,
    source="MobileNetV2 (Sandler et al., 2018), Table 2",
    # Measured as for efficientnet_b0, seeds 1/2/3: lr 0.1 with smoothing 0.1 -> 0.908/0.916/0.861,
    # 0.05 -> 0.877/-/0.894, 0.2 -> 0.813/-/0.816; lr 0.1 without smoothing -> 0.955/0.928/0.914
    # (seeds 4/5: 0.925/0.925).
    proxy=ProxyDefaults(sgd_lr_per_256=0.1, weight_decay=5e-5, label_smoothing=0.0),
)

# Not from a paper: a three-stage MBConv net (total stride 8) that trains in seconds, for CI.
TINY = BaselineSpec(
    name="tiny",
    stem_channels=16,
    stages=(
        _mbconv(1, 3, 1, 16, 1),
        _mbconv(4, 3, 2, 24, 2),
        _mbconv(4, 5, 2, 40, 2),
    ),
    head_channels=128,
    act="silu",
    dropout=0.1,
    base_resolution=32,
    source="effscale test model",
)

# He et al. 2016 ("Deep Residual Learning"), §4.2: the CIFAR-10 ResNets. A 3x3 stride-1 stem
# with 16 channels (no max-pool), three stages of n basic blocks at 16/32/64 channels and strides
# 1/2/2 with parameter-free option-A shortcuts, global pooling, the classifier: 6n+2 layers,
# total stride 4. n = 3 is ResNet-20; depth 5/3, 7/3, 3 and 6 give ResNet-32/44/56/110 exactly
# (round_repeats is ceil(3d) per stage).
RESNET20_CIFAR = BaselineSpec(
    name="resnet20_cifar",
    stem_channels=16,
    stem_kernel=3,
    stem_stride=1,
    stages=tuple(StageSpec("basic_a", 3, c, s) for c, s in ((16, 1), (32, 2), (64, 2))),
    act="relu",
    base_resolution=32,
    source="ResNet (He et al., 2016), Section 4.2 (CIFAR-10)",
    # Measured as for efficientnet_b0 (batch 64 on digits), seeds 1/2/3: the generic lr 0.1 per
    # 256 with smoothing 0.1 -> 0.763/0.889/0.866, too slow to converge in 5 epochs (110 steps);
    # 0.2 -> 0.969/0.964/0.961, 0.4 -> 0.978/0.975/0.972 (seeds 4/5: 0.975/0.981), 0.8 ->
    # 0.975/0.969/0.975; 0.4 without smoothing -> 0.981/0.972/0.967. He et al. train at 0.1 per
    # 128 images, 0.2 per 256: the same order.
    proxy=ProxyDefaults(sgd_lr_per_256=0.4, weight_decay=5e-5, label_smoothing=0.1),
)

BUILTIN_SPECS: tuple[BaselineSpec, ...] = (
    EFFICIENTNET_B0,
    RESNET18,
    RESNET34,
    RESNET50,
    MOBILENET_V1,
    MOBILENET_V2,
    RESNET20_CIFAR,
    TINY,
)
