"""What one proxy-training trial needs -- peak memory and seconds per step -- before anything trains.

A search runs each trial in its own Ray worker. A trial that does not fit is killed by Ray's OOM
killer long after it started (efficientnet_b0 at 224-291 px and batch 128 on digits: every core's
worker, after ~70 s), so the plan measures first and the runner asks Ray for the memory.

Host memory on the CPU is an **activation-count model**, not a probe per candidate: a probe is a
fresh process (torch import, data load, one real step) at seconds to minutes each, while the model
costs a training-mode forward under `torch.autograd.graph.saved_tensors_hooks` that adds up the
distinct storages autograd keeps for backward (weights excluded), per image -- on the ``meta``
device for a whole network, or, for spec baselines, composed from two small forwards of a
two-blocks-per-stage probe per width (`count_activations`). `cpu_trial_memory` then adds what
`train_proxy` holds besides (see `MemoryParts`): the worker's base footprint (Python, torch and
effscale imported), the dataset and its resized copy, weights + gradients + optimizer state, the
kept precise-BN batches, and the largest of the training step, the evaluation batch and the
resize. Its constants (`TRAIN_SAVED_FACTOR` and the three below it) were fitted to the peak RSS of
real one-step trials in child processes (`probe_cpu_peak`: one `train_proxy` step and its
evaluation on digits, SGD, one thread, torch 2.13 CPU) on the first 11 runs, then checked on 6
held out (``benchmarks/bench_plan.py --accuracy`` reruns it). Peak RSS in MiB, the process's own
base (imports and data, read in the child) included in both columns; "then" is the fit's run,
"now" the rerun after evaluation went from batch max(256, 2 x batch) to 2 x batch
(`effscale.trainer.proxy.eval_batch_size`), resizing to byte-bounded chunks and digits stopped
importing scikit-learn (constants unchanged; the rerun shared the 2 cores with other jobs):

                                       then (fit)                  now
    network          d    w     res batch predicted measured  error   predicted measured  error
    tiny             1    1      32    32      580      550   +5.4%      403      383   +5.1%  fit
    tiny             1    1      32   256      753      776   -2.9%      613      622   -1.5%  fit
    tiny             1    1      64   128     1011     1060   -4.5%      871      814   +7.0%  fit
    resnet18         1    1      32    32      707      695   +1.6%      522      523   -0.3%  fit
    resnet18         1    1      32   256      794      822   -3.3%      654      654   +0.0%  fit
    resnet18         1    1      64   128      955      907   +5.3%      816      822   -0.7%  fit
    mobilenet_v2     1    1      64    32      957      932   +2.6%      648      645   +0.4%  fit
    mobilenet_v2     1    1      96   128     2621     2496   +5.0%     2481     2354   +5.4%  fit
    efficientnet_b0  1    1      64    32      978     1015   -3.6%      698      656   +6.3%  fit
    efficientnet_b0  1    1      96   128     2888     2740   +5.4%     2748     2467  +11.4%  fit
    efficientnet_b0  1    1     224    16     5776     5570   +3.7%     2311     2474   -6.6%  fit
    tiny             1    1     128    64     1700     1982  -14.2%     1436     1373   +4.6%  held out
    resnet18         1    1      96    64     1304     1172  +11.3%      888      890   -0.3%  held out
    mobilenet_v2     1    1     128    32     2237     2280   -1.9%     1407     1244  +13.1%  held out
    efficientnet_b0  1.4  1.3   120    64     4362     4067   +7.3%     4222     3950   +6.9%  held out
    efficientnet_b0  1    1     128    64     2677     2676   +0.0%     2536     2242  +13.1%  held out
    resnet18         1.2  1.1    48   512     1669     1742   -4.2%     1529     1448   +5.6%  held out

So: within 6% where fitted, within 15% held out and on the rerun (`ESTIMATE_ERROR`); the Ray
request's margin (`MEMORY_MARGIN` + `MEMORY_MARGIN_BYTES`) covers every run above. B0 at 224 px
and batch 16 went from 5.4 to 2.4 GiB: evaluating at batch 256 was most of it; at batch 32 the
training step decides, and halving the batch now halves both.

On CUDA the footprint is measured: `probe_cuda_step` runs one real step (SGD momentum, bf16
autocast, channels_last, as `train_proxy` does) and reads ``torch.cuda.max_memory_allocated``; the
same step, timed, is the time estimate there.

Time on the CPU is probed, not modelled: `probe_step_time` times real training steps at a small
batch (after an untimed warm-up step) and scales them linearly to the trial's batch. Linear,
because on a CPU a step's work is per image -- measured for a B0 at 291 px on one thread: 0.45,
0.43 and 0.49 s per image at batches 1, 2 and 4 -- plus a per-step overhead (optimizer update,
Python dispatch) that matters only for small networks: those are fast, so the probe grows its batch
until a step takes 0.1 s and reads the overhead off two batches. (A GPU is the opposite,
latency-bound at small batches, which is why CUDA times the real batch.) See
`effscale.search.planning.resources` for which networks get probed.

Every figure is cached on disk (`effscale.models.cost.DiskCache`) by architecture signature,
resolution, batch and device, so a second plan of the same grid probes nothing.

The fit rule (`fit_batch`, the one place it lives): a trial that does not fit a node even alone
halves its batch, scaling its learning rate linearly, down to `BATCH_FLOOR`; if it still does not
fit, the search is refused before anything trains, in one line that names the candidate, the
memory it needs, the memory there is and the flags to change.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effscale.errors import UsageError
from effscale.models.cost import DiskCache
from effscale.models.registry import Baseline, SpecBaseline, get_baseline
from effscale.trainer._augment import crop_padding, resize_working_bytes
from effscale.trainer.data import ProxyData
from effscale.trainer.proxy import eval_batch_size
from effscale.trainer.recipe import ProxyRecipe

MiB = 1024**2
GiB = 1024**3
BATCH_FLOOR = 8  # `fit_batch` halves a batch that does not fit down to this, then refuses
# The CPU model's documented error against measured peak RSS (the table above: worst 14.2%).
ESTIMATE_ERROR = 0.15
# Ray `memory` request = the estimate x (1 + MEMORY_MARGIN) + MEMORY_MARGIN_BYTES. The fraction
# covers the model's worst error (`ESTIMATE_ERROR`), the constant the allocator's slack on small trials.
MEMORY_MARGIN = ESTIMATE_ERROR
MEMORY_MARGIN_BYTES = 256 * MiB
# The time probe's first batch: 1 where the last feature maps have more than one pixel, else 2 (in
# training mode BatchNorm needs more than one value per channel).
TIME_PROBE_BATCH = 2

_ACTIVATIONS = DiskCache("activations")
_STEP_TIMES = DiskCache("step-seconds")
_CUDA_STEPS = DiskCache("cuda-step")


# ---------------------------------------------------------------------------------------------
# what a trial needs


@dataclass(frozen=True)
class TrialFootprint:
    """One trial's needs, for the plan and for the runner's Ray resource request.

    ``memory_bytes`` is the estimated peak host memory (RSS) of the trial's worker process;
    ``memory_request_bytes`` adds the margin and is what to ask Ray for (``memory``).
    ``gpu_memory_bytes`` is the measured CUDA peak (None when not measured: no CUDA here).
    ``batch_size`` is what the trial should train at: the recipe's, or less by `fit_batch`;
    ``lr_scale`` = batch_size / the recipe's, the factor its learning rate takes.
    """

    memory_bytes: int
    gpu_memory_bytes: int | None
    step_seconds: float
    batch_size: int
    lr_scale: float = 1.0

    @property
    def memory_request_bytes(self) -> int:
        return int(math.ceil(self.memory_bytes * (1 + MEMORY_MARGIN) + MEMORY_MARGIN_BYTES))

    def recipe(self, recipe: ProxyRecipe) -> ProxyRecipe:
        """``recipe`` at this batch size, its learning rate scaled with it (Goyal et al. 2017).

        An unset lr (``None``) already scales with the batch size (`ProxyRecipe.peak_lr`)."""
        if self.batch_size == recipe.batch_size:
            return recipe
        lr = None if recipe.lr is None else recipe.lr * self.batch_size / recipe.batch_size
        return recipe.replace(batch_size=self.batch_size, lr=lr)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "memory_request_bytes": self.memory_request_bytes}


# ---------------------------------------------------------------------------------------------
# activations: what autograd keeps for backward


@dataclass(frozen=True)
class ActivationCount:
    """Per image, in float32: what autograd keeps for backward, and the largest single output."""

    saved_bytes: int
    largest_bytes: int
    params: int
    buffer_bytes: int


def count_activations(
    baseline: str | Baseline, *, depth: float, width: float, resolution: int, num_classes: int
) -> ActivationCount:
    """`ActivationCount` of the (depth, width) network at ``resolution``, from training-mode
    forwards that allocate nothing at that size; cached on disk for spec baselines.

    A spec baseline's count is composed like its FLOPs (`effscale.models.cost`): each module of
    the two-blocks-per-stage probe keeps, per saved tensor, a constant or bytes per pixel of its
    input or output area, read in two real forwards at tiny sizes (the total stride, and 2x+1 it:
    the second checks the first); the network's count is
    those terms at its resolution times each module's multiplicity. One pair of probe forwards per
    width then serves every depth and resolution (`tests/test_footprint.py` checks the composed
    count against a direct one). Other baselines are counted directly (`direct_activations`).
    """
    base = get_baseline(baseline)
    key = ["activations", base.signature(depth, width), resolution, num_classes]
    disk = isinstance(base, SpecBaseline)
    stored = _ACTIVATIONS.get(key) if disk else None
    if isinstance(stored, dict):
        try:
            return ActivationCount(**stored)
        except TypeError:
            pass  # an older layout: measure again
    count = _composed_count(base, depth, width, resolution, num_classes) if disk else None
    if count is None:
        count = direct_activations(base, depth=depth, width=width, resolution=resolution, num_classes=num_classes)
    if disk:
        _ACTIVATIONS.put(key, asdict(count))
    return count


def direct_activations(
    baseline: str | Baseline, *, depth: float, width: float, resolution: int, num_classes: int
) -> ActivationCount:
    """`ActivationCount` from one forward of the whole network (``meta``; on the CPU for a user
    network that cannot run on ``meta``)."""
    base = get_baseline(baseline)
    try:
        with torch.device("meta"):
            model = base.build(depth, width, num_classes)
        recorded = _record(model, resolution, torch.device("meta"))
    except Exception:  # noqa: BLE001 - a user network that cannot run on meta: count for real
        if isinstance(base, SpecBaseline):
            raise
        model = base.build(depth, width, num_classes)
        recorded = _record(model, resolution, torch.device("cpu"))
    saved = sum(b for tensors in recorded.saved.values() for _, b in tensors)
    largest = max((b for _, b in recorded.outputs.values()), default=0)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return ActivationCount(saved // _BATCH, largest // _BATCH, params, buffers)


# Forwards run at batch 2, counts are halved: BatchNorm refuses one value per channel in training
# mode (1x1 maps).
_BATCH = 2
_Area = int | None  # a 4-D tensor's H*W; None for any other tensor


@dataclass
class _Recorded:
    """One training-mode forward: per module, the tensors autograd saved while it ran (each storage
    counted once, for the module that saved it first; weights excluded) and its output."""

    saved: dict[str, list[tuple[_Area, int]]]
    outputs: dict[str, tuple[_Area, int]]


def _area(t: Any) -> _Area:
    return int(t.shape[-2] * t.shape[-1]) if isinstance(t, torch.Tensor) and t.ndim == 4 else None


def _record(model: nn.Module, resolution: int, device: torch.device) -> _Recorded:
    model.train()
    seen = {p.untyped_storage()._cdata for p in model.parameters()}
    alive: list[torch.Tensor] = []  # holds every counted storage (and so its id) to the end
    running = [""]
    recorded = _Recorded({}, {})

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in seen:
            seen.add(storage._cdata)
            alive.append(t)
            recorded.saved.setdefault(running[-1], []).append((_area(t), storage.nbytes()))
        return t

    def enter(name: str) -> Callable[..., None]:
        return lambda module, inputs: running.append(name)

    def leave(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, out: Any) -> None:
            running.pop()
            if isinstance(out, torch.Tensor):
                recorded.outputs[name] = (_area(out), out.numel() * out.element_size())

        return hook

    handles = [h for n, m in model.named_modules() for h in (m.register_forward_pre_hook(enter(n)),
                                                              m.register_forward_hook(leave(n)))]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(torch.zeros(_BATCH, 3, resolution, resolution, device=device))
    finally:
        for h in handles:
            h.remove()
    return recorded


# -- composed from the probe


@dataclass(frozen=True)
class _ActivationTerms:
    """Per probe module: (module, side, bytes) with side None a constant, 0/1 bytes per pixel of
    its input/output area (batch 2); for saved tensors and for outputs. Plus own params/buffers."""

    saved: tuple[tuple[str, int | None, int], ...]
    outputs: tuple[tuple[str, int | None, int], ...]
    params: dict[str, int]
    buffers: dict[str, int]
    model: nn.Module  # the probe: its geometry gives the areas

    @staticmethod
    def value(terms: tuple[tuple[str, int | None, int], ...], areas: Any) -> list[tuple[str, int]]:
        """Each term's bytes where the modules' areas are ``areas`` (`module_areas`)."""
        return [(n, k if side is None else k * areas[n][side]) for n, side, k in terms]


_TERMS: dict[tuple, _ActivationTerms | None] = {}


def _composed_count(
    base: SpecBaseline, depth: float, width: float, resolution: int, num_classes: int
) -> ActivationCount | None:
    from effscale.models.cost import block_multiplicity, module_areas
    from effscale.models.specs import scale_spec

    scaled = scale_spec(base.spec, depth, width)
    terms = _terms_for(base, scaled, num_classes)
    if terms is None:
        return None
    areas = module_areas(terms.model, resolution)
    repeats = [stage.repeats for stage in scaled.stages]
    saved = sum(block_multiplicity(n, repeats) * b for n, b in terms.value(terms.saved, areas))
    largest = max((b for n, b in terms.value(terms.outputs, areas) if block_multiplicity(n, repeats)), default=0)
    params = sum(block_multiplicity(n, repeats) * k for n, k in terms.params.items())
    buffers = sum(block_multiplicity(n, repeats) * k for n, k in terms.buffers.items())
    return ActivationCount(saved // _BATCH, largest // _BATCH, params, buffers)


def _terms_for(base: SpecBaseline, scaled: Any, num_classes: int) -> _ActivationTerms | None:
    from effscale.models.cost import probe_spec

    two = probe_spec(scaled)
    key = (two.signature, num_classes)
    if key not in _TERMS:
        _TERMS[key] = _fit_terms(two, num_classes, base.min_resolution)
    return _TERMS[key]


def _fit_terms(two: Any, num_classes: int, fit: int) -> _ActivationTerms | None:
    """Read the probe's terms at ``fit`` px; keep them only if they predict a forward at 2*fit+1."""
    from effscale.models.cost import module_areas, probe_names_compose
    from effscale.models.network import ScalableNet

    # On the CPU at two tiny sizes: a training-mode forward on ``meta`` goes through Python
    # decompositions (BatchNorm's above all), several times slower than computing the probe for real.
    model = ScalableNet(two, num_classes)
    if not probe_names_compose(model):
        return None
    check = 2 * fit + 1
    with _threads(1):
        at_fit, at_check = _record(model, fit, torch.device("cpu")), _record(model, check, torch.device("cpu"))
    areas = (module_areas(model, fit), module_areas(model, check))
    saved = _pair_up(at_fit.saved, at_check.saved)
    outputs = _pair_up({n: [o] for n, o in at_fit.outputs.items()}, {n: [o] for n, o in at_check.outputs.items()})
    if saved is None or outputs is None:
        return None
    split = [_split(n, fit_t, check_t, areas) for n, fit_t, check_t in saved + outputs]
    if any(term is None for term in split):
        return None
    terms = _ActivationTerms(
        tuple(split[: len(saved)]), tuple(split[len(saved):]),  # type: ignore[arg-type]
        {n: sum(p.numel() for p in m.parameters(recurse=False)) for n, m in model.named_modules()},
        {n: sum(b.numel() * b.element_size() for b in m.buffers(recurse=False)) for n, m in model.named_modules()},
        model.eval(),
    )
    # The terms must give every tensor's bytes at the check size too, not only at the fit.
    predicted = terms.value(terms.saved, areas[1]) + terms.value(terms.outputs, areas[1])
    return terms if predicted == [(n, check_t[1]) for n, _, check_t in saved + outputs] else None


