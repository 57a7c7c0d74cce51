"""Small-image baselines: the CIFAR ResNets of He et al. 2016 (§4.2) as data, and ``--stem small``,
the stride-1 stem that adapts the ImageNet baselines to small inputs. No training here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from effscale.errors import UsageError
from effscale.models import (
    SMALL_STEM_TOTAL_STRIDE,
    STEMS,
    build_model,
    count_params,
    get_baseline,
    scale_spec,
    small_stem,
)
from effscale.models.blocks import PadShortcut
from effscale.models.cost import arch_id, clear_cost_cache, count_flops, measure_cost
from effscale.models.specs import RESNET18, RESNET20_CIFAR

IMAGENET_BASELINES = ("efficientnet_b0", "resnet18", "resnet34", "resnet50", "mobilenet_v1", "mobilenet_v2")


def _last_map_side(model: nn.Module, resolution: int) -> int:
    """The side of the stages' output (the last feature map, before any 1x1 head conv and pooling)."""
    sides: list[int] = []
    handle = model.stages.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1]))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, resolution, resolution))
    finally:
        handle.remove()
    return sides[0]


# ---------------------------------------------------------------------------------------------
# resnet20_cifar: He et al. 2016, §4.2


def cifar_resnet_params(n: int, num_classes: int = 10) -> int:
    """Parameters of the 6n+2-layer CIFAR ResNet, counted from the paper's description alone.

    A 3x3 conv from 3 to 16 channels (no bias) and its BatchNorm (weight and bias); three stages
    of n basic blocks at 16, 32 and 64 channels, each block two 3x3 convs and two BatchNorms, the
    first conv of a stage reading the previous stage's width; option-A shortcuts are a strided,
    zero-padded identity and add nothing; then a 64 -> classes linear layer with its bias.
    """
    total = 3 * 16 * 9 + 2 * 16
    in_ch = 16
    for ch in (16, 32, 64):
        for i in range(n):
            block_in = in_ch if i == 0 else ch
            total += block_in * ch * 9 + 2 * ch + ch * ch * 9 + 2 * ch
        in_ch = ch
    return total + 64 * num_classes + num_classes


# n -> the counts cifar_resnet_params gives: the same figures akamaster/pytorch_resnet_cifar10
# (the widely used reference implementation) prints for its resnet20/32/44/56/110, and He et al.
# 2016's Table 6 rounds to 0.27M, 0.46M, 0.66M, 0.85M and 1.7M.
CIFAR_RESNET_PARAMS = {3: 269_722, 5: 464_154, 7: 658_586, 9: 853_018, 18: 1_727_962}


def test_the_independent_count_gives_the_published_figures() -> None:
    assert {n: cifar_resnet_params(n) for n in CIFAR_RESNET_PARAMS} == CIFAR_RESNET_PARAMS


# resnet20_cifar's depth coefficient for ResNet-20/32/44/56/110: round_repeats is ceil(3 * d).
@pytest.mark.parametrize(
    ("depth", "n"), [(1.0, 3), (5 / 3, 5), (1.66, 5), (7 / 3, 7), (2.33, 7), (3.0, 9), (6.0, 18)]
)
def test_depth_scaling_gives_the_cifar_resnets_parameter_for_parameter(depth: float, n: int) -> None:
    assert [s.repeats for s in scale_spec(RESNET20_CIFAR, depth=depth).stages] == [n, n, n]
    assert count_params(build_model("resnet20_cifar", depth=depth, num_classes=10)) == cifar_resnet_params(n)


def test_resnet20_cifar_shape_and_total_stride() -> None:
    baseline = get_baseline("resnet20_cifar")
    assert (baseline.base_resolution, baseline.min_resolution, RESNET20_CIFAR.total_stride) == (32, 4, 4)
    assert baseline.describe()["total_stride"] == 4 and baseline.stem == "standard"
    model = build_model("resnet20_cifar", num_classes=10)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert _last_map_side(model, 32) == 8  # feature maps of 32, 16 and 8 px, as in §4.2
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())


def test_option_a_shortcuts_have_no_parameters() -> None:
    model = build_model("resnet20_cifar", num_classes=10)
    shortcuts = [m for m in model.modules() if isinstance(m, PadShortcut)]
    assert len(shortcuts) == 2  # the first block of stages 2 and 3
    assert all(count_params(m) == 0 for m in shortcuts)
    assert [m.pad for m in shortcuts] == [(8, 8), (16, 16)]  # 16 -> 32 and 32 -> 64, split evenly


def test_option_a_shortcut_is_the_subsampled_zero_padded_identity() -> None:
    x = torch.arange(2 * 2 * 4 * 4, dtype=torch.float32).view(2, 2, 4, 4)
    expected = torch.zeros(2, 5, 2, 2)
    expected[:, 1:3] = x[:, :, ::2, ::2]  # 3 new channels: 1 before the input's, 2 after
    assert torch.equal(PadShortcut(2, 5, 2)(x), expected)
    assert torch.equal(PadShortcut(2, 2, 1)(x), x)
    with pytest.raises(ValueError, match="cannot narrow 4 channels to 2"):
        PadShortcut(4, 2, 1)


