"""Write one family member in a format its user's stack reads, and check it reads back the same.

    python:      MEMBER.py (plain PyTorch, `effscale.export.source`) + MEMBER.pt (its initial weights)
    onnx:        MEMBER.onnx through PyTorch's exporter at `ONNX_OPSET`, checked by the ONNX checker
                 and run by ONNX Runtime on a fixed input against the PyTorch module
    pt2:         MEMBER.pt2 from `torch.export`, reloaded with `torch.export.load` and compared
    state-dict:  MEMBER.pt, the weights alone

Every format is written beside MEMBER.FORMAT.json, the member's provenance (baseline, stem, coefficients,
φ, input size, measured params and FLOPs, effscale's version, the format and the check it passed).
Files are written under temporary names and renamed into place only once the check passed, so a
failed export leaves nothing half-written. The ONNX tools are the optional extra ``export``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from effscale.errors import UsageError
from effscale.export.options import FORMATS, ONNX_OPSET

# Outputs of an export against the PyTorch module on the same fixed input, relative to the largest
# |logit|: a freshly initialised EfficientNet or MobileNet gives logits of order 1e-14..1e-9 (a
# ResNet's are of order one), where any absolute tolerance would pass a wrong graph. Another runtime's
# float32 kernels reorder sums, so exact equality is not expected; 1e-4 of the largest logit is far
# below any ranking difference.
RTOL = 1e-4
_EXTRA = "pip install 'effscale[export]'"


@dataclass(frozen=True)
class Exported:
    """What an export wrote and how it was checked."""

    format: str
    files: tuple[Path, ...]
    max_abs_diff: float | None  # against the PyTorch module on the fixed input (None: not run)
    relative_diff: float | None  # max_abs_diff / the largest |logit| (`RTOL`)
    provenance: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "files": [str(f) for f in self.files], "max_abs_diff": self.max_abs_diff,
                "relative_diff": self.relative_diff, "tolerance": RTOL, "provenance": self.provenance}


def relative_diff(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """``(max |output - reference|, that over max |reference|)``; all-zero logits compare exactly."""
    diff = float((output - reference).abs().max())
    scale = float(reference.abs().max())
    return diff, diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}; pass one of them")
    if fmt == "onnx":
        for module in ("onnx", "onnxscript", "onnxruntime"):
            try:
                __import__(module)
            except ImportError:
                raise UsageError(f"--format onnx needs {module}, which is not installed; {_EXTRA}") from None
    return fmt


def fixed_input(resolution: int, *, seed: int = 0) -> torch.Tensor:
    """The input every check runs: reproducible, not all zeros (zeros would hide a wrong bias)."""
    return torch.randn(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


def write_member(model: torch.nn.Module, *, fmt: str, out: Path, stem: str, source: str | None,
                 provenance: dict[str, Any], resolution: int) -> Exported:
    """Write ``model`` (eval mode) as ``fmt`` into directory ``out`` under the file stem ``stem``."""
    fmt = check_format(fmt)
    model = model.eval()
    x = fixed_input(resolution)
    with torch.no_grad():
        reference = model(x)
    writers = {"python": _python, "onnx": _onnx, "pt2": _pt2, "state-dict": _state_dict}
    with _staging(out, stem) as stage:
        output = writers[fmt](model, stage, x=x, source=source)
        diff, relative = relative_diff(output, reference) if output is not None else (None, None)
        if relative is not None and not relative <= RTOL:
            raise UsageError(f"the {fmt} export of {stem} differs from the PyTorch module by {diff:.2e}, "
                             f"{relative:.1e} of its largest logit (over {RTOL:g}), on the fixed input; "
                             "nothing was written")
        record = {**provenance, "format": fmt, "check": _check_text(fmt, diff, relative, reference),
                  "files": sorted(stage.names)}
        stage.write_text(f"{stem}.{fmt}.json", json.dumps(record, indent=2) + "\n")
    return Exported(fmt, tuple(out / name for name in sorted(stage.names)), diff, relative, record)


def _check_text(fmt: str, diff: float | None, relative: float | None, reference: torch.Tensor) -> str:
    if fmt == "state-dict":
        return "weights only: load_state_dict into the family member's network (effscale.build_member)"
    what = {"python": "the exported module with these weights", "onnx": "ONNX Runtime (after onnx.checker)",
            "pt2": "torch.export.load(...).module()"}[fmt]
    return (f"{what} matches the PyTorch module within {RTOL:g} of the largest |logit| on a fixed input: "
            f"max |diff| {diff:.2e} against a largest |logit| of {float(reference.abs().max()):.2e} "
            f"(relative {relative:.1e})")


class _Stage:
    """Files written under temporary names in ``out``, renamed into place together at the end."""

    def __init__(self, out: Path, stem: str) -> None:
        self.out, self.stem, self.tag = out, stem, uuid.uuid4().hex[:8]
        self.names: set[str] = set()

    def path(self, name: str) -> Path:
        self.names.add(name)
        return self.out / f".{name}.{self.tag}.tmp"

    def write_text(self, name: str, text: str) -> None:
        self.path(name).write_text(text)


@contextlib.contextmanager
def _staging(out: Path, stem: str) -> Iterator[_Stage]:
    stage = _Stage(out, stem)
    try:
        yield stage
        for name in stage.names:
            os.replace(stage.path(name), out / name)
    finally:
        for name in stage.names:
            with contextlib.suppress(OSError):
                stage.path(name).unlink(missing_ok=True)


def _python(model: torch.nn.Module, stage: _Stage, *, x: torch.Tensor, source: str | None) -> torch.Tensor:
    """MEMBER.py and MEMBER.pt; checked by importing the written file and loading the weights."""
    import importlib.machinery
    import importlib.util
    import sys

    code_path, weights_path = stage.path(f"{stage.stem}.py"), stage.path(f"{stage.stem}.pt")
    code_path.write_text(source or "")
    torch.save(model.state_dict(), weights_path)
    name = f"_effscale_export_{stage.tag}"
    # The staged file ends in .tmp until it passes: name its loader, which the suffix would not choose.
    spec = importlib.util.spec_from_file_location(name, code_path,
                                                  loader=importlib.machinery.SourceFileLoader(name, str(code_path)))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module  # dataclasses resolve their module while the file runs
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        rebuilt = module.build().eval()
        rebuilt.load_state_dict(torch.load(weights_path, weights_only=True))
        with torch.no_grad():
            return rebuilt(x)
    finally:
        sys.modules.pop(name, None)


def _onnx(model: torch.nn.Module, stage: _Stage, *, x: torch.Tensor, source: str | None) -> torch.Tensor:
    import onnx
    import onnxruntime

    path = stage.path(f"{stage.stem}.onnx")
    with _quiet():
        # external_data=False: the weights inside the one file (protobuf's 2 GB covers B7), so that the
        # file renamed into place does not point at a data file under its temporary name.
        torch.onnx.export(model, (x,), str(path), opset_version=ONNX_OPSET, dynamo=True, input_names=["image"],
                          output_names=["logits"], verbose=False, external_data=False)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": x.numpy()})
    return torch.from_numpy(out)


def _pt2(model: torch.nn.Module, stage: _Stage, *, x: torch.Tensor, source: str | None) -> torch.Tensor:
    path = stage.path(f"{stage.stem}.pt2")
    with _quiet():
        torch.export.save(torch.export.export(model, (x,)), str(path))
        reloaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        return reloaded(x)


def _state_dict(model: torch.nn.Module, stage: _Stage, *, x: torch.Tensor, source: str | None) -> None:
    torch.save(model.state_dict(), stage.path(f"{stage.stem}.pt"))
    return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters log every pass and warn about optional packages (torchvision's ops); none of
    it is about this network, and a command's output is one document."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
