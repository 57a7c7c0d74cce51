"""`TrainOptions`: one proxy training (`effscale train`), declared once (see `effscale._settings`).

How the network trains is the recipe's (`ProxyRecipe`); this says which network, on which data, at
which size and on which device. The data sources' grammar is named here for every command that
takes ``--data``. No torch at import: the CLI reads this module to build ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effscale._settings import check_settings, setting
from effscale.errors import UsageError
from effscale.models.options import baseline_setting, stem_setting
from effscale.models.scaling import ScaleFactors

DATA_HELP = "digits | synthetic[:classes=N,size=S,n=K] | folder:PATH | cifar:PATH | npz:PATH"


def check_data(value: Any, name: str) -> str:
    """A data source's grammar (`effscale.trainer.data.check_data_spec`), read nothing yet."""
    from effscale.trainer.data import check_data_spec

    if not isinstance(value, str):
        raise UsageError(f"{name} {value!r} is not a data source; pass {DATA_HELP}")
    return check_data_spec(value)


def check_device(value: Any, name: str) -> str:
    """cpu, cuda or cuda:N, on a machine that has it."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise UsageError(f"{name} {value!r} is not a device; pass cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"{name} {value!r}: effscale trains on cpu or cuda; pass one of them")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{name} {value!r} but this machine has no CUDA device; pass {name} cpu")
    return str(device)


@dataclass(frozen=True)
class TrainOptions:
    """One scaled network, its data, its input size and its device."""

    baseline: str = baseline_setting()
    stem: str = stem_setting()
    data: str = setting(None, required=True, check=check_data, metavar="SPEC", help=DATA_HELP)
    depth: float = setting(1.0, kind=float, help="depth multiplier d (default 1)")
    width: float = setting(1.0, kind=float, help="width multiplier w (default 1)")
    resolution: int | None = setting(
        None, kind=int, metavar="R",
        help="input size (default: the data's, within the network's total stride and base resolution)",
    )
    device: str | None = setting(None, check=check_device, metavar="DEVICE", help="cpu or cuda[:N] (default: cuda if available)")

    def __post_init__(self) -> None:
        check_settings(self)
        ScaleFactors(self.depth, self.width, 1.0)

    @property
    def resolved_device(self) -> str:
        """``--device``, else CUDA when this machine has it, else the CPU."""
        if self.device is not None:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
