"""Baselines: every registered model works, and the built networks equal the references."""

from __future__ import annotations

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
    model = build_model("efficientnet_b0", num_classes=3)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), model(x))


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
