"""The proxy trainer: a short, fast, deterministic training run that scores one scaled network.

What it costs and scores is measured where it is rerun, not here: ``benchmarks/bench_trainer.py``
times `train_proxy` against a plain hand-written loop (images per second, both in the same run),
and ``tests/test_recipe_quality.py`` measures each baseline's top-1 on digits with its defaults.

Recipe: `effscale.trainer.recipe.ProxyRecipe` declares it (optimizer, schedule, smoothing, decay
and their defaults); this module only carries it out. Before each evaluation the BatchNorm
statistics are recomputed for the current weights ("precise BN", see `_precise_bn`): a proxy run
is too short for running averages to catch up, and without it eval accuracy lags far behind.

The run, top to bottom (`train_proxy`): `_setup` once, then per epoch `_train_epoch`,
`_precise_bn`, `_evaluate`, the ``report`` callback; `_result` at the end. Every optimizer step is
`train_step`, which the footprint probes (`effscale.trainer.steps`) call too: the memory and time
they measure are the trainer's own.

Speed tricks, each marked ``# speed:`` where it happens:
  * the dataset lives on the device as uint8 and is resized once per trial, not per step;
  * batches are index slices of one pre-shuffled permutation: no DataLoader, no workers, no
    per-sample Python;
  * crop + flip is one gather per batch (see `_augment.crop_flip`), normalisation one fused
    multiply-add;
  * losses stay on the device: summed per epoch (read once per epoch) and written into one
    preallocated trace (read once per run) -- no per-step host sync; the divergence check reads
    that trace every step on the CPU (free there) but only every 10 steps on CUDA (`_diverged`);
  * channels_last (NHWC) on every device: 2x per step for the depthwise baselines on the CPU;
  * on CUDA: bf16 autocast, non_blocking copies, optional ``torch.compile``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from effscale.errors import UsageError
from effscale.models.blocks import StochasticDepth
from effscale.models.scaling import check_resolution
from effscale.trainer._augment import crop_flip, crop_padding, normalizer, resize_uint8
from effscale.trainer.data import ProxyData
from effscale.trainer.recipe import OPTIMIZERS, Budget, ProxyRecipe, default_batch_size

__all__ = [
    "OPTIMIZERS", "Budget", "ProgressFn", "ProxyResult", "ReportFn", "eval_batch_size", "make_optimizer",
    "place_model", "train_proxy", "train_step",
]

ReportFn = Callable[[int, dict[str, Any]], Any]
ProgressFn = Callable[[int, int], Any]
_DIVERGENCE_CHECK_EVERY = 10  # CUDA only: steps between reads of the loss trace (see `_diverged`)


def eval_batch_size(train_batch: int, num_val: int) -> int:
    """The evaluation batch: twice the training batch, at most the validation set.

    Why twice: evaluation keeps no activations for backward and no gradients, only a block's
    input and output and a few temporaries, so twice the training batch still needs no more memory
    than a training step (`effscale.trainer.memory` models both). It scales with the training
    batch, so a trial that halves its batch to fit halves its evaluation too (a fixed floor of 256
    was most of a B0 trial's memory at 224 px and batch 16). The batch does not change top-1, only
    the float summation order of the mean loss.
    """
    return max(1, min(2 * train_batch, num_val))


@dataclass
class ProxyResult:
    """What a proxy run measured. ``history`` has one dict per epoch (the last may be partial
    under a step budget); ``step_losses`` the training loss of every optimizer step, so that two
    runs can be compared trace for trace; ``stopped_early`` is True when ``report`` asked to stop.
    ``diverged_at_step`` (1-based) is the first step whose loss was not finite; the run stopped
    there (on CUDA within `_DIVERGENCE_CHECK_EVERY` steps) and ``failure`` says so in one line."""

    val_top1: float
    val_loss: float
    epochs: int
    steps: int
    train_seconds: float
    images_per_s: float
    history: list[dict[str, Any]] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    stopped_early: bool = False
    diverged: bool = False
    diverged_at_step: int | None = None
    resolution: int = 0
    batch_size: int = 0
    seed: int = 0
    device: str = "cpu"
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def failure(self) -> str | None:
        """Why the run failed, as one line (a search stores it as the trial's fail reason); None if it did not."""
        if self.diverged_at_step is None:
            return None
        return f"loss diverged at step {self.diverged_at_step}; try a lower --lr"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failure": self.failure}


@dataclass
class _Run:
    """One run's state, built once by `_setup`; the epoch loop reads it and advances ``step``."""

    recipe: ProxyRecipe
    device: torch.device
    forward: nn.Module  # the model, or its torch.compile wrapper
    x_train: Tensor  # uint8, resized and padded for random crops
    y_train: Tensor
    x_val: Tensor  # uint8, resized
    y_val: Tensor
    scale: Tensor  # x_uint8 * scale + shift is the standardised image
    shift: Tensor
    resolution: int
    flip: bool
    num_classes: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    opt: torch.optim.Optimizer
    gen: torch.Generator  # data order and augmentation; dropout uses the (forked) global RNG
    step_losses: Tensor  # total_steps losses, filled on the device
    step: int = 0
    checked: int = 0  # step_losses[:checked] are known to be finite
    diverged_at: int | None = None  # 1-based step of the first non-finite loss

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def planned_epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)


def train_proxy(
    model: nn.Module,
    data: ProxyData,
    *,
    resolution: int,
    recipe: ProxyRecipe | None = None,
    device: str | torch.device = "cpu",
    min_resolution: int = 1,
    threads: int | None = None,
    report: ReportFn | None = None,
    progress: ProgressFn | None = None,
) -> ProxyResult:
    """Train ``model`` (in place) on ``data`` at ``resolution`` as ``recipe`` says; return the scores.

    ``recipe=None`` is ``ProxyRecipe()``; pass ``recipe.for_baseline(baseline)`` for the
    baseline's own defaults. The model is trained in place, and unless ``recipe.regularize`` its
    dropout and drop-path probabilities are set to 0 first, and stay 0 (see `_no_regularization`).
    ``report(epoch, metrics)`` runs after each epoch; returning True or ``"stop"`` ends the run
    cleanly (an exception propagates). ``progress(step, total_steps)`` runs after each step. A
    non-finite loss ends the run at that step (`ProxyResult.failure`). On the CPU the same
    ``recipe.seed`` (and the same initial weights) gives the same result, step loss for step loss.
    The global RNG state is restored on return.
    """
    recipe = recipe if recipe is not None else ProxyRecipe()
    if recipe.batch_size is None:  # the data-sized default (`default_batch_size`), recorded as used
        recipe = recipe.replace(batch_size=default_batch_size(data.num_train))
    resolution = check_resolution(resolution, min_resolution)
    run = _setup(model, data, recipe, resolution=resolution, device=device, threads=threads)
    history: list[dict[str, Any]] = []
    stopped = False
    with torch.random.fork_rng(devices=[run.device.index] if run.cuda else []):
        torch.manual_seed(recipe.seed)  # the global RNG too: dropout and stochastic depth in the model
        for epoch in range(1, run.planned_epochs + 1):
            steps, train_loss, lr, seconds, bn_batches = _train_epoch(run, progress)
            if run.diverged_at is None:
                _precise_bn(run.forward, bn_batches)
                val_top1, val_loss = _evaluate(run)
            else:
                # NaN weights score nothing, so they are not evaluated; 0.0 ranks the run last.
                val_top1, val_loss = 0.0, math.nan
            history.append({
                "epoch": epoch, "steps": run.step, "train_loss": train_loss,
                "val_top1": val_top1, "val_loss": val_loss, "lr": lr, "seconds": seconds,
                "images_per_s": steps * run.batch_size / seconds if seconds > 0 else 0.0,
            })
            if run.diverged_at is not None:
                break  # more steps cannot recover NaN weights; stop spending budget
            if report is not None and _says_stop(report(epoch, dict(history[-1]))):
                stopped = True
                break
    model.eval()
    return _result(run, history, stopped=stopped)


def _setup(
    model: nn.Module, data: ProxyData, recipe: ProxyRecipe, *, resolution: int,
    device: str | torch.device, threads: int | None,
) -> _Run:
    """Everything done once per run: data and model onto the device, the set resized, the
    schedule's lengths, the optimizer, the generator."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if threads is not None:
        torch.set_num_threads(int(threads))
    cuda = device.type == "cuda"

    # speed: one host->device copy of the whole set per trial; everything after stays there.
    data = data.to(device, non_blocking=cuda)
    if not recipe.regularize:
        _no_regularization(model)
    place_model(model, device)
    forward = torch.compile(model) if recipe.compile else model

    # speed: resize the whole set once per trial (antialiased, on the device), pad once for crops.
    pad = crop_padding(resolution)
    x_train = F.pad(resize_uint8(data.x_train, resolution), (pad, pad, pad, pad))
    scale, shift = normalizer(data.mean, data.std)

    batch_size = min(recipe.batch_size, data.num_train)
    # Drop the ragged last batch: a tiny batch gives noisy BatchNorm statistics, and fixed shapes
    # let torch.compile reuse one graph. The permutation changes each epoch, so nothing is lost.
    steps_per_epoch = data.num_train // batch_size
    total_steps = recipe.budget.total_steps(steps_per_epoch)
    return _Run(
        recipe=recipe, device=device, forward=forward,
        x_train=x_train, y_train=data.y_train, x_val=resize_uint8(data.x_val, resolution), y_val=data.y_val,
        scale=scale, shift=shift, resolution=resolution, flip=data.allow_flip, num_classes=data.num_classes,
        batch_size=batch_size, steps_per_epoch=steps_per_epoch, total_steps=total_steps,
        warmup_steps=min(round(recipe.warmup_epochs * steps_per_epoch), total_steps // 4),
        opt=make_optimizer(model, recipe),
        gen=torch.Generator(device=device).manual_seed(recipe.seed),
        step_losses=torch.zeros(total_steps, device=device),
    )


def _train_epoch(run: _Run, progress: ProgressFn | None) -> tuple[int, float, float, float, list[Tensor]]:
    """One pass over a fresh permutation (or what is left of the step budget).

    Returns (steps, mean train loss, last lr, training seconds, the augmented batches for
    precise BN: the epoch's last ``precise_bn_batches``, kept rather than recomputed).
    """
    recipe, bs = run.recipe, run.batch_size
    run.forward.train()
    if run.cuda:
        torch.cuda.synchronize(run.device)
    t0 = time.perf_counter()
    # speed: one permutation per epoch; batches are slices of it.
    perm = torch.randperm(run.x_train.shape[0], generator=run.gen, device=run.device)
    loss_sum = torch.zeros((), device=run.device)
    epoch_steps = min(run.steps_per_epoch, run.total_steps - run.step)
    bn_batches: list[Tensor] = []
    done = 0
    for i in range(epoch_steps):
        idx = perm[i * bs : (i + 1) * bs]
        xb = _to_input(run, crop_flip(run.x_train, idx, run.resolution, flip=run.flip, generator=run.gen))
        if i >= epoch_steps - recipe.precise_bn_batches:
            bn_batches.append(xb)
        lr = _lr_at(run.step, peak=recipe.peak_lr, warmup=run.warmup_steps, total=run.total_steps)
        for g in run.opt.param_groups:
            g["lr"] = lr
        loss = train_step(run.forward, run.opt, xb, run.y_train[idx], label_smoothing=recipe.effective_label_smoothing,
                          num_classes=run.num_classes if run.step == 0 else None)
        # speed: no .item() per step, so no host sync; both are read later, in one go.
        loss_sum += loss.detach()
        run.step_losses[run.step] = loss.detach()
        run.step += 1
        done += 1
        if progress is not None:
            progress(run.step, run.total_steps)
        if _diverged(run, end_of_epoch=done == epoch_steps):
            break
    if run.cuda:
        torch.cuda.synchronize(run.device)
    seconds = time.perf_counter() - t0
    return done, float(loss_sum) / done, lr, seconds, bn_batches


def place_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` on ``device`` in the layout every step runs it in."""
    # speed: NHWC. Tensor cores want it on CUDA, and oneDNN's CPU kernels too (2x per step for
    # the depthwise baselines on one CPU thread).
    return model.to(device, memory_format=torch.channels_last)


def train_step(
    forward: nn.Module, opt: torch.optim.Optimizer, xb: Tensor, yb: Tensor, *, label_smoothing: float,
    num_classes: int | None = None,
) -> Tensor:
    """One optimizer step, the only one `train_proxy` takes: the forward (bf16 autocast on CUDA),
    label-smoothed cross-entropy in float32, backward, the update. ``num_classes`` checks the
    logits' shape first. Returns the loss, on the device (read later: no host sync here)."""
    with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=xb.device.type == "cuda"):
        logits = forward(xb)
    if num_classes is not None:
        _check_logits(logits, num_classes)
    loss = F.cross_entropy(logits.float(), yb, label_smoothing=label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def _diverged(run: _Run, *, end_of_epoch: bool) -> bool:
    """True once a loss in the trace is not finite; ``run.diverged_at`` is then its 1-based step.

    On the CPU every step is checked, so the run stops at the very step: reading one loss there
    costs nothing. On CUDA a read waits for every queued kernel, so the trace is read only every
    `_DIVERGENCE_CHECK_EVERY` steps (and at each epoch's end) and the first bad step is found in
    it: at most that many steps more are spent, and no step pays a host sync.
    """
    if run.cuda and not end_of_epoch and run.step - run.checked < _DIVERGENCE_CHECK_EVERY:
        return False
    bad = torch.nonzero(~torch.isfinite(run.step_losses[run.checked : run.step]))
    if bad.numel():
        run.diverged_at = run.checked + int(bad[0, 0]) + 1
        return True
    run.checked = run.step
    return False


def _no_regularization(model: nn.Module) -> None:
    """Dropout and drop-path off (p = 0), in place.

    Why: they fight overfitting, which a 3-5 epoch proxy does not reach; there they only slow
    convergence and add run-to-run noise to the scores that rank candidates (efficientnet_b0 on
    digits: tests/test_recipe_quality.py). ``--regularize`` keeps them.
    """
    for m in model.modules():
        if isinstance(m, (nn.modules.dropout._DropoutNd, StochasticDepth)):
            m.p = 0.0


def _to_input(run: _Run, x_uint8: Tensor) -> Tensor:
    """A uint8 batch as the network's input."""
    xb = x_uint8.float().mul_(run.scale).add_(run.shift)  # speed: one fused normalise per batch
    return xb.contiguous(memory_format=torch.channels_last)  # speed: NHWC, as the model (`_setup`)


def _lr_at(step: int, *, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay towards zero at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


def _precise_bn(model: nn.Module, batches: list[Tensor]) -> None:
    """Recompute BatchNorm running statistics as the exact average over ``batches`` for the
    current weights ("precise BN", Wu & Johnson 2021; used by pycls for short NAS proxies).

    Why: after a few dozen steps the running averages (momentum 0.1) still mix in statistics of
    much earlier weights, and eval-mode accuracy can sit at chance while train-mode accuracy is
    50% (measured: tiny on digits, 3 epochs). Scores that lag the weights would rank networks by
    how fast their BN statistics settle, not by how good they are.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns or not batches:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # None: cumulative average over the batches seen
    model.train()
    with torch.no_grad():
        for xb in batches:
            model(xb)
    for m, momentum in zip(bns, saved):
        m.momentum = momentum


def _evaluate(run: _Run) -> tuple[float, float]:
    """Top-1 and mean cross-entropy (no smoothing) over the validation set, batched, in eval mode."""
    run.forward.eval()
    bs = eval_batch_size(run.batch_size, run.x_val.shape[0])
    correct = torch.zeros((), dtype=torch.int64, device=run.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    with torch.inference_mode():
        for i in range(0, run.x_val.shape[0], bs):
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.cuda):
                logits = run.forward(_to_input(run, run.x_val[i : i + bs]))
            logits = logits.float()
            _check_logits(logits, run.num_classes)
            yb = run.y_val[i : i + bs]
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
            correct += (logits.argmax(1) == yb).sum()
    n = max(1, run.x_val.shape[0])
    return float(correct) / n, float(loss_sum) / n


def _result(run: _Run, history: list[dict[str, Any]], *, stopped: bool) -> ProxyResult:
    train_seconds = sum(h["seconds"] for h in history)
    last = history[-1]  # there is always at least one epoch
    return ProxyResult(
        val_top1=last["val_top1"],
        val_loss=last["val_loss"],
        epochs=len(history),
        steps=run.step,
        train_seconds=train_seconds,
        images_per_s=run.step * run.batch_size / train_seconds if train_seconds > 0 else 0.0,
        history=history,
        step_losses=run.step_losses[: run.step].tolist(),  # the run's one read of the trace
        stopped_early=stopped,
        diverged=run.diverged_at is not None,
        diverged_at_step=run.diverged_at,
        resolution=run.resolution,
        batch_size=run.batch_size,
        seed=run.recipe.seed,
        device=str(run.device),
        config={**run.recipe.resolved(), "warmup_steps": run.warmup_steps},
    )


def _says_stop(answer: Any) -> bool:
    """``report``'s answer: True or ``"stop"`` (any case) ends the run."""
    return answer is True or (isinstance(answer, str) and answer.lower() == "stop")


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """EfficientNet/timm convention: decay conv and linear weights only; BatchNorm scales and
    all biases (every parameter with fewer than 2 dims) are left alone."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, recipe: ProxyRecipe) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``model``'s parameters (decay groups: `_param_groups`)."""
    groups = _param_groups(model, recipe.effective_weight_decay)
    if recipe.optimizer == "rmsprop":
        # EfficientNet's RMSProp: decay 0.9, momentum 0.9, eps 1e-3 (TF puts eps inside the sqrt;
        # 1e-3 here is the usual PyTorch stand-in).
        return torch.optim.RMSprop(groups, lr=recipe.peak_lr, alpha=0.9, momentum=recipe.momentum, eps=1e-3)
    return torch.optim.SGD(groups, lr=recipe.peak_lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0)


def _check_logits(logits: Tensor, num_classes: int) -> None:
    if logits.ndim != 2 or logits.shape[1] < num_classes:
        raise UsageError(
            f"the model outputs shape {tuple(logits.shape)} but the data has {num_classes} classes; "
            f"build it with num_classes={num_classes}"
        )