_Tensor = tuple[_Area, int]  # (area, bytes) of one recorded tensor


def _pair_up(
    fit: dict[str, list[_Tensor]], check: dict[str, list[_Tensor]]
) -> list[tuple[str, _Tensor, _Tensor]] | None:
    """The same tensors at the two sizes, module by module, in the order they were saved."""
    if fit.keys() != check.keys() or any(len(fit[n]) != len(check[n]) for n in fit):
        return None
    return [(n, a, b) for n in fit for a, b in zip(fit[n], check[n])]


def _split(name: str, at_fit: _Tensor, at_check: _Tensor, areas: tuple[Any, Any]) -> tuple[str, int | None, int] | None:
    """A tensor's bytes as a constant (the same at both sizes: SE's pooled features, BatchNorm's
    statistics) or bytes per pixel of its module's input (0) or output (1) area; None otherwise."""
    (area, nbytes), (check_area, check_bytes) = at_fit, at_check
    if nbytes == check_bytes:
        return name, None, nbytes
    for side in (0, 1):
        if (area, check_area) == (areas[0].get(name, (None, None))[side], areas[1].get(name, (None, None))[side]):
            return (name, side, nbytes // area) if area and nbytes % area == 0 else None
    return None


# ---------------------------------------------------------------------------------------------
# the CPU memory model

# Fitted to `probe_cpu_peak` on 11 runs (the module's table; worst error 5.4%): a training step holds
# the saved tensors and about one more of the largest activation (the gradient flowing back);
# evaluation, in inference mode at `eval_batch_size` (the fit ran at batch max(256, 2 x batch)), a
# block's input, its expanded output and two temporaries. The first step also leaves libraries'
# state behind (oneDNN primitives, allocator arenas): a constant.
TRAIN_SAVED_FACTOR = 1.05
TRAIN_LARGEST_FACTOR = 1.0
EVAL_LARGEST_FACTOR = 4.0
FIRST_STEP_BYTES = 125 * MiB
# A fresh process with torch and effscale's trainer imported, before any data (224 MiB measured
# with torch 2.13 CPU on Linux); a Ray worker's came to 273 MiB: Ray's client adds the rest.
BASE_PROCESS_BYTES = 225 * MiB
RAY_WORKER_BYTES = 50 * MiB


@dataclass(frozen=True)
class MemoryParts:
    """A CPU trial's peak host memory, term by term (bytes)."""

    base: int  # the process: Python, torch, effscale (and Ray's client), the first step's libraries
    data: int  # the dataset as loaded
    resized: int  # its copy at the trial's resolution (training set padded for crops)
    model: int  # weights, gradients, optimizer state, BatchNorm buffers
    train: int  # a training step's activations and the precise-BN batches kept
    evaluate: int  # an evaluation batch in inference mode
    eval_batch: int
    resize: int  # the float working memory of resizing the dataset, before training

    @property
    def step(self) -> int:
        """The largest of the three transients: they never overlap."""
        return max(self.train, self.evaluate, self.resize)

    @property
    def total(self) -> int:
        return self.base + self.data + self.resized + self.model + self.step

    def heaviest(self) -> str:
        """The term that decides the total, in words (for a refusal)."""
        named = {"the training step": self.train, f"evaluation at batch {self.eval_batch}": self.evaluate,
                 "resizing the dataset": self.resize, "the resized dataset": self.resized}
        name = max(named, key=named.__getitem__)
        return f"{name}: {named[name] / GiB:.1f} GiB"

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "step": self.step, "total": self.total}


