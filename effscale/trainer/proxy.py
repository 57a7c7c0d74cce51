"""The proxy trainer: a short, fast, deterministic training run that scores one scaled network.

Measured on this project's shared 2-core CPU box (torch 2.13 CPU, batch 128, digits at 32 px;
benchmarks/bench_trainer.py, best of 3 rounds each, both loops in the same run):
  * resnet18, 1 thread: train_proxy 371 img/s vs a plain hand-written loop 376 img/s, ratio 0.987;
  * tiny, 2 threads: 1874 vs 1857 img/s, ratio 1.009.
Quality (1 thread, seed 0, training seconds / wall seconds including data and evaluation):
  * resnet18, defaults (SGD lr 0.05), 5 epochs: val top-1 0.989 (0.983 after epoch 3), 23.0 s / 27.3 s;
  * efficientnet_b0, lr 0.1, 8 epochs: 0.947 (0.905 after epoch 4), 69.7 s / 83.6 s;
    at the default lr, 5 epochs: 0.708 -- EfficientNet-style nets want the higher peak;
  * tiny, lr 0.2, 5 epochs: 0.981, 8.1 s.

Recipe: the EfficientNet one, scaled down to a few epochs -- SGD with Nesterov momentum (or
RMSProp, EfficientNet's own choice), linear warm-up then cosine decay per step, label smoothing
0.1, and no weight decay on BatchNorm parameters and biases. Before each evaluation the BatchNorm
statistics are recomputed for the current weights ("precise BN", see `_precise_bn`): a proxy run
is too short for running averages to catch up, and without it eval accuracy lags far behind.

Speed tricks, each marked ``# speed:`` where it happens:
  * the dataset lives on the device as uint8 and is resized once per trial, not per step;
  * batches are index slices of one pre-shuffled permutation: no DataLoader, no workers, no
    per-sample Python;
  * crop + flip is one gather per batch (see `_augment.crop_flip`), normalisation one fused
    multiply-add;
  * the loss is accumulated on the device and read once per epoch (no per-step host sync);
  * on CUDA: bf16 autocast, channels_last, non_blocking copies, optional ``torch.compile``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from effscale.errors import UsageError
from effscale.models.scaling import check_resolution
from effscale.trainer._augment import crop_flip, normalizer, resize_uint8
from effscale.trainer.data import ProxyData

__all__ = [
    "OPTIMIZERS",
    "Budget",
    "ProxyResult",
    "ReportFn",
    "TrainConfig",
    "train_proxy",
]

OPTIMIZERS = ("sgd", "rmsprop")
# Peak learning rates per 256 images, scaled linearly with the batch size (Goyal et al. 2017).
# SGD's is the ImageNet 0.1 (higher peaks diverged resnet18 on digits within 5 epochs);
# RMSProp's is EfficientNet's 0.016.
_BASE_LR = {"sgd": 0.1, "rmsprop": 0.016}

ReportFn = Callable[[int, dict[str, Any]], Any]
ProgressFn = Callable[[int, int], Any]


_BUDGET_RE = re.compile(r"^\s*(\d+)\s*(e|ep|epoch|epochs|s|step|steps)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """How long a proxy run trains: ``Budget(epochs=N)`` or ``Budget(steps=N)``."""

    epochs: int | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.steps is None):
            raise UsageError("budget needs exactly one of epochs=N or steps=N, e.g. Budget(epochs=3)")
        name, value = ("epochs", self.epochs) if self.epochs is not None else ("steps", self.steps)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"budget {name}={value!r} is not a whole number; pass a positive integer")
        if value <= 0:
            raise UsageError(f"budget {name}={value} must be > 0; pass a positive integer")

    @classmethod
    def parse(cls, text: str | int | Budget) -> Budget:
        """``3`` or ``"3"`` or ``"3e"``/``"3epochs"`` -> 3 epochs; ``"200s"``/``"200steps"`` -> 200 steps."""
        if isinstance(text, Budget):
            return text
        if isinstance(text, int) and not isinstance(text, bool):
            return cls(epochs=text)
        m = _BUDGET_RE.match(str(text))
        if not m:
            raise UsageError(f"budget {text!r} not understood; pass N (epochs), Ne (epochs) or Ns (steps)")
        n, unit = int(m.group(1)), (m.group(2) or "e").lower()
        return cls(steps=n) if unit.startswith("s") else cls(epochs=n)

    def total_steps(self, steps_per_epoch: int) -> int:
        return self.steps if self.steps is not None else int(self.epochs) * steps_per_epoch  # type: ignore[operator]

    def __str__(self) -> str:
        return f"{self.epochs} epochs" if self.epochs is not None else f"{self.steps} steps"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a proxy run (everything but the model, data, resolution and budget)."""

    batch_size: int = 128
    lr: float | None = None  # None: _BASE_LR[optimizer] * batch_size / 256
    optimizer: str = "sgd"
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    weight_decay: float = 5e-5
    compile: bool = False
    precise_bn_batches: int = 4

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"optimizer={self.optimizer!r}; pass one of {', '.join(OPTIMIZERS)}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise UsageError(f"batch_size={self.batch_size!r} must be a positive integer, e.g. 128")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise UsageError(f"lr={self.lr} must be a positive number, e.g. 0.1")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UsageError(f"label_smoothing={self.label_smoothing} must be in [0, 1), e.g. 0.1")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise UsageError(f"weight_decay={self.weight_decay} must be >= 0, e.g. 5e-5")
        if not (math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0):
            raise UsageError(f"warmup_epochs={self.warmup_epochs} must be >= 0, e.g. 1")
        if not 0.0 <= self.momentum < 1.0:
            raise UsageError(f"momentum={self.momentum} must be in [0, 1), e.g. 0.9")
        if isinstance(self.precise_bn_batches, bool) or not isinstance(self.precise_bn_batches, int) \
                or self.precise_bn_batches < 0:
            raise UsageError(f"precise_bn_batches={self.precise_bn_batches!r} must be an integer >= 0, e.g. 4")

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else _BASE_LR[self.optimizer] * self.batch_size / 256


