"""Trial footprints: the CPU memory model against real trials' peak RSS in fresh processes, the
composed activation counts against whole-network ones, the time probe, the fit rule, and (marked
``gpu``) the CUDA probe.

The ``gpu`` test needs CUDA: conftest skips it on a machine without one (CI included: a GPU is
hardware, not an install step), and fails it there when ``EFFSCALE_TEST_GPU=1`` says a GPU must be
present.
"""

from __future__ import annotations

import pytest
import torch

from effscale.errors import UsageError
from effscale.models import get_baseline
from effscale.trainer import ProxyRecipe, load_data
from effscale.trainer import activations, steps
from effscale.trainer import footprint as fp
from effscale.trainer.footprint import (
    BATCH_FLOOR,
    ESTIMATE_ERROR,
    FIRST_STEP_BYTES,
    GiB,
    TrialFootprint,
    count_activations,
    cpu_trial_memory,
    direct_activations,
    fit_batch,
    probe_cpu_peak,
    probe_step_time,
)


@pytest.fixture(autouse=True)
def _own_disk_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFFSCALE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.mark.slow
@pytest.mark.parametrize(("name", "resolution", "batch"), [("tiny", 32, 64), ("resnet18", 32, 32)])
def test_the_cpu_estimate_is_within_its_documented_error_of_a_real_trial(name: str, resolution: int, batch: int) -> None:
    # A real `train_proxy` step and its evaluation, in a fresh interpreter, read by its own VmHWM.
    recipe = ProxyRecipe(batch_size=batch)
    measured = probe_cpu_peak(name, depth=1.0, width=1.0, resolution=resolution, data="digits", recipe=recipe)
    data = load_data("digits", seed=0)
    count = count_activations(name, depth=1.0, width=1.0, resolution=resolution, num_classes=data.num_classes)
    parts = cpu_trial_memory(count, data=data, resolution=resolution, batch_size=batch, recipe=recipe, ray_worker=False)
    # The child's base as it read it (imports, scikit-learn for digits, the data); the model the rest.
    predicted = measured["data"] + parts.resized + parts.model + parts.step + FIRST_STEP_BYTES
    assert abs(predicted - measured["peak"]) <= ESTIMATE_ERROR * measured["peak"], (predicted, measured)
    assert measured["base"] < measured["data"] < measured["peak"]
    # What Ray is asked for covers the real peak.
    assert TrialFootprint(predicted, None, 0.0, batch).memory_request_bytes > measured["peak"]


@pytest.mark.parametrize(
    ("name", "depth", "width", "resolution"),
    [("efficientnet_b0", 1.4, 1.3, 97), ("efficientnet_b0", 1.0, 1.0, 224), ("resnet50", 2.0, 0.5, 64),
     ("mobilenet_v2", 1.2, 1.1, 33), ("tiny", 1.0, 1.0, 8)],
)
def test_composed_activation_counts_equal_a_whole_network_forward(
    name: str, depth: float, width: float, resolution: int
) -> None:
    # The probe's terms (read at the total stride and at 2x+1 it) composed to this network and size,
    # against one meta forward of the whole network at that size.
    composed = count_activations(name, depth=depth, width=width, resolution=resolution, num_classes=10)
    assert composed == direct_activations(name, depth=depth, width=width, resolution=resolution, num_classes=10)
    model = get_baseline(name).build(depth, width, 10)
    assert composed.params == sum(p.numel() for p in model.parameters())


def test_a_meta_count_equals_a_count_on_real_tensors() -> None:
    model = get_baseline("tiny").build(1.0, 1.0, 10)
    real = activations._record(model, 32, torch.device("cpu"))
    meta = activations._record(get_baseline("tiny").build(1.0, 1.0, 10).to("meta"), 32, torch.device("meta"))
    assert real == meta
    # At batch 2, tiny's stem input alone (3x32x32 floats x 2) is among what autograd keeps.
    assert real.saved["stem.0.0"][0] == (32 * 32, 2 * 3 * 32 * 32 * 4)


def test_activations_grow_with_the_area() -> None:
    small = count_activations("efficientnet_b0", depth=1.0, width=1.0, resolution=112, num_classes=10)
    large = count_activations("efficientnet_b0", depth=1.0, width=1.0, resolution=224, num_classes=10)
    assert 3.8 < large.saved_bytes / small.saved_bytes < 4.2
    assert large.params == small.params


