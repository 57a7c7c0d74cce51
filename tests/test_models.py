"""Baselines: every registered model works, and the built networks equal the references."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from effscale.errors import UsageError
from effscale.models import (
    BaselineSpec,
    build_model,
    count_params,
    get_baseline,
    list_baselines,
    register_baseline,
    scale_spec,
)
from effscale.models.blocks import MBConv, StochasticDepth
from effscale.models.network import ScalableNet
from effscale.models.specs import EFFICIENTNET_B0, TINY

# torchvision's published num_params for its weights (models/*.py, the Weights enums).
TORCHVISION_PARAMS = {
    "efficientnet_b0": 5_288_548,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    # MobileNetV1 1.0-224 has no torchvision model; Keras' trainable count is the reference.
    "mobilenet_v1": 4_231_976,
}

# torchvision efficientnet_b1..b7: (width_mult, depth_mult) as in the official code, and num_params.
TORCHVISION_EFFICIENTNET = {
    "b1": (1.0, 1.1, 7_794_184),
    "b2": (1.1, 1.2, 9_109_994),
    "b3": (1.2, 1.4, 12_233_232),
    "b4": (1.4, 1.8, 19_341_616),
    "b5": (1.6, 2.2, 30_389_784),
    "b6": (1.8, 2.6, 43_040_704),
    "b7": (2.0, 3.1, 66_347_960),
}


@pytest.mark.parametrize(("name", "params"), sorted(TORCHVISION_PARAMS.items()))
def test_baseline_matches_reference_param_count(name: str, params: int) -> None:
    assert count_params(build_model(name, num_classes=1000)) == params


@pytest.mark.parametrize("variant", sorted(TORCHVISION_EFFICIENTNET))
def test_scaled_b0_matches_torchvision_variant(variant: str) -> None:
    width, depth, params = TORCHVISION_EFFICIENTNET[variant]
    assert count_params(build_model("efficientnet_b0", depth=depth, width=width)) == params


# torchvision/models/efficientnet.py, _efficientnet_conf("efficientnet_b0"), one row per stage:
# MBConvConfig(expand_ratio, kernel, stride, input_channels, out_channels, num_layers).
TORCHVISION_B0_ROWS = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
# torchvision/models/resnet.py: resnet50 = ResNet(Bottleneck, [3, 4, 6, 3]), planes 64..512, expansion 4.
TORCHVISION_RESNET50_ROWS = ((64, 3), (128, 4), (256, 6), (512, 3))


def _conv_bn(out_ch: int, in_per_group: int, kernel: int) -> list[tuple[int, ...]]:
    """Conv2d(bias=False) then BatchNorm2d: torchvision's Conv2dNormActivation and ResNet's pairs."""
    return [(out_ch, in_per_group, kernel, kernel), (out_ch,), (out_ch,)]


def torchvision_efficientnet_b0_shapes(num_classes: int = 1000) -> list[tuple[int, ...]]:
    """Parameter shapes of torchvision's efficientnet_b0, in registration order, from its rows."""
    shapes = _conv_bn(32, 3, 3)  # features[0]: 3x3/2 stem to the first row's input_channels
    for expand, kernel, _stride, in_ch, out_ch, layers in TORCHVISION_B0_ROWS:
        for i in range(layers):
            block_in = in_ch if i == 0 else out_ch
            expanded = block_in * expand  # B0's products are multiples of 8: _make_divisible keeps them
            squeeze = max(1, block_in // 4)  # MBConv: squeeze_channels = max(1, input_channels // 4)
            if expanded != block_in:
                shapes += _conv_bn(expanded, block_in, 1)
            shapes += _conv_bn(expanded, 1, kernel)  # depthwise: groups = expanded
            shapes += [(squeeze, expanded, 1, 1), (squeeze,), (expanded, squeeze, 1, 1), (expanded,)]  # SE fc1, fc2
            shapes += _conv_bn(out_ch, expanded, 1)
    shapes += _conv_bn(4 * 320, 320, 1)  # last_channel None: 4 * the last row's out_channels
    return shapes + [(num_classes, 1280), (num_classes,)]


def torchvision_resnet50_shapes(num_classes: int = 1000) -> list[tuple[int, ...]]:
    """Parameter shapes of torchvision's resnet50, in registration order, from its layer rows."""
    shapes = _conv_bn(64, 3, 7)  # conv1 7x7/2, bn1
    in_ch = 64
    for planes, blocks in TORCHVISION_RESNET50_ROWS:
        for i in range(blocks):
            shapes += _conv_bn(planes, in_ch, 1) + _conv_bn(planes, planes, 3) + _conv_bn(4 * planes, planes, 1)
            if i == 0:  # downsample (1x1 conv, bn) where stride or width changes: each layer's first block
                shapes += _conv_bn(4 * planes, in_ch, 1)
            in_ch = 4 * planes
    return shapes + [(num_classes, 2048), (num_classes,)]


TORCHVISION_SHAPES = {"efficientnet_b0": torchvision_efficientnet_b0_shapes, "resnet50": torchvision_resnet50_shapes}


def _parameter_shapes(model: torch.nn.Module) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in model.parameters()]


@pytest.mark.parametrize("name", sorted(TORCHVISION_SHAPES))
def test_built_model_equals_torchvision_parameter_by_parameter(name: str) -> None:
    reference = TORCHVISION_SHAPES[name]()
    # The reference is transcribed, not imported (torchvision is not a dependency): it must
    # itself reproduce torchvision's published num_params before it can judge anything.
    assert sum(math.prod(shape) for shape in reference) == TORCHVISION_PARAMS[name]
    # Module names differ from torchvision's (stages.2.0.block vs features.3.0.block), so compare
    # the ordered shapes: equal totals can hide a moved channel, a kernel or an SE width; this cannot.
    assert _parameter_shapes(build_model(name, num_classes=1000)) == reference


