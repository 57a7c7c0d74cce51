"""The costs a network can be measured in, named once.

``flops`` is the paper's cost (fvcore's FLOPs); ``activations`` is Dollár, Singh and Girshick's
(2021): fvcore's count of every convolution's and linear layer's output, which tracks runtime on
accelerators more closely than FLOPs; ``latency`` is what a deployment pays, timed on a named
device (`effscale.models.latency`). Every command that takes ``--cost`` or a measured
``--constraint`` reads this list; no torch here, so ``--help`` reads it cheaply.
"""

from __future__ import annotations

from typing import Any

from effscale.errors import UsageError

COSTS = ("flops", "activations", "latency")
LABELS = {"flops": "FLOPs", "activations": "activations", "latency": "latency"}
DEFAULT_COST = "flops"


def check_cost(value: Any, flag: str = "--cost") -> str:
    if value not in COSTS:
        raise UsageError(f"{flag} {value!r} is not one of {', '.join(COSTS)}; pass one of them")
    return value
