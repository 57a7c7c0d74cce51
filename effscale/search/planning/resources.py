"""`effscale plan`: what a search will need -- memory, concurrency, time -- before it starts.

    search_plan = plan_search(options)          # the candidates, measured; nothing written
    plan = make_plan(search_plan)               # + each network's footprint, the nodes, the time
    footprints = trial_footprints(search_plan)  # what the runner asks Ray for, per arch_id

For every distinct network a search would train (its representative; the aliases that build the
same network listed with it) the plan gives its FLOPs, params, per-trial memory (host, and GPU on
CUDA) and seconds per trial (`effscale.trainer.footprint`). From those and the nodes (this machine
for a local run: its CPUs and the memory Ray would schedule; with ``--ray-address``, ``ray.nodes()``)
follow the trials each node runs at once and a time estimate for the whole search.

The rules, each in one place: a trial that does not fit a node even alone halves its batch or is
refused (`effscale.trainer.footprint.fit_batch`); a node runs ``min(CPUs // cpus_per_trial,
memory // largest trial's request, GPUs // gpus_per_trial)`` trials at once (`concurrency`); the
search's time is its rounds -- the race's first ``min_repeats`` seeds, each further seed, the
confirmation -- each spread longest-first over the slots (`_makespan`).

Time on the CPU: one network's real training steps are timed (`probe_step_time`) -- the
representative of median FLOPs -- and every candidate's per-image time is that scaled by its
measured FLOPs. Measured for B0 at 224-291 px on digits (one thread, 2 cores; ``bench_plan.py
--time-accuracy``): scaled from the median representative, 8 networks came within -13%..+2% of
their own probes; scaled from the baseline at 224 px, +15%..+38% (wider networks do more FLOPs
per second). Probing each distinct network instead costs ~0.8 s each there (three steps at 0.25 s
per image): 29 networks would be 23 s, twice the budget of a plan. On CUDA each network's real
step is measured (`probe_cuda_step`), which is also its GPU memory.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

from effscale.errors import UsageError
from effscale.search.planning.report import regime_document, regime_warning

# Ray schedules its `memory` resource from the memory available at start less its object store
# (`DEFAULT_OBJECT_STORE_MEMORY_PROPORTION` = 0.3), so a local node offers trials 70% of it.
RAY_MEMORY_FRACTION = 0.7
# A forward pass is about a third of a training step's work (backward costs about twice it):
# evaluation and precise-BN batches are charged at this fraction of a training image.
FORWARD_FRACTION = 1 / 3
# Host memory a CUDA trial's process adds for the CUDA runtime and its kernels (not measured on
# this project's CPU-only machines; the CUDA caching allocator's device memory is probed instead).
CUDA_CONTEXT_BYTES = 1024**3
# The CPU time probe's network (the median representative, else the baseline) is no larger than
# this: a step at 1024 px would take seconds and gigabytes.
TIME_PROBE_MAX_RESOLUTION = 320
_FLAGS = "lower --base-resolution or narrow --gamma (smaller batches are tried by themselves)"


@dataclass(frozen=True)
class Node:
    """What one node offers trials: CPUs, schedulable memory (bytes), GPUs and memory per GPU."""

    name: str
    cpus: float
    memory_bytes: int
    gpus: float = 0.0
    gpu_memory_bytes: int | None = None


@dataclass(frozen=True)
class PlannedNetwork:
    """One distinct network of the search: its representative candidate and what a trial needs."""

    candidate: Any  # effscale.search.planning.candidates.Candidate (the representative)
    aliases: tuple[tuple[float, float, float], ...]
    footprint: Any  # effscale.trainer.footprint.TrialFootprint
    trial_seconds: float  # one race trial at the proxy budget
    memory_parts: dict[str, int] = field(default_factory=dict)  # CPU model, term by term

    def as_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "depth": c.depth, "width": c.width,
            "resolution": c.resolution, "arch_id": c.arch_id, "aliases": [list(a) for a in self.aliases],
            "params": c.params, "flops": c.flops, "flops_ratio": c.flops_ratio, "formula_ratio": c.formula_ratio,
            "activations": c.activations, "activations_ratio": c.activations_ratio, "latency_ms": c.latency_ms,
            "latency_ratio": c.latency_ratio, "cost": c.cost, "cost_ratio": c.cost_ratio,
            **self.footprint.as_dict(), "trial_seconds": self.trial_seconds, "memory_parts": self.memory_parts,
        }


@dataclass(frozen=True)
class Plan:
    study: str
    device: str
    networks: tuple[PlannedNetwork, ...]
    nodes: tuple[Node, ...]
    concurrency: dict[str, int]  # trials at once, per node
    slots: int  # trials at once, the whole cluster (``--max-concurrent`` applied)
    trials: tuple[int, int]  # (fewest, most): every candidate at min_repeats .. at max_repeats, + confirmation
    seconds: tuple[float, float]  # estimated wall time for those
    counts: dict[str, int]
    flops_convention: str
    gpus_per_trial: float = 0.0
    regime: Any = None  # effscale.models.regime.Regime of B0 (`effscale.search.planning.ways_out.plan_with_regime`)
    ways_out: tuple[Any, ...] = ()  # effscale.search.planning.ways_out.WayOut, when the regime is degenerate

    @property
    def warnings(self) -> list[str]:
        warning = regime_warning(self.regime, self.ways_out)
        return [warning] if warning else []

    def fit(self, recipe: Any) -> "TrialFit":
        """What every trial trains at and asks of Ray. One batch for all candidates, the smallest
        any of them fits at: a candidate trained at a halved batch (and lr) would be ranked on
        another recipe than the rest. One memory request for all, the largest network's: the
        plan's concurrency is computed from it, and (speed) Ray Tune reuses a worker process only
        for a trial with the same resource request, so per-network requests would start a fresh
        worker, ~2 s of imports and set-up, at nearly every trial."""
        batch = min(n.footprint.batch_size for n in self.networks)
        return TrialFit(
            batch_size=batch, lr=recipe.peak_lr * batch / recipe.batch_size,
            memory=max(n.footprint.memory_request_bytes for n in self.networks), gpus=self.gpus_per_trial,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "study": self.study, "device": self.device, "candidates": self.counts,
            "flops_convention": self.flops_convention,
            "networks": [n.as_dict() for n in self.networks],
            "nodes": [vars(n) for n in self.nodes], "concurrency": self.concurrency, "slots": self.slots,
            "trials": {"min": self.trials[0], "max": self.trials[1]},
            "seconds": {"min": self.seconds[0], "max": self.seconds[1]},
            "regime": self.regime_document(), "warnings": self.warnings,
        }

    def regime_document(self) -> dict[str, Any] | None:
        return regime_document(self.regime, self.ways_out)


@dataclass(frozen=True)
class TrialFit:
    """The recipe's batch and lr every trial of a search trains at (recorded on each trial), the
    memory each trial asks Ray for (so Ray never starts more on a node than fit), and the GPUs
    each asks for."""

    batch_size: int
    lr: float
    memory: int  # bytes, the same for every trial (`Plan.fit`)
    gpus: float


# ---------------------------------------------------------------------------------------------
# nodes


def local_node(*, gpu_memory_bytes: int | None = None) -> Node:
    """This machine as a local Ray would offer it to trials."""
    import os

    import psutil

    gpus, gpu_memory = _local_gpus()
    return Node("local", float(os.cpu_count() or 1), int(psutil.virtual_memory().available * RAY_MEMORY_FRACTION),
                gpus, gpu_memory_bytes if gpu_memory_bytes is not None else gpu_memory)


def _local_gpus() -> tuple[float, int | None]:
    import torch

    if not torch.cuda.is_available():
        return 0.0, None
    count = torch.cuda.device_count()
    return float(count), min(torch.cuda.get_device_properties(i).total_memory for i in range(count))


def cluster_nodes(address: str, *, connect_timeout: float) -> list[Node]:
    """The live nodes of the Ray cluster at ``address`` (joined, read, left); GPU memory from this
    machine's GPUs when it has the same kind, else unknown."""
    import ray

    from effscale.search.execution.cluster import ensure_ray, node_resources

    started = ensure_ray(address, connect_timeout=connect_timeout)
    try:
        found = node_resources()
    finally:
        if started:
            ray.shutdown()
    _, gpu_memory = _local_gpus()
    return [
        Node(f"node{i}", float(r.get("CPU", 0.0)), int(r.get("memory", 0.0)), float(r.get("GPU", 0.0)),
             gpu_memory if r.get("GPU") else None)
        for i, r in enumerate(found)
    ]