def test_a_cifar_block_in_the_network_uses_the_padded_identity() -> None:
    model = build_model("resnet20_cifar", num_classes=10).eval()
    block = model.stages[1][0]  # 16 -> 32 channels, stride 2
    x = torch.randn(1, 16, 6, 6)
    with torch.no_grad():
        out = block(x)
        expected = torch.relu(block.body(x) + nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8)))
    assert torch.equal(out, expected)


def test_resnet20_cifar_refuses_a_small_stem_in_one_line() -> None:
    with pytest.raises(UsageError) as info:
        get_baseline("resnet20_cifar", stem="small")
    message = str(info.value)
    assert "\n" not in message
    assert "resnet20_cifar already has a small-image stem (total stride 4); drop --stem small" in message


# ---------------------------------------------------------------------------------------------
# --stem small


def test_stems_are_named_constants() -> None:
    assert STEMS == ("standard", "small")
    assert SMALL_STEM_TOTAL_STRIDE == 8


@pytest.mark.parametrize("name", IMAGENET_BASELINES)
def test_small_stem_has_total_stride_8_and_a_4x4_last_map_at_32_px(name: str) -> None:
    standard, small = get_baseline(name), get_baseline(name, stem="small")
    assert (standard.stem, small.stem) == ("standard", "small")
    assert (small.name, small.label) == (name, f"{name} (small stem)")
    assert small.min_resolution == SMALL_STEM_TOTAL_STRIDE
    assert small.describe()["stem"] == "small" and small.describe()["total_stride"] == 8
    assert standard.describe()["stem"] == "standard" and standard.describe()["total_stride"] == 32
    model = small.build(1.0, 1.0, 10)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert _last_map_side(model, 32) == 4
    assert _last_map_side(standard.build(1.0, 1.0, 10), 32) == 1
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())


@pytest.mark.parametrize("name", IMAGENET_BASELINES)
def test_small_stem_changes_only_the_stem_conv_parameters(name: str) -> None:
    spec = get_baseline(name).spec
    # ResNet's 7x7 stem conv becomes 3x3; B0's and the MobileNets' were 3x3 already.
    stem_delta = spec.stem_channels * 3 * (9 - spec.stem_kernel**2)
    standard = count_params(build_model(name, num_classes=10))
    assert count_params(build_model(name, num_classes=10, stem="small")) == standard + stem_delta


def test_resnet18_small_stem_params_differ_by_the_stem_conv_only() -> None:
    standard = count_params(build_model("resnet18", num_classes=1000))
    assert standard == 11_689_512  # torchvision's, unchanged (tests/test_models.py pins them all)
    assert count_params(build_model("resnet18", num_classes=1000, stem="small")) == standard + 64 * 3 * (9 - 49)


def test_small_stem_is_a_pure_function_of_the_spec() -> None:
    small = small_stem(RESNET18)
    assert (small.stem_kernel, small.stem_stride, small.stem_pool, small.stem) == (3, 1, False, "small")
    assert [s.stride for s in small.stages] == [s.stride for s in RESNET18.stages]  # 32 / 4 is already 8
    assert (RESNET18.stem, RESNET18.stem_kernel, RESNET18.total_stride) == ("standard", 7, 32)  # untouched
    b0 = small_stem(get_baseline("efficientnet_b0").spec)
    # Stride 1 in the stem leaves 16: the first stride-2 stage (24 channels) goes to stride 1.
    assert [s.stride for s in b0.stages] == [1, 1, 2, 2, 1, 2, 1]


def _old_signature(name: str, depth: float, width: float) -> tuple:
    """`ScaledSpec.signature` as it was computed before stems existed."""
    scaled = scale_spec(get_baseline(name).spec, depth, width)
    return (
        scaled.name,
        scaled.stem_channels,
        tuple((s.block, s.repeats, s.in_channels, s.out_channels) for s in scaled.stages),
        scaled.head_channels,
    )


# arch_id(signature, resolution) of standard networks, computed by the code before stems existed:
# cached costs and stored trials refer to these, so they must not move.
PINNED_ARCH_IDS = {
    ("resnet18", 1.0, 1.0, 32): "93e8edbb8758",
    ("resnet18", 1.2, 1.1, 224): "31b5d7543520",
    ("efficientnet_b0", 1.0, 1.0, 32): "504b9e327f1c",
    ("efficientnet_b0", 1.2, 1.1, 224): "4aed0cd9bc69",
    ("mobilenet_v2", 1.0, 1.0, 32): "ec830d44d2ad",
}


