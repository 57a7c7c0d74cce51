"""Build an `nn.Module` from a network layout: stem, stages of blocks, optional head conv, classifier.

The layout is a `ScaledSpec` (a baseline after scaling and rounding), read through its flat fields
only (`LAYOUT_FIELDS`): `effscale.export` writes this class out verbatim, beside those fields as
plain data, so an exported member is built by the very code that builds it here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from effscale.models.blocks import BLOCKS, conv_bn_act
from effscale.models.specs import ScaledSpec


# What `ScalableNet` reads of its layout (besides each stage's `ScaledStage` fields and `num_blocks`).
LAYOUT_FIELDS = ("stem_channels", "stem_kernel", "stem_stride", "stem_pool", "stages", "head_channels", "act",
                 "dropout", "drop_path")


class ScalableNet(nn.Module):
    def __init__(self, layout: ScaledSpec, num_classes: int = 1000) -> None:
        super().__init__()
        self.layout = layout
        stem: list[nn.Module] = [conv_bn_act(3, layout.stem_channels, layout.stem_kernel, layout.stem_stride,
                                             act=layout.act)]
        if layout.stem_pool:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)

        total, index = layout.num_blocks, 0
        stages = []
        for stage in layout.stages:
            blocks = []
            for i in range(stage.repeats):
                # Stochastic depth rises linearly with block index (torchvision / official code).
                drop_path = layout.drop_path * index / total
                blocks.append(
                    BLOCKS[stage.block](
                        stage.in_channels if i == 0 else stage.out_channels,
                        stage.out_channels,
                        stage.stride if i == 0 else 1,
                        kernel=stage.kernel,
                        expansion=stage.expansion,
                        se_ratio=stage.se_ratio,
                        act=layout.act,
                        drop_path=drop_path,
                    )
                )
                index += 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)

        features = layout.stages[-1].out_channels
        self.head: nn.Module = nn.Identity()
        if layout.head_channels:
            self.head = conv_bn_act(features, layout.head_channels, 1, act=layout.act)
            features = layout.head_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(layout.dropout) if layout.dropout else nn.Identity()
        self.classifier = nn.Linear(features, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.stages(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(self.dropout(x))
