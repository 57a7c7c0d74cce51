"""`export`: carry a family member away as standalone PyTorch, ONNX, torch.export or weights."""

from __future__ import annotations

import argparse

from effscale.cli.flags import options
from effscale.cli.output import emit_json


def export_settings() -> tuple[type, ...]:
    from effscale.export.options import ExportOptions

    return (ExportOptions,)


def cmd_export(args: argparse.Namespace) -> int:
    from effscale.export.member import export_member
    from effscale.export.options import ExportOptions

    exported = export_member(options(args, ExportOptions))
    if args.json:
        emit_json(exported.as_dict())
        return 0
    record = exported.provenance
    print(f"{record['baseline']} {record['member']} (phi {record['phi']:g}, {record['resolution']} px, "
          f"{record['params']:,} params, {record['flops']:,} FLOPs) as {exported.format}: "
          + ", ".join(str(f) for f in exported.files))
    print(f"check: {record['check']}")
    return 0