def concurrency(node: Node, *, cpus_per_trial: float, gpus_per_trial: float, memory_request: int) -> int:
    """Trials ``node`` runs at once: as many as its CPUs, its memory and its GPUs all allow."""
    limits = [math.floor(node.cpus / cpus_per_trial + 1e-9), node.memory_bytes // max(1, memory_request)]
    if gpus_per_trial > 0:
        limits.append(math.floor(node.gpus / gpus_per_trial + 1e-9))
    return max(0, int(min(limits)))


# ---------------------------------------------------------------------------------------------
# footprints


def trial_footprints(search_plan: Any, *, nodes: list[Node] | None = None) -> dict[str, Any]:
    """Per representative (by ``arch_id``): the `TrialFootprint` its trials should run with.

    For the runner: ask Ray for ``memory=footprint.memory_request_bytes`` per trial and train with
    ``footprint.recipe(plan.recipe)`` (the batch `fit_batch` settled on, lr scaled). Raises
    `UsageError` (one line) for a candidate that fits no node even at the smallest batch.
    """
    nodes = nodes if nodes is not None else plan_nodes(search_plan.options)
    return {n.candidate.arch_id: n.footprint for n in _plan_networks(search_plan, nodes)}


def plan_nodes(options: Any) -> list[Node]:
    if options.ray_address:
        return cluster_nodes(options.ray_address, connect_timeout=options.connect_timeout)
    return [local_node()]


# ``--gpus-per-trial auto`` shares a GPU among at most this many trials (1/8 of a GPU each).
MAX_TRIALS_PER_GPU = 8
GPU_MEMORY_MARGIN = 1.2  # the CUDA context and the allocator's fragmentation on top of the measured peak


def gpus_per_trial(options: Any, nodes: list[Node], *, gpu_memory_bytes: int | None = None) -> float:
    """``--gpus-per-trial`` as a number. ``auto``: none where no node has a GPU; else the share 1/k
    of a GPU (k <= 8) that still holds the largest trial's measured GPU memory with a margin, or a
    whole GPU while that is not measured (the plan measures at a whole GPU first)."""
    if options.gpus_per_trial != "auto":
        return float(options.gpus_per_trial)
    if not any(n.gpus > 0 for n in nodes):
        return 0.0
    per_gpu = min((n.gpu_memory_bytes or 0 for n in nodes if n.gpus > 0), default=0)
    if not gpu_memory_bytes or not per_gpu:
        return 1.0
    k = int(per_gpu // (gpu_memory_bytes * GPU_MEMORY_MARGIN))
    return 1.0 / max(1, min(MAX_TRIALS_PER_GPU, k))


def _plan_networks(search_plan: Any, nodes: list[Node]) -> list[PlannedNetwork]:
    reps = sorted(search_plan.candidates.representatives, key=lambda c: -c.flops)  # refuse the largest first
    gpus = gpus_per_trial(search_plan.options, nodes)
    if gpus > 0:
        import torch

        if not torch.cuda.is_available():  # a GPU cluster planned from a machine without one
            return [_unmeasured_gpu_network(search_plan, c) for c in reps]
        return [_cuda_network(search_plan, c, nodes, gpus) for c in reps]
    fitted = [_cpu_fit(search_plan, c, nodes) for c in reps]  # every refusal before the time probe runs
    step_time, probe_flops = _cpu_step_time(search_plan, reps)
    return [_cpu_network(search_plan, c, count, batch, step_time.seconds_for(c.flops / probe_flops))
            for c, count, batch in fitted]


def _cpu_step_time(search_plan: Any, reps: list[Any]) -> tuple[Any, int]:
    """One network's training step, timed (`probe_step_time`), and its FLOPs: the representative
    of median FLOPs, or the baseline when that one's resolution is over `TIME_PROBE_MAX_RESOLUTION`."""
    from effscale.models import measure_cost
    from effscale.trainer.footprint import probe_step_time

    classes = search_plan.data.num_classes
    median = sorted(reps, key=lambda c: c.flops)[len(reps) // 2]
    if median.resolution <= TIME_PROBE_MAX_RESOLUTION:
        depth, width, resolution, flops = median.depth, median.width, median.resolution, median.flops
    else:
        depth, width, resolution = 1.0, 1.0, min(search_plan.base_resolution, TIME_PROBE_MAX_RESOLUTION)
        flops = measure_cost(search_plan.baseline, resolution, num_classes=classes).flops
    step = probe_step_time(search_plan.baseline, depth=depth, width=width, resolution=resolution, num_classes=classes,
                           recipe=search_plan.recipe, threads=_threads(search_plan))
    return step, flops


def _threads(search_plan: Any) -> int:
    return max(1, int(math.floor(search_plan.options.cpus_per_trial)))


def _cpu_fit(search_plan: Any, cand: Any, nodes: list[Node]) -> tuple[Any, Any, int]:
    """(candidate, its activation count, the batch it fits at on the largest node) or `UsageError`."""
    from effscale.trainer.footprint import TrialFootprint, count_activations, cpu_trial_memory, fit_batch

    recipe, data = search_plan.recipe, search_plan.data
    count = count_activations(search_plan.baseline, depth=cand.depth, width=cand.width, resolution=cand.resolution,
                              num_classes=data.num_classes)

    def memory(batch: int) -> Any:
        return cpu_trial_memory(count, data=data, resolution=cand.resolution, batch_size=batch, recipe=recipe)

    largest = max(nodes, key=lambda n: n.memory_bytes)
    batch = fit_batch(lambda b: TrialFootprint(memory(b).total, None, 0.0, b).memory_request_bytes,
                      batch_size=recipe.batch_size, available=largest.memory_bytes, candidate=_describe(cand),
                      where=f"the largest node ({largest.name})", flags=_FLAGS, detail=lambda b: memory(b).heaviest())
    return cand, count, batch


def _cpu_network(search_plan: Any, cand: Any, count: Any, batch: int, step_seconds: Any) -> PlannedNetwork:
    from effscale.trainer.footprint import TrialFootprint, cpu_trial_memory

    recipe, data = search_plan.recipe, search_plan.data
    parts = cpu_trial_memory(count, data=data, resolution=cand.resolution, batch_size=batch, recipe=recipe)
    chosen = TrialFootprint(parts.total, None, step_seconds(min(batch, data.num_train)), batch, batch / recipe.batch_size)
    seconds = trial_seconds(chosen, data=data, budget=recipe.budget, precise_bn_batches=recipe.precise_bn_batches)
    return PlannedNetwork(cand, tuple(search_plan.candidates.aliases_of(cand.arch_id)), chosen, seconds,
                          parts.as_dict())


def _cuda_network(search_plan: Any, cand: Any, nodes: list[Node], gpus: float) -> PlannedNetwork:
    """A CUDA trial: its GPU memory and step time measured at the batch `fit_batch` settles on.

    A batch whose float32 activation count alone is over twice the GPU share is not probed (bf16
    autocast at best halves it): a plan never asks the GPU for memory it cannot have."""
    import torch

    from effscale.trainer.footprint import (
        BASE_PROCESS_BYTES, RAY_WORKER_BYTES, TrialFootprint, count_activations, cuda_data_bytes, fit_batch,
        probe_cuda_step,
    )

    recipe, data, options = search_plan.recipe, search_plan.data, search_plan.options
    share = min(n.gpu_memory_bytes or 0 for n in nodes if n.gpus > 0) * min(1.0, gpus)
    count = count_activations(search_plan.baseline, depth=cand.depth, width=cand.width, resolution=cand.resolution,
                              num_classes=data.num_classes)
    on_device = cuda_data_bytes(data, cand.resolution)
    steps: dict[int, Any] = {}

    def need(batch: int) -> int:
        if batch * count.saved_bytes > 2 * share:
            return on_device + batch * count.saved_bytes
        if batch not in steps:
            try:
                steps[batch] = probe_cuda_step(search_plan.baseline, depth=cand.depth, width=cand.width,
                                               resolution=cand.resolution, num_classes=data.num_classes,
                                               batch=batch, recipe=recipe)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                return on_device + max(int(share) + 1, batch * count.saved_bytes)
        return on_device + steps[batch].peak_bytes

    batch = fit_batch(need, batch_size=recipe.batch_size, available=int(share), candidate=_describe(cand),
                      where=f"a GPU share (--gpus-per-trial {gpus:g})", flags=_FLAGS)
    host = BASE_PROCESS_BYTES + RAY_WORKER_BYTES + CUDA_CONTEXT_BYTES + on_device
    chosen = TrialFootprint(host, need(batch), steps[batch].step_seconds, batch, batch / recipe.batch_size)
    seconds = trial_seconds(chosen, data=data, budget=recipe.budget, precise_bn_batches=recipe.precise_bn_batches)
    return PlannedNetwork(cand, tuple(search_plan.candidates.aliases_of(cand.arch_id)), chosen, seconds)


def _unmeasured_gpu_network(search_plan: Any, cand: Any) -> PlannedNetwork:
    """A CUDA trial planned without a GPU here: host memory from the model, GPU memory and time
    unknown (None and NaN) -- the runner then asks Ray for the host memory only."""
    from effscale.trainer.footprint import BASE_PROCESS_BYTES, RAY_WORKER_BYTES, TrialFootprint, data_bytes

    host = BASE_PROCESS_BYTES + RAY_WORKER_BYTES + CUDA_CONTEXT_BYTES + data_bytes(search_plan.data)
    footprint = TrialFootprint(host, None, math.nan, search_plan.recipe.batch_size)
    return PlannedNetwork(cand, tuple(search_plan.candidates.aliases_of(cand.arch_id)), footprint, math.nan)


def _describe(cand: Any) -> str:
    return f"({cand.alpha:g}, {cand.beta:g}, {cand.gamma:g}) at {cand.resolution} px"


def trial_seconds(footprint: Any, *, data: Any, budget: Any, precise_bn_batches: int) -> float:
    """One trial's seconds: its training steps, plus each epoch's precise-BN batches and
    evaluation pass at `FORWARD_FRACTION` of a training image."""
    batch = min(footprint.batch_size, data.num_train)
    per_epoch = max(1, data.num_train // batch)
    steps = budget.total_steps(per_epoch)
    epochs = math.ceil(steps / per_epoch)
    per_image = footprint.step_seconds / batch
    forward_images = epochs * (data.num_val + min(precise_bn_batches, per_epoch) * batch)
    return steps * footprint.step_seconds + forward_images * per_image * FORWARD_FRACTION


# ---------------------------------------------------------------------------------------------
# the plan


def make_plan(search_plan: Any, *, nodes: list[Node] | None = None) -> Plan:
    """The plan for ``search_plan`` (`effscale.search.driver.plan_search`) on ``nodes`` (default:
    this machine, or the ``--ray-address`` cluster). Trains nothing and writes nothing."""
    from effscale.models.cost import flops_convention

    options = search_plan.options
    nodes = nodes if nodes is not None else plan_nodes(options)
    networks = _plan_networks(search_plan, nodes)
    gpu_memory = max((n.footprint.gpu_memory_bytes or 0 for n in networks), default=0) or None
    gpus = gpus_per_trial(options, nodes, gpu_memory_bytes=gpu_memory)
    request = max(n.footprint.memory_request_bytes for n in networks)
    per_node = {
        n.name: concurrency(n, cpus_per_trial=options.cpus_per_trial, gpus_per_trial=gpus, memory_request=request)
        for n in nodes
    }
    slots = sum(per_node.values())
    if options.max_concurrent is not None:
        slots = min(slots, options.max_concurrent)
    if slots < 1:
        raise UsageError(_no_slot(nodes, cpus=options.cpus_per_trial, gpus=gpus, request=request))
    trials, seconds = _search_time(search_plan, networks, slots)
    return Plan(search_plan.study_name, "cuda" if gpus > 0 else "cpu", tuple(networks), tuple(nodes), per_node, slots,
                trials, seconds, search_plan.candidates.counts(), flops_convention(search_plan.data.num_classes), gpus)


def _no_slot(nodes: list[Node], *, cpus: float, gpus: float, request: int) -> str:
    """Why no node runs even one trial, and the flag that changes it."""
    if gpus > 0 and all(n.gpus < gpus for n in nodes):
        return (f"--gpus-per-trial {gpus:g} but no node has {gpus:g} GPUs; pass --gpus-per-trial 0 "
                "or plan for a cluster with GPUs (--ray-address)")
    if all(n.cpus < cpus for n in nodes):
        return f"--cpus-per-trial {cpus:g} but no node has {cpus:g} CPUs; lower --cpus-per-trial"
    return f"no node has the {request / 1024**3:.1f} GiB a trial needs; {_FLAGS}"


def _search_time(search_plan: Any, networks: list[PlannedNetwork], slots: int) -> tuple[tuple[int, int], tuple[float, float]]:
    """(fewest, most) trials and their wall time, round by round (a round starts when the last ends)."""
    options = search_plan.options
    race = [n.trial_seconds for n in networks]
    first = _makespan(race * options.min_repeats, slots)
    more = (options.max_repeats - options.min_repeats) * _makespan(race, slots)
    top = getattr(search_plan, "confirm_top", None)  # the driver's resolved K
    top = (options.confirm_top or 0) if top is None else top
    confirmed = min(top, len(race)) + min(top, max(0, len(race) - top)) if top > 0 else 0
    scale = _budget_ratio(options.confirm_budget, search_plan.recipe.budget) if confirmed else 0.0
    mean = sum(race) / len(race)
    confirm = _makespan([mean * scale] * confirmed * options.min_repeats, slots)
    low = len(race) * options.min_repeats + confirmed * options.min_repeats
    high = low + (options.max_repeats - options.min_repeats) * len(race)
    return (low, high), (first + confirm, first + more + confirm)


def _budget_ratio(confirm: dict[str, int], proxy: Any) -> float:
    if "epochs" in confirm and proxy.epochs is not None:
        return confirm["epochs"] / proxy.epochs
    if "steps" in confirm and proxy.steps is not None:
        return confirm["steps"] / proxy.steps
    return 3.0  # the default confirmation is three times the proxy's budget


def _makespan(durations: list[float], slots: int) -> float:
    """Longest first, each to the slot that frees first (LPT): within 4/3 of the best schedule."""
    if not durations:
        return 0.0
    ends = [0.0] * min(slots, len(durations))
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(ends, ends[0] + d)
    return max(ends)