def _mutated_b0(stage: int, **change: object) -> BaselineSpec:
    stages = list(EFFICIENTNET_B0.stages)
    stages[stage] = dataclasses.replace(stages[stage], **change)
    return dataclasses.replace(EFFICIENTNET_B0, stages=tuple(stages))


@pytest.mark.parametrize(
    "change",
    [{"channels": 48}, {"kernel": 3}, {"se_ratio": 0.5}, {"repeats": 3}, {"expansion": 4}],
    ids=lambda change: next(iter(change)),
)
def test_the_shape_comparison_sees_a_one_stage_change(change: dict) -> None:
    # Stage 3 (k5, 40 channels, 2 blocks), altered one field at a time, no longer matches.
    model = ScalableNet(scale_spec(_mutated_b0(2, **change)), 1000)
    assert _parameter_shapes(model) != torchvision_efficientnet_b0_shapes()


def test_b0_layout_matches_table_1() -> None:
    scaled = scale_spec(EFFICIENTNET_B0)
    assert [s.repeats for s in scaled.stages] == [1, 2, 2, 3, 3, 4, 1]
    assert [s.out_channels for s in scaled.stages] == [16, 24, 40, 80, 112, 192, 320]
    assert [s.kernel for s in scaled.stages] == [3, 3, 5, 3, 5, 5, 3]
    assert (scaled.stem_channels, scaled.head_channels, scaled.num_blocks) == (32, 1280, 16)
    assert EFFICIENTNET_B0.total_stride == 32


def test_stem_and_head_scale_with_width() -> None:
    scaled = scale_spec(EFFICIENTNET_B0, width=2.0)
    assert (scaled.stem_channels, scaled.head_channels) == (64, 2560)


def test_every_depth_in_1_to_1_25_builds_the_same_23_blocks() -> None:
    signatures = {scale_spec(EFFICIENTNET_B0, depth=d).signature for d in (1.01, 1.1, 1.2, 1.25)}
    assert len(signatures) == 1
    assert scale_spec(EFFICIENTNET_B0, depth=1.25).num_blocks == 23
    assert scale_spec(EFFICIENTNET_B0, depth=1.26).signature not in signatures


@pytest.mark.parametrize("name", list_baselines())
def test_forward_shape_no_nans_and_every_parameter_gets_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=7).train()
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_stochastic_depth_only_in_training() -> None:
    torch.manual_seed(0)
    block = MBConv(16, 16, 1, drop_path=0.5)
    x = torch.randn(64, 16, 8, 8)
    block.eval()
    branch = block.block(x)
    # Eval: every sample keeps its whole residual branch, unscaled, every time.
    assert torch.equal(block(x), x + branch)
    assert torch.equal(block(x), block(x))
    block.train()
    torch.manual_seed(1)
    first = block(x)
    branch = block.block(x)  # train-mode BatchNorm: the branch the forward above added
    dropped = (first == x).flatten(1).all(1)
    # Train: a dropped sample is exactly the identity, a kept one gets its branch scaled by 1/(1-p).
    # A no-op StochasticDepth would drop none; one that dropped all would train nothing.
    assert 0 < int(dropped.sum()) < len(x)
    assert torch.allclose(first[~dropped], x[~dropped] + branch[~dropped] / 0.5, atol=1e-6)
    torch.manual_seed(2)
    assert not torch.equal(block(x), first)  # other RNG state, other samples dropped


def test_b0_drop_path_rises_linearly_over_its_residual_blocks() -> None:
    model = build_model("efficientnet_b0")
    rates = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    # torchvision: 0.2 * block_index / 16, on the 9 blocks that keep their shape (residual ones).
    assert rates == [pytest.approx(0.2 * i / 16) for i in (2, 4, 6, 7, 9, 10, 12, 13, 14)]


def test_registry_refuses_duplicate_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_baseline(TINY)


def test_register_a_new_spec() -> None:
    spec = BaselineSpec(name="test_registered_tiny2", stages=TINY.stages, stem_channels=8, base_resolution=16)
    baseline = register_baseline(spec)
    assert "test_registered_tiny2" in list_baselines()
    assert get_baseline("test_registered_tiny2") is baseline
    assert baseline.min_resolution == 8


def test_unknown_baseline_lists_known_ones() -> None:
    with pytest.raises(UsageError, match="unknown baseline 'effnet'.*efficientnet_b0.*resnet18"):
        get_baseline("effnet")


def test_user_function_baseline() -> None:
    baseline = get_baseline("user_baselines:small_cnn")
    assert baseline.base_resolution == 32
    model = baseline.build(1.0, 1.0, 5)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    # Its signature comes from the built module: depths that round alike are the same network.
    assert baseline.signature(1.0, 1.0) == baseline.signature(1.0, 1.0)
    assert baseline.signature(1.1, 1.0) == baseline.signature(1.4, 1.0)  # ceil(2.2) == ceil(2.8)
    assert baseline.signature(1.1, 1.0) != baseline.signature(1.0, 1.0)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        ("user_baselines:missing", "has no function 'missing'"),
        ("user_baselines:not_a_module", "returned str, not an nn.Module"),
        ("user_baselines:wrong_arity", "must take \\(depth: float, width: float, num_classes: int\\)"),
        (":f", "not of the form package.module:function"),
    ],
)
def test_bad_user_baselines(target: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        get_baseline(target)
