"""A CPU trial's peak host memory: modelled from an activation count, and measured to calibrate it.

The model (`cpu_trial_memory`) adds, to the worker's base footprint (Python, torch and effscale
imported), what `train_proxy` holds: the dataset and its resized copy, weights + gradients +
optimizer state, the kept precise-BN batches, and the largest of the training step, the evaluation
batch and the resize (`MemoryParts`). The step's activations come from `effscale.trainer.activations`;
the resized set, the evaluation batch and the resize chunks from the trainer's own rules
(`crop_padding`, `eval_batch_size`, `resize_working_bytes`), so the model cannot drift from them.

Its constants were fitted to the peak RSS of real one-step trials in fresh processes
(`probe_cpu_peak`: one `train_proxy` step and its evaluation on digits, SGD, one thread) on 11 runs,
then checked on 6 held out; ``benchmarks/bench_plan.py --accuracy`` reruns all 17 and prints each
one's predicted and measured peak. `ESTIMATE_ERROR` is the error that calibration allows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

import torch

from effscale.models.registry import get_baseline
from effscale.trainer._augment import crop_padding, resize_working_bytes
from effscale.trainer.activations import ActivationCount
from effscale.trainer.data import ProxyData, load_data
from effscale.trainer.proxy import eval_batch_size, train_proxy
from effscale.trainer.recipe import ProxyRecipe

MiB = 1024**2
GiB = 1024**3
# The model's allowed error against a real trial's peak RSS (within 6% where fitted, 15% held out).
ESTIMATE_ERROR = 0.15
# A training step holds the saved tensors and about one more of the largest activation (the
# gradient flowing back); evaluation, in inference mode at `eval_batch_size`, a block's input, its
# expanded output and two temporaries. The first step also leaves libraries' state behind (oneDNN
# primitives, allocator arenas): a constant.
TRAIN_SAVED_FACTOR = 1.05
TRAIN_LARGEST_FACTOR = 1.0
EVAL_LARGEST_FACTOR = 4.0
FIRST_STEP_BYTES = 125 * MiB
# A fresh process with torch and effscale's trainer imported, before any data; a Ray worker's
# client adds the rest.
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


def cuda_data_bytes(data: ProxyData, resolution: int) -> int:
    """The dataset on the device, as `train_proxy` keeps it there (uint8: the raw set, the padded
    resized training set and the resized validation set)."""
    return data_bytes(data) + resized_bytes(data, resolution)


# ---------------------------------------------------------------------------------------------
# measured: a CPU trial's peak RSS in a fresh process


def probe_cpu_peak(
    baseline: str, *, depth: float, width: float, resolution: int, data: str, recipe: ProxyRecipe | None = None,
    threads: int = 1, timeout: float = 900.0,
) -> dict[str, int]:
    """Peak RSS of one real `train_proxy` step (and its evaluation) in a fresh Python process.

    The child is a new interpreter (``python -m effscale.trainer.memory``), as a Ray worker is:
    it imports torch and effscale, loads ``data`` (a `load_data` spec), builds the network and
    trains one step with ``recipe`` (batch, optimizer), then reads its peak RSS (`_peak_rss`).
    Returns the peak RSS in bytes after the imports (``base``), after loading the data (``data``)
    and at the end (``peak``). Costs seconds (tiny) to minutes (B0 at 224 px): calibration and
    tests only; plans use `cpu_trial_memory`.
    """
    recipe = (recipe or ProxyRecipe()).replace(steps=1, epochs=None)
    request = {"baseline": baseline, "depth": depth, "width": width, "resolution": resolution, "data": data,
               "recipe": recipe.as_dict(), "threads": threads}
    done = subprocess.run(
        [sys.executable, "-m", "effscale.trainer.memory", json.dumps(request)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory probe failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_rss() -> int:
    """This process's peak resident memory in bytes.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of *this* address space.
    ``getrusage(RUSAGE_SELF).ru_maxrss`` survives ``execve`` on Linux: a child started from a
    large parent reports the parent's peak before importing anything.
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


if __name__ == "__main__":  # `probe_cpu_peak`'s child process
    print(json.dumps(_probe_child(json.loads(sys.argv[1]))))