@dataclass
class ProxyResult:
    """What a proxy run measured. ``history`` has one dict per epoch (the last may be partial
    under a step budget); ``stopped_early`` is True when ``report`` asked to stop."""

    val_top1: float
    val_loss: float
    epochs: int
    steps: int
    train_seconds: float
    images_per_s: float
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    diverged: bool = False
    resolution: int = 0
    batch_size: int = 0
    seed: int = 0
    device: str = "cpu"
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        # EfficientNet's RMSProp: decay 0.9, momentum 0.9, eps 1e-3 (TF puts eps inside the sqrt;
        # 1e-3 here is the usual PyTorch stand-in).
        return torch.optim.RMSprop(groups, lr=cfg.peak_lr, alpha=0.9, momentum=cfg.momentum, eps=1e-3)
    return torch.optim.SGD(groups, lr=cfg.peak_lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)


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


def _evaluate(
    model: nn.Module, x: Tensor, y: Tensor, scale: Tensor, shift: Tensor, *, batch_size: int,
    amp: bool, channels_last: bool, num_classes: int,
) -> tuple[float, float]:
    """Top-1 and mean cross-entropy (no smoothing) over a uint8 set, batched, in eval mode."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size].float().mul_(scale).add_(shift)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(xb)
            logits = logits.float()
            _check_logits(logits, num_classes)
            yb = y[i : i + batch_size]
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
            correct += (logits.argmax(1) == yb).sum()
    n = max(1, x.shape[0])
    return float(correct) / n, float(loss_sum) / n


def _check_logits(logits: Tensor, num_classes: int) -> None:
    if logits.ndim != 2 or logits.shape[1] < num_classes:
        raise UsageError(
            f"the model outputs shape {tuple(logits.shape)} but the data has {num_classes} classes; "
            f"build it with num_classes={num_classes}"
        )


def train_proxy(
    model: nn.Module,
    data: ProxyData,
    *,
    resolution: int,
    budget: Budget | int | str,
    batch_size: int = 128,
    lr: float | None = None,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    warmup_epochs: float = 1.0,
    label_smoothing: float = 0.1,
    weight_decay: float = 5e-5,
    device: str | torch.device = "cpu",
    seed: int = 0,
    compile: bool = False,
    precise_bn_batches: int = 4,
    min_resolution: int = 1,
    threads: int | None = None,
    report: ReportFn | None = None,
    progress: ProgressFn | None = None,
) -> ProxyResult:
    """Train ``model`` (in place) on ``data`` at ``resolution`` for ``budget``; return the scores.

    ``report(epoch, metrics)`` runs after each epoch; returning True or ``"stop"`` ends the run
    cleanly (an exception propagates). ``progress(step, total_steps)`` runs after each step. On
    the CPU the same ``seed`` (and the same initial weights) gives the same result. The global
    RNG state is restored on return.
    """
    cfg = TrainConfig(
        batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum,
        warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
        weight_decay=weight_decay, compile=compile, precise_bn_batches=precise_bn_batches,
    )
    budget = Budget.parse(budget)
    resolution = check_resolution(resolution, min_resolution)
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if threads is not None:
        torch.set_num_threads(int(threads))
    cuda = device.type == "cuda"

    # speed: one host->device copy of the whole set per trial; everything after stays there.
    data = data.to(device, non_blocking=cuda)
    model.to(device)
    if cuda:
        model.to(memory_format=torch.channels_last)  # speed: tensor cores want NHWC
    forward = torch.compile(model) if cfg.compile else model

    # speed: resize the whole set once per trial (antialiased, on the device), pad once for crops.
    pad = max(1, resolution // 8)  # CIFAR's 4 px at 32, scaled with the resolution
    x_train = F.pad(resize_uint8(data.x_train, resolution), (pad, pad, pad, pad))
    x_val = resize_uint8(data.x_val, resolution)
    y_train, y_val = data.y_train, data.y_val
    scale, shift = normalizer(data.mean, data.std)

    n = data.num_train
    bs = min(cfg.batch_size, n)
    # Drop the ragged last batch: a tiny batch gives noisy BatchNorm statistics, and fixed shapes
    # let torch.compile reuse one graph. The permutation changes each epoch, so nothing is lost.
    steps_per_epoch = n // bs
    total_steps = budget.total_steps(steps_per_epoch)
    planned_epochs = math.ceil(total_steps / steps_per_epoch)
    warmup = min(round(cfg.warmup_epochs * steps_per_epoch), total_steps // 4)
    opt = _make_optimizer(model, cfg)
    eval_bs = max(256, 2 * bs)

    history: list[dict[str, Any]] = []
    step = 0
    train_seconds = 0.0
    images = 0
    stopped = diverged = False
    val_top1, val_loss = 0.0, float("nan")
    fork_devices = [device.index] if cuda else []
    with torch.random.fork_rng(devices=fork_devices):
        # Seeds the global RNG too, for dropout and stochastic depth inside the model.
        torch.manual_seed(seed)
        gen = torch.Generator(device=device).manual_seed(seed)
        for epoch in range(1, planned_epochs + 1):
            model.train()
            if cuda:
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            # speed: one permutation per epoch; batches are slices of it.
            perm = torch.randperm(n, generator=gen, device=device)
            loss_sum = torch.zeros((), device=device)
            epoch_steps = min(steps_per_epoch, total_steps - step)
            bn_batches: list[Tensor] = []
            for i in range(epoch_steps):
                idx = perm[i * bs : (i + 1) * bs]
                xb = crop_flip(x_train, idx, resolution, flip=data.allow_flip, generator=gen)
                xb = xb.float().mul_(scale).add_(shift)  # speed: one fused normalise per batch
                if cuda:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                if i >= epoch_steps - cfg.precise_bn_batches:
                    bn_batches.append(xb)  # the epoch's last batches, already augmented: no extra work
                yb = y_train[idx]
                lr_now = _lr_at(step, peak=cfg.peak_lr, warmup=warmup, total=total_steps)
                for g in opt.param_groups:
                    g["lr"] = lr_now
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                    logits = forward(xb)
                if step == 0:
                    _check_logits(logits, data.num_classes)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach()  # speed: no .item() per step, so no host sync
                step += 1
                if progress is not None:
                    progress(step, total_steps)
            if cuda:
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            images += epoch_steps * bs
            train_loss = float(loss_sum) / max(1, epoch_steps)
            _precise_bn(forward, bn_batches)
            bn_batches.clear()
            val_top1, val_loss = _evaluate(
                forward, x_val, y_val, scale, shift, batch_size=eval_bs, amp=cuda,
                channels_last=cuda, num_classes=data.num_classes,
            )
            metrics = {
                "epoch": epoch,
                "steps": step,
                "train_loss": train_loss,
                "val_top1": val_top1,
                "val_loss": val_loss,
                "lr": lr_now,
                "seconds": seconds,
                "images_per_s": epoch_steps * bs / seconds if seconds > 0 else 0.0,
            }
            history.append(metrics)
            if not math.isfinite(train_loss):
                diverged = True  # more steps cannot recover NaN weights; stop spending budget
                break
            if report is not None:
                answer = report(epoch, dict(metrics))
                if answer is True or (isinstance(answer, str) and answer.lower() == "stop"):
                    stopped = True
                    break
    model.eval()
    return ProxyResult(
        val_top1=val_top1,
        val_loss=val_loss,
        epochs=len(history),
        steps=step,
        train_seconds=train_seconds,
        images_per_s=images / train_seconds if train_seconds > 0 else 0.0,
        history=history,
        stopped_early=stopped,
        diverged=diverged,
        resolution=resolution,
        batch_size=bs,
        seed=seed,
        device=str(device),
        config={**asdict(cfg), "peak_lr": cfg.peak_lr, "budget": str(budget), "warmup_steps": warmup},
    )