def optimizer_slots(recipe: ProxyRecipe) -> int:
    """Tensors of parameter size the optimizer keeps: SGD a momentum buffer (none without
    momentum), RMSProp a square average and, with momentum, a momentum buffer."""
    if recipe.optimizer == "rmsprop":
        return 1 + (recipe.momentum > 0)
    return int(recipe.momentum > 0)


def cpu_trial_memory(
    count: ActivationCount, *, data: ProxyData, resolution: int, batch_size: int, recipe: ProxyRecipe,
    ray_worker: bool = True,
) -> MemoryParts:
    """Peak host memory of one CPU trial of this network, as `train_proxy` spends it."""
    c = data.channels
    batch = min(batch_size, data.num_train)
    # Resizing works on float chunks (`resize_uint8`), the training set's then the validation set's:
    # a transient before training.
    resize_peak = resize_working_bytes(max(data.num_train, data.num_val), c, tuple(data.x_train.shape[-2:]),
                                       resolution)
    image = c * resolution**2 * 4  # one float32 input
    steps_per_epoch = max(1, data.num_train // batch)
    kept = min(recipe.precise_bn_batches, steps_per_epoch) * batch * image  # precise-BN batches kept
    train = int(batch * (TRAIN_SAVED_FACTOR * count.saved_bytes + TRAIN_LARGEST_FACTOR * count.largest_bytes)) + kept
    eval_batch = eval_batch_size(batch, data.num_val)
    evaluate = int(eval_batch * (EVAL_LARGEST_FACTOR * count.largest_bytes + image))
    return MemoryParts(
        base=BASE_PROCESS_BYTES + FIRST_STEP_BYTES + (RAY_WORKER_BYTES if ray_worker else 0),
        data=data_bytes(data),
        resized=resized_bytes(data, resolution),
        model=count.params * 4 * (2 + optimizer_slots(recipe)) + count.buffer_bytes,
        train=train,
        evaluate=evaluate,
        eval_batch=eval_batch,
        resize=resize_peak,
    )


def data_bytes(data: ProxyData) -> int:
    """The dataset as loaded: uint8 images and int64 labels."""
    tensors = (data.x_train, data.y_train, data.x_val, data.y_val)
    return sum(t.numel() * t.element_size() for t in tensors)


def resized_bytes(data: ProxyData, resolution: int) -> int:
    """The dataset's copy at ``resolution`` as `train_proxy` keeps it (uint8): the training set
    padded for random crops (`crop_padding`), the validation set as is."""
    c, padded = data.channels, resolution + 2 * crop_padding(resolution)
    return data.num_train * c * padded**2 + data.num_val * c * resolution**2


# ---------------------------------------------------------------------------------------------
# measured: a CPU trial's peak RSS in a fresh process


def probe_cpu_peak(
    baseline: str, *, depth: float, width: float, resolution: int, data: str, recipe: ProxyRecipe | None = None,
    threads: int = 1, timeout: float = 900.0,
) -> dict[str, int]:
    """Peak RSS of one real `train_proxy` step (and its evaluation) in a fresh Python process.

    The child is a new interpreter (``python -m effscale.trainer.footprint``), as a Ray worker is:
    it imports torch and effscale, loads ``data`` (a `load_data` spec), builds the network and
    trains one step with ``recipe`` (batch, optimizer), then reads ``getrusage(RUSAGE_SELF)``.
    Returns the peak RSS in bytes after the imports (``base``), after loading the data (``data``)
    and at the end (``peak``). Costs seconds (tiny) to minutes (B0 at 224 px): calibration and
    tests only; plans use `cpu_trial_memory`.
    """
    recipe = (recipe or ProxyRecipe()).replace(steps=1, epochs=None)
    request = {"baseline": baseline, "depth": depth, "width": width, "resolution": resolution, "data": data,
               "recipe": recipe.as_dict(), "threads": threads}
    done = subprocess.run(
        [sys.executable, "-m", "effscale.trainer.footprint", json.dumps(request)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory probe failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_rss() -> int:
    """This process's peak resident memory in bytes.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of *this* address space.
    ``getrusage(RUSAGE_SELF).ru_maxrss`` survives ``execve`` on Linux: a child started from a
    400 MiB parent reported 400 MiB before importing anything (measured), which is the parent's.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB elsewhere


def _probe_child(request: dict[str, Any]) -> dict[str, int]:
    from effscale.trainer.data import load_data
    from effscale.trainer.proxy import train_proxy

    torch.set_num_threads(int(request["threads"]))
    readings = {"base": _peak_rss()}
    recipe = ProxyRecipe(**request["recipe"])
    loaded = load_data(request["data"], seed=recipe.seed)
    readings["data"] = _peak_rss()
    baseline = get_baseline(request["baseline"])
    model = baseline.build(request["depth"], request["width"], loaded.num_classes)
    train_proxy(model, loaded, resolution=int(request["resolution"]), recipe=recipe, device="cpu",
                min_resolution=baseline.min_resolution, threads=int(request["threads"]))
    readings["peak"] = _peak_rss()
    return readings


# ---------------------------------------------------------------------------------------------
# time: one real step, timed


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class StepTime:
    """A CPU training step's seconds as ``overhead + per_image * batch``."""

    overhead: float  # per step, whatever the batch: optimizer update, Python dispatch
    per_image: float

    def seconds(self, batch: int, *, scale: float = 1.0) -> float:
        """At ``batch``; ``scale`` multiplies the per-image part (another network's FLOPs ratio)."""
        return self.overhead + self.per_image * scale * batch

    def seconds_for(self, scale: float) -> Callable[[int], float]:
        """`seconds` of a network whose per-image work is ``scale`` times the probed one's."""
        return lambda batch: self.seconds(batch, scale=scale)


# `probe_step_time` grows its batch 4x until a step takes this long (or the trial's batch is
# reached): long enough that timer noise and the overhead are small against the per-image part.
PROBE_STEP_SECONDS = 0.1


def probe_step_time(
    baseline: str | Baseline, *, depth: float, width: float, resolution: int, num_classes: int,
    recipe: ProxyRecipe, threads: int = 1,
) -> StepTime:
    """Time real CPU training steps of the network on ``threads`` threads: at batch 1 (or
    `TIME_PROBE_BATCH` where the last maps are 1x1), then 4x larger until a step takes
    `PROBE_STEP_SECONDS` or reaches ``recipe.batch_size``, each the faster of two steps after an
    untimed warm-up step (the first also faults in fresh memory: 1.3-1.5x a later one, measured).
    The last two batches give the overhead and the per-image slope; a network slow enough at the
    first batch (a B0 at 246 px: ~0.25 s per image) is timed there only, its overhead taken as
    zero. Cached on disk by architecture, resolution, threads, optimizer and CPU model."""
    base = get_baseline(baseline)
    key = ["cpu-step", base.signature(depth, width), resolution, num_classes, recipe.batch_size, threads,
           recipe.optimizer, _cpu_name()]
    disk = isinstance(base, SpecBaseline)
    stored = _STEP_TIMES.get(key) if disk else None
    if isinstance(stored, dict):
        try:
            return StepTime(**stored)
        except TypeError:
            pass
    model = base.build(depth, width, num_classes)
    timed: list[tuple[int, float]] = []
    with _threads(threads):
        batch = 1 if resolution > base.min_resolution else TIME_PROBE_BATCH
        while True:
            timed.append((batch, _time_step(model, recipe, batch, resolution, num_classes)))
            target = recipe.batch_size or batch  # an unresolved recipe: the first batch only
            if timed[-1][1] >= PROBE_STEP_SECONDS or batch >= target:
                break
            batch = min(4 * batch, target)
    result = _fit_step_time(timed)
    if disk:
        _STEP_TIMES.put(key, asdict(result))
    return result


def _time_step(model: nn.Module, recipe: ProxyRecipe, batch: int, resolution: int, num_classes: int) -> float:
    """The faster of two timed steps after a warm-up: on a shared machine noise only adds time
    (one B0 probe read 0.41 s per image where repeats read 0.25-0.27)."""
    step = _training_step(model, recipe, batch, resolution, num_classes, torch.device("cpu"))
    step()
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def _fit_step_time(timed: list[tuple[int, float]]) -> StepTime:
    (b1, t1), (b2, t2) = timed[-2] if len(timed) > 1 else (0, 0.0), timed[-1]
    if len(timed) == 1 or t2 <= t1:
        return StepTime(0.0, t2 / b2)
    per_image = (t2 - t1) / (b2 - b1)
    return StepTime(max(0.0, t2 - per_image * b2), per_image)


def _training_step(
    model: nn.Module, recipe: ProxyRecipe, batch: int, resolution: int, num_classes: int, device: torch.device
) -> Callable[[], None]:
    """One `train_proxy` step on a random batch: channels_last, forward (bf16 autocast on CUDA),
    label-smoothed cross-entropy, backward, the recipe's optimizer."""
    from effscale.trainer.proxy import _make_optimizer

    cuda = device.type == "cuda"
    model.to(device, memory_format=torch.channels_last).train()
    opt = _make_optimizer(model, recipe)
    x = torch.randn(batch, 3, resolution, resolution, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=recipe.effective_label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize(device)

    return step


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------------
# CUDA: one real step, measured


@dataclass(frozen=True)
class CudaStep:
    peak_bytes: int  # torch.cuda.max_memory_allocated over two steps (weights, grads, momentum, activations)
    step_seconds: float  # the second step, synchronised


def probe_cuda_step(
    baseline: str | Baseline, *, depth: float, width: float, resolution: int, num_classes: int, batch: int,
    recipe: ProxyRecipe, device: str = "cuda",
) -> CudaStep:
    """Peak CUDA memory and the time of one training step at the trial's real batch, as
    `train_proxy` runs it on CUDA. Cached on disk by architecture, resolution, batch and GPU model.
    The dataset's copy on the device is not included (the caller adds it: it is known exactly)."""
    if not torch.cuda.is_available():
        raise UsageError("probe_cuda_step needs CUDA, and torch sees no GPU here; plan on the GPU machine")
    dev = torch.device(device)
    base = get_baseline(baseline)
    key = ["cuda-step", base.signature(depth, width), resolution, num_classes, batch, torch.cuda.get_device_name(dev),
           recipe.optimizer]
    stored = _CUDA_STEPS.get(key) if isinstance(base, SpecBaseline) else None
    if isinstance(stored, dict):
        return CudaStep(int(stored["peak_bytes"]), float(stored["step_seconds"]))
    model = base.build(depth, width, num_classes)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev)
    step = _training_step(model, recipe, batch, resolution, num_classes, dev)
    step()  # the first step also allocates the optimizer's state
    start = time.perf_counter()
    step()
    result = CudaStep(torch.cuda.max_memory_allocated(dev) - before, time.perf_counter() - start)
    del model, step
    torch.cuda.empty_cache()
    if isinstance(base, SpecBaseline):
        _CUDA_STEPS.put(key, asdict(result))
    return result


def cuda_data_bytes(data: ProxyData, resolution: int) -> int:
    """The dataset on the device, as `train_proxy` keeps it there (uint8: the raw set, the padded
    resized training set and the resized validation set)."""
    return data_bytes(data) + resized_bytes(data, resolution)


# ---------------------------------------------------------------------------------------------
# the fit rule


def fit_batch(
    need: Callable[[int], int], *, batch_size: int, available: int, candidate: str, where: str, flags: str,
    detail: Callable[[int], str] | None = None,
) -> int:
    """The largest batch, halving from ``batch_size`` down to `BATCH_FLOOR`, whose ``need(batch)``
    bytes fit in ``available``; else `UsageError` naming the candidate, its need and the flags.

    Halving (rather than, say, the exact largest batch that fits) keeps batch sizes and their
    linearly scaled learning rates on the powers-of-two ladder the recipe's defaults assume.
    """
    batch = batch_size
    while need(batch) > available and batch // 2 >= BATCH_FLOOR:
        batch //= 2
    if need(batch) <= available:
        return batch
    why = f" (most of it {detail(batch)})" if detail is not None else ""
    raise UsageError(
        f"candidate {candidate} needs {need(batch) / GiB:.1f} GiB per trial even at batch {batch} "
        f"(asked: {batch_size}){why} but {where} has {available / GiB:.1f} GiB; {flags}"
    )


if __name__ == "__main__":  # `probe_cpu_peak`'s child process
    print(json.dumps(_probe_child(json.loads(sys.argv[1]))))
