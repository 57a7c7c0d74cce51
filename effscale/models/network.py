"""Build an `nn.Module` from a `ScaledSpec`: stem, stages of blocks, optional head conv, classifier."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from effscale.models.blocks import BLOCKS, conv_bn_act
from effscale.models.specs import ScaledSpec


class ScalableNet(nn.Module):
    def __init__(self, scaled: ScaledSpec, num_classes: int = 1000) -> None:
        super().__init__()
        spec = scaled.spec
        self.scaled = scaled
        stem: list[nn.Module] = [conv_bn_act(3, scaled.stem_channels, spec.stem_kernel, spec.stem_stride, act=spec.act)]
        if spec.stem_pool:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)

        total, index = scaled.num_blocks, 0
        stages = []
        for stage in scaled.stages:
            blocks = []
            for i in range(stage.repeats):
                # Stochastic depth rises linearly with block index (torchvision / official code).
                drop_path = spec.drop_path * index / total
                blocks.append(
                    BLOCKS[stage.block](
                        stage.in_channels if i == 0 else stage.out_channels,
                        stage.out_channels,
                        stage.stride if i == 0 else 1,
                        kernel=stage.kernel,
                        expansion=stage.expansion,
                        se_ratio=stage.se_ratio,
                        act=spec.act,
                        drop_path=drop_path,
                    )
                )
                index += 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)

        features = scaled.stages[-1].out_channels
        self.head: nn.Module = nn.Identity()
        if scaled.head_channels:
            self.head = conv_bn_act(features, scaled.head_channels, 1, act=spec.act)
            features = scaled.head_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout else nn.Identity()
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