@pytest.mark.parametrize(("key", "expected"), sorted(PINNED_ARCH_IDS.items()))
def test_standard_signatures_and_arch_ids_are_unchanged(key: tuple, expected: str) -> None:
    name, depth, width, resolution = key
    signature = get_baseline(name).signature(depth, width)
    assert signature == _old_signature(name, depth, width)
    assert arch_id(signature, resolution) == expected


@pytest.mark.parametrize("name", IMAGENET_BASELINES)
def test_small_and_standard_signatures_differ(name: str) -> None:
    standard, small = get_baseline(name), get_baseline(name, stem="small")
    assert small.signature(1.2, 1.1) != standard.signature(1.2, 1.1)
    assert small.signature(1.2, 1.1)[-1] == ("stem", "small")
    # Back to standard: the registered network itself.
    assert small.with_stem("standard").signature(1.2, 1.1) == standard.signature(1.2, 1.1)
    assert get_baseline(small) is small  # passing a baseline on keeps its stem
    assert get_baseline(name, stem="standard") is standard


@pytest.mark.parametrize(
    "call",
    [
        lambda: get_baseline("resnet18", stem="huge"),
        lambda: build_model("resnet18", stem="huge"),
        lambda: get_baseline("user_baselines:small_cnn", stem="huge"),
        lambda: get_baseline("resnet18").with_stem("huge"),
    ],
)
def test_an_unknown_stem_is_a_one_line_usage_error(call) -> None:
    with pytest.raises(UsageError) as info:
        call()
    assert str(info.value) == "--stem huge is not one of standard, small; pass one of them"


def test_a_user_function_without_a_stem_parameter_refuses_small_in_one_line() -> None:
    assert get_baseline("user_baselines:small_cnn", stem="standard").stem == "standard"
    with pytest.raises(UsageError) as info:
        get_baseline("user_baselines:small_cnn", stem="small")
    assert str(info.value) == (
        "baseline user_baselines:small_cnn cannot take --stem small: its function has no `stem` "
        "parameter; add one (stem: str = 'standard') or use a baseline given as data"
    )


def test_a_user_function_with_a_stem_parameter_takes_small() -> None:
    standard = get_baseline("user_baselines:stem_cnn")
    small = get_baseline("user_baselines:stem_cnn", stem="small")
    assert (small.stem, small.label) == ("small", "user_baselines:stem_cnn (small stem)")
    x = torch.randn(1, 3, 32, 32)
    assert small.build(1.0, 1.0, 5)[0].stride == (1, 1)  # called with stem="small"
    assert standard.build(1.0, 1.0, 5)[0].stride == (2, 2)
    assert small.build(1.0, 1.0, 5)(x).shape == (1, 5)
    # Same parameters and modules, so only the stem tells the signatures (and arch ids) apart.
    assert small.signature() == (*standard.signature(), ("stem", "small"))
    assert measure_cost(small, 32, num_classes=5).arch_id != measure_cost(standard, 32, num_classes=5).arch_id
    assert measure_cost(small, 32, num_classes=5).flops > measure_cost(standard, 32, num_classes=5).flops
    assert small.describe()["stem"] == "small"


def test_small_stem_cost_is_its_own_and_never_collides_with_the_standard_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EFFSCALE_CACHE_DIR", str(tmp_path))
    clear_cost_cache()
    standard = measure_cost("resnet18", 32, num_classes=10)  # now on disk under tmp_path
    clear_cost_cache()  # memory forgotten: only the disk cache could mix them up now
    small = measure_cost(get_baseline("resnet18", stem="small"), 32, num_classes=10)
    assert small.arch_id != standard.arch_id
    assert small.flops != standard.flops and small.params == standard.params + 64 * 3 * (9 - 49)
    # Each equals a direct trace of its own network, cached or not.
    small_model = build_model("resnet18", num_classes=10, stem="small")
    assert small.flops == count_flops(small_model, 32)
    assert standard.flops == count_flops(build_model("resnet18", num_classes=10), 32)
    clear_cost_cache()
    assert measure_cost("resnet18", 32, num_classes=10) == standard  # from disk
    assert measure_cost(get_baseline("resnet18", stem="small"), 32, num_classes=10) == small
    clear_cost_cache()


@pytest.mark.parametrize("name", ["resnet20_cifar", "efficientnet_b0", "mobilenet_v1", "resnet50"])
def test_composed_cost_of_small_image_networks_equals_a_direct_trace(name: str) -> None:
    baseline = get_baseline(name) if name == "resnet20_cifar" else get_baseline(name, stem="small")
    clear_cost_cache()
    model = baseline.build(1.2, 1.1, 10)
    for resolution in (8, 32, 33, 37):
        assert measure_cost(baseline, resolution, depth=1.2, width=1.1, num_classes=10).flops == count_flops(
            model, resolution
        )