def test_the_model_computes_with_the_trainers_own_rules() -> None:
    """The resized set, the evaluation batch and the resize chunks come from the functions
    `train_proxy` itself runs (one source of truth), so they cannot drift apart."""
    from effscale.trainer._augment import RESIZE_CHUNK_BYTES, resize_working_bytes
    from effscale.trainer.proxy import _setup, eval_batch_size

    data = load_data("digits", seed=0)
    recipe = ProxyRecipe(batch_size=16, steps=1)
    run = _setup(get_baseline("tiny").build(1.0, 1.0, 10), data, recipe, resolution=40, device="cpu", threads=None)
    # The bytes `train_proxy` really holds for the resized set (padded training set, validation set).
    assert fp.resized_bytes(data, 40) == run.x_train.numel() + run.x_val.numel()
    count = count_activations("efficientnet_b0", depth=1.0, width=1.0, resolution=224, num_classes=10)
    parts = cpu_trial_memory(count, data=data, resolution=224, batch_size=16, recipe=recipe)
    assert parts.resized == fp.resized_bytes(data, 224)
    assert parts.resize == resize_working_bytes(data.num_train, 3, (8, 8), 224) <= RESIZE_CHUNK_BYTES
    # B0 at 224 px, batch 16: evaluation at batch 32 (it was 256, most of the trial's 5.4 GiB) now
    # needs less than the training step, and halves with the training batch.
    assert parts.eval_batch == eval_batch_size(16, data.num_val) == 32
    assert parts.evaluate < parts.train and parts.step == parts.train
    half = cpu_trial_memory(count, data=data, resolution=224, batch_size=8, recipe=recipe)
    assert half.eval_batch == 16 and half.evaluate * 2 == parts.evaluate


def test_the_fit_rule_halves_the_batch_then_refuses_in_one_line() -> None:
    def need(batch: int) -> int:
        return GiB + batch * GiB // 16

    fits = dict(candidate="(1.2, 1.1, 1.15) at 258 px", where="the largest node (local)", flags="lower --base-resolution")
    assert fit_batch(need, batch_size=128, available=10 * GiB, **fits) == 128
    assert fit_batch(need, batch_size=128, available=6 * GiB, **fits) == 64
    assert fit_batch(need, batch_size=128, available=int(1.5 * GiB), **fits) == BATCH_FLOOR
    with pytest.raises(UsageError) as refused:
        fit_batch(need, batch_size=128, available=GiB, **fits)
    message = str(refused.value)
    assert "\n" not in message
    assert message == (
        "candidate (1.2, 1.1, 1.15) at 258 px needs 1.5 GiB per trial even at batch 8 (asked: 128) "
        "but the largest node (local) has 1.0 GiB; lower --base-resolution"
    )


def test_a_smaller_batch_scales_the_learning_rate_with_it() -> None:
    halved = TrialFootprint(GiB, None, 1.0, 64, 0.5)
    assert halved.recipe(ProxyRecipe(batch_size=128, lr=0.2)) == ProxyRecipe(batch_size=64, lr=0.1)
    unset = halved.recipe(ProxyRecipe(batch_size=128))
    assert unset.batch_size == 64 and unset.lr is None and unset.peak_lr == ProxyRecipe(batch_size=128).peak_lr / 2
    assert halved.memory_request_bytes > GiB * (1 + fp.MEMORY_MARGIN)


def test_the_time_probe_times_real_steps_and_is_cached() -> None:
    recipe = ProxyRecipe(batch_size=64)
    step = probe_step_time("tiny", depth=1.0, width=1.0, resolution=16, num_classes=10, recipe=recipe)
    assert step.per_image > 0 and step.overhead >= 0
    assert step.seconds(64) > step.seconds(8) > 0
    again = probe_step_time("tiny", depth=1.0, width=1.0, resolution=16, num_classes=10, recipe=recipe)
    assert again == step  # the disk cache: timings vary, a cached one does not


def test_the_probes_step_is_the_trainers_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # One step function: patching the trainer's reaches both `train_proxy` and the time probe.
    from effscale.trainer import proxy

    calls: list[str] = []
    real = proxy.train_step

    def counting(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append("step")
        return real(*args, **kwargs)

    monkeypatch.setattr(proxy, "train_step", counting)
    recipe = ProxyRecipe(batch_size=16, steps=1)
    proxy.train_proxy(get_baseline("tiny").build(1.0, 1.0, 10), load_data("digits", seed=0), resolution=16,
                      recipe=recipe)
    assert calls == ["step"]
    steps._time_step(get_baseline("tiny").build(1.0, 1.0, 10), recipe, 2, 16, 10)
    assert calls == ["step"] * 4  # a warm-up and two timed steps


def test_clear_cost_cache_forgets_the_activation_probes_too() -> None:
    from effscale.models import probe
    from effscale.models.cost import clear_cost_cache

    count_activations("tiny", depth=1.0, width=1.0, resolution=24, num_classes=10)
    assert any(key[1] == "activations" for key in probe._FITS)
    clear_cost_cache()
    assert not probe._FITS


def test_step_times_fit_an_overhead_and_a_slope() -> None:
    assert steps._fit_step_time([(2, 0.30)]) == steps.StepTime(0.0, 0.15)
    fitted = steps._fit_step_time([(2, 0.02), (8, 0.05)])
    assert fitted.per_image == pytest.approx(0.005) and fitted.overhead == pytest.approx(0.01)


@pytest.mark.gpu
def test_the_cuda_probe_measures_a_real_step() -> None:
    recipe = ProxyRecipe(batch_size=32)
    small = fp.probe_cuda_step("tiny", depth=1.0, width=1.0, resolution=32, num_classes=10, batch=8, recipe=recipe)
    large = fp.probe_cuda_step("tiny", depth=1.0, width=1.0, resolution=32, num_classes=10, batch=32, recipe=recipe)
    assert 0 < small.peak_bytes < large.peak_bytes and small.step_seconds > 0
