"""`export_member`: one member of a family, built with its initial weights and written in a format
(`effscale.export.formats`), its provenance beside it.

The member is the family's own (by name) or one built from the family's coefficients at any φ;
its initial weights follow ``seed``. Everything refusable (an unknown member, a format whose extra
is missing, a baseline the python format cannot write) is refused before anything is built.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from effscale.errors import UsageError
from effscale.export.options import ONNX_OPSET, ExportOptions


def export_member(options: ExportOptions) -> Any:
    """Write the member ``options`` names; returns `effscale.export.formats.Exported`."""
    import torch

    from effscale._version import __version__
    from effscale.export.formats import check_format, write_member
    from effscale.search.family.members import build_member

    check_format(options.format)
    family = _family(options)
    if options.phi is not None:
        family = _at_phi(family, options.phi)
    member = family.member(options.member or family.members[0].name)
    base = family.baseline_object
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{family.baseline}-{member.name}").strip("-.")
    source = _source(family, member, weights=f"{stem}.pt") if options.format == "python" else None
    torch.manual_seed(options.seed)
    model = build_member(family, member.name)
    provenance = {
        "member": member.name, "baseline": family.baseline, "stem": family.stem, "coefficients": family.coefficients,
        "phi": member.phi, "depth": member.depth, "width": member.width, "resolution": member.resolution,
        "num_classes": family.num_classes, "params": member.params, "flops": member.flops,
        "activations": member.activations, "flops_convention": family.flops_convention, "seed": options.seed,
        "effscale": __version__, "torch": torch.__version__,
        **({"onnx_opset": ONNX_OPSET} if options.format == "onnx" else {}),
        "source": base.source,
    }
    out = Path(options.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    return write_member(model, fmt=options.format, out=out, stem=stem, source=source, provenance=provenance,
                        resolution=member.resolution)


def _family(options: ExportOptions) -> Any:
    from effscale.search.family.members import Family

    if options.study is not None:
        from effscale.search.records.queries import load_family

        return load_family(options.storage, options.study)
    return Family.load(options.family)  # type: ignore[arg-type]


def _at_phi(family: Any, phi: float) -> Any:
    """``family`` holding only its member at ``phi``, built from its coefficients."""
    from effscale.models import Coefficients
    from effscale.search.family.members import emit_family

    if family.coefficients is None:
        raise UsageError(f"the {family.source} family has no coefficients to build phi={phi:g} from; "
                         "pass --member NAME (one of its members)")
    coefficients = Coefficients(**family.coefficients, allow_scale_down=True)
    built = emit_family(family.baseline_object, coefficients, phis=[phi], base_resolution=family.base_resolution,
                        num_classes=family.num_classes)
    return dataclasses.replace(family, members=built.members)


def _source(family: Any, member: Any, *, weights: str) -> str:
    """The standalone file for ``member``: its network's layout (rounding applied) and effscale's code."""
    from effscale.export.source import member_source
    from effscale.models.registry import SpecBaseline
    from effscale.models.specs import scale_spec

    base = family.baseline_object
    if not isinstance(base, SpecBaseline):
        raise UsageError(f"--format python writes baselines given as data; {family.baseline} is a user function: "
                         "pass --format onnx, pt2 or state-dict")
    spec = base.spec if member.dropout is None else dataclasses.replace(base.spec, dropout=member.dropout)
    layout = scale_spec(spec, member.depth, member.width)
    provenance = {
        "member": member.name, "baseline": family.baseline + ("" if family.stem == "standard" else f" ({family.stem} stem)"),
        "coefficients": family.coefficients, "phi": f"{member.phi:g}", "input": f"3x{member.resolution}x{member.resolution}",
        "params": f"{member.params:,}", "FLOPs": f"{member.flops:,} ({family.flops_convention})",
        "written by": "effscale export --format python",
    }
    return member_source(layout, num_classes=family.num_classes, resolution=member.resolution, provenance=provenance,
                         weights=weights)
