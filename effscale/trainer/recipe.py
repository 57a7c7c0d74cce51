"""The proxy recipe: how a short training run scores a network, declared once.

`ProxyRecipe` is the one place the proxy-training settings live, with their defaults and checks.
`effscale train`, `effscale search` and ``POST /api/searches`` derive their options from its
fields (see `effscale._settings`), `train_proxy` takes it, and every search trial stores it.

Recipe (EfficientNet's, scaled down to a few epochs): SGD with Nesterov momentum (or RMSProp,
EfficientNet's own choice), linear warm-up then cosine decay per step, label smoothing, and no
weight decay on BatchNorm parameters and biases. ``None`` means "the default for this network":
`ProxyRecipe.for_baseline` fills the learning rate, weight decay and label smoothing from the
baseline's own measured defaults (`effscale.models.ProxyDefaults`, on its `BaselineSpec`), or the
generic ones below for a baseline without (user functions); a value the user gave always wins. The
peak learning rate is given per 256 images and scaled linearly with the batch size (Goyal et al.
2017). The baseline's dropout and drop-path are off unless ``regularize`` (see `train_proxy`).

No torch here: the CLI reads this module to build ``--help``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from effscale._settings import check_settings, number, setting, whole
from effscale.errors import UsageError

if TYPE_CHECKING:  # the models bring torch; at run time a baseline is only read, never imported
    from effscale.models.registry import Baseline

OPTIMIZERS = ("sgd", "rmsprop")
DEFAULT_EPOCHS = 3
# The default batch: 128, but a few-epoch proxy needs steps more than it needs big batches. On
# digits (1,437 training images) 128 leaves 11 steps an epoch and B0's 5-epoch top-1 swings from
# 0.875 to 0.955 with the seed; at 64 (22 steps) it stays within 0.922-0.961 over seeds 1-5.
DEFAULT_BATCH_SIZE = 128
MIN_STEPS_PER_EPOCH = 20
SMALLEST_DEFAULT_BATCH = 32


def default_batch_size(num_train: int | None) -> int:
    """`DEFAULT_BATCH_SIZE`, halved while an epoch of ``num_train`` images would have fewer than
    `MIN_STEPS_PER_EPOCH` steps, down to `SMALLEST_DEFAULT_BATCH`."""
    batch = DEFAULT_BATCH_SIZE
    while num_train is not None and batch > SMALLEST_DEFAULT_BATCH and num_train // batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return batch
# The generic recipe, for baselines without their own `ProxyDefaults` (user functions). Peak
# learning rates per 256 images: SGD's is the ImageNet 0.1 (higher peaks diverged resnet18 on digits
# within 5 epochs); RMSProp's is EfficientNet's 0.016.
BASE_LR = {"sgd": 0.1, "rmsprop": 0.016}
DEFAULT_WEIGHT_DECAY = 5e-5
DEFAULT_LABEL_SMOOTHING = 0.1

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
    def parse(cls, text: "str | int | Budget") -> "Budget":
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

    def as_dict(self) -> dict[str, int]:
        return {"epochs": self.epochs} if self.epochs is not None else {"steps": self.steps}  # type: ignore[dict-item]

    def __str__(self) -> str:
        return f"{self.epochs} epochs" if self.epochs is not None else f"{self.steps} steps"


@dataclass(frozen=True)
class ProxyRecipe:
    """Everything a proxy run needs besides the network, the data, the resolution and the device."""

    epochs: int | None = setting(
        None, kind=int, check=whole(1, example=3), metavar="N",
        help=f"training epochs per run (default {DEFAULT_EPOCHS}; or --steps)",
    )
    steps: int | None = setting(None, kind=int, check=whole(1, example=200), metavar="N", help="or optimizer steps per run")
    batch_size: int | None = setting(
        None, kind=int, check=whole(1, example=128),
        help=f"images per step (default {DEFAULT_BATCH_SIZE}, halved while an epoch has fewer than "
             f"{MIN_STEPS_PER_EPOCH} steps, down to {SMALLEST_DEFAULT_BATCH})",
    )
    lr: float | None = setting(
        None, kind=float, check=number(0.0, above=True, example=0.1),
        help="peak learning rate (default: per 256 images, scaled with the batch size)",
    )
    optimizer: str = setting("sgd", choices=OPTIMIZERS, help="sgd (Nesterov) or rmsprop (default sgd)")
    weight_decay: float | None = setting(
        None, kind=float, check=number(0.0, example=DEFAULT_WEIGHT_DECAY),
        help=f"on conv and linear weights only (default {DEFAULT_WEIGHT_DECAY:g})",
    )
    label_smoothing: float | None = setting(
        None, kind=float, check=number(0.0, below=1.0, example=DEFAULT_LABEL_SMOOTHING),
        help=f"label smoothing in [0, 1) (default {DEFAULT_LABEL_SMOOTHING:g})",
    )
    regularize: bool = setting(
        False, kind=bool,
        help="keep the baseline's dropout and drop-path (off by default: a short proxy does not overfit)",
    )
    warmup_epochs: float = setting(1.0, kind=float, check=number(0.0, example=1), help="linear warm-up, in epochs (default 1)")
    momentum: float = setting(0.9, kind=float, check=number(0.0, below=1.0, example=0.9), help="momentum (default 0.9)")
    precise_bn_batches: int = setting(
        4, kind=int, check=whole(0, example=4), help="batches that re-estimate BatchNorm statistics before each evaluation (default 4)",
    )
    seed: int = setting(0, kind=int, check=whole(0, example=0), help="seed for weights, data order and augmentation (default 0)")
    compile: bool = setting(False, kind=bool, help="torch.compile the model (useful on CUDA)")

    def __post_init__(self) -> None:
        check_settings(self)
        if self.epochs is not None and self.steps is not None:
            raise UsageError(f"pass either --epochs {self.epochs} or --steps {self.steps}, not both")

    @property
    def budget(self) -> Budget:
        return Budget(steps=self.steps) if self.steps is not None else Budget(epochs=self.epochs or DEFAULT_EPOCHS)

    def for_baseline(self, baseline: "Baseline", *, num_train: int | None = None) -> "ProxyRecipe":
        """This recipe with its unset (``None``) batch size (`default_batch_size` for ``num_train``
        images), lr, weight decay and label smoothing filled from ``baseline.proxy_defaults``, or
        from the generic defaults when it has none (user baselines). A value already set is kept:
        a user's ``--lr`` overrides the baseline's."""
        own = baseline.proxy_defaults
        recipe = self if self.batch_size is not None else self.replace(batch_size=default_batch_size(num_train))
        fill: dict[str, float] = {}
        if self.lr is None:
            # The per-baseline peak was tuned for SGD; RMSProp keeps its generic one.
            per_256 = own.sgd_lr_per_256 if own is not None and self.optimizer == "sgd" else BASE_LR[self.optimizer]
            fill["lr"] = recipe._scaled(per_256)
        if self.weight_decay is None:
            fill["weight_decay"] = own.weight_decay if own is not None else DEFAULT_WEIGHT_DECAY
        if self.label_smoothing is None:
            fill["label_smoothing"] = own.label_smoothing if own is not None else DEFAULT_LABEL_SMOOTHING
        return recipe.replace(**fill)

    def _scaled(self, lr_per_256: float) -> float:
        """A peak given per 256 images at this batch size (the linear scaling rule)."""
        return lr_per_256 * (self.batch_size or DEFAULT_BATCH_SIZE) / 256

    @property
    def peak_lr(self) -> float:
        """The peak learning rate; an unresolved recipe (no `for_baseline`) uses the generic one."""
        return self.lr if self.lr is not None else self._scaled(BASE_LR[self.optimizer])

    @property
    def effective_weight_decay(self) -> float:
        return DEFAULT_WEIGHT_DECAY if self.weight_decay is None else self.weight_decay

    @property
    def effective_label_smoothing(self) -> float:
        return DEFAULT_LABEL_SMOOTHING if self.label_smoothing is None else self.label_smoothing

    def replace(self, **changes: Any) -> "ProxyRecipe":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The recipe as given (``None`` = default), as stored with a search and its trials."""
        return dataclasses.asdict(self)

    def resolved(self) -> dict[str, Any]:
        """The values a run actually uses (defaults filled in), as a trial and ``train --json`` report them."""
        return {
            **self.as_dict(),
            "budget": str(self.budget),
            "peak_lr": self.peak_lr,
            "weight_decay": self.effective_weight_decay,
            "label_smoothing": self.effective_label_smoothing,
        }
