"""Export endpoint: a finished search's family member as a zip in one of `effscale export`'s formats.

Behind the same token as launching a search: an export builds and traces a network (seconds of
CPU for the large members), and its weights are the server's to hand out. The files are those
`effscale export --study NAME --member M --format F` writes (the member, its provenance sidecar and,
for python, its weights), each checked before it is zipped; nothing is kept on the server.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from enum import Enum
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from effscale.errors import UsageError
from effscale.export.options import FORMATS, ExportOptions
from effscale.service.deps import ServiceState, StudyData, get_state, load_study, not_found, require_token
from effscale.service.schemas import Problem

router = APIRouter(prefix="/api/studies", tags=["export"])

ExportFormat = Enum("ExportFormat", {f.replace("-", "_"): f for f in FORMATS}, type=str)  # type: ignore[misc]


def export_url(study_url: str, member: str, fmt: str) -> str:
    """Where a member's export is downloaded (the dashboard's links, the family's ``exports``)."""
    return f"{study_url}/family/{member}/export/{fmt}"


@router.get(
    "/{study_name}/family/{member}/export/{fmt}",
    dependencies=[Depends(require_token)],
    responses={
        200: {"content": {"application/zip": {}}, "description": "BASELINE-MEMBER.FORMAT.zip"},
        401: {"model": Problem, "description": "missing or wrong token"},
        404: {"model": Problem, "description": "no such study, family or member"},
        501: {"model": Problem, "description": "the server lacks the extra this format needs"},
    },
    summary="Export a family member",
)
def export_family_member(
    member: str,
    fmt: ExportFormat,
    data: StudyData = Depends(load_study),
    state: ServiceState = Depends(get_state),
) -> FileResponse:
    """The member (B0..B7, or any name the family lists) in `fmt`: ``python`` (a standalone
    PyTorch file and its initial weights), ``onnx`` (checked in ONNX Runtime), ``pt2``
    (`torch.export`) or ``state-dict``, with its provenance beside it, as one zip."""
    family = state.store().load_family(data.name)
    if family is None:
        raise not_found(f"study {data.name!r} has no family yet: it is emitted when the search completes "
                        f"(status {data.status})")
    names = [m["name"] for m in family.get("members", [])]
    if member not in names:
        raise not_found(f"study {data.name!r}'s family has no member {member!r}; it has {', '.join(names)}")
    _check_extra(fmt.value)
    workdir = Path(tempfile.mkdtemp(prefix="effscale-export-"))
    try:
        archive = _export_zip(state, data.name, member, fmt.value, workdir, baseline=str(family.get("baseline")))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return FileResponse(archive, media_type="application/zip", filename=archive.name,
                        background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True))


def _check_extra(fmt: str) -> None:
    from effscale.export.formats import check_format

    try:
        check_format(fmt)
    except UsageError as exc:  # the one line names the extra: the server's to install
        raise HTTPException(status_code=status.HTTP_501_NOT_IMPLEMENTED, detail=str(exc)) from None


def _export_zip(state: ServiceState, study: str, member: str, fmt: str, workdir: Path, *, baseline: str) -> Path:
    """``effscale export``'s files for the member, zipped in ``workdir`` as BASELINE-MEMBER.FORMAT.zip."""
    from effscale.export.member import export_member

    options = ExportOptions(study=study, storage=state.storage_url, member=member, format=fmt, out=str(workdir / "out"))
    exported: Any = export_member(options)
    archive = workdir / (re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{baseline}-{member}").strip("-.") + f".{fmt}.zip")
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in sorted(exported.files):
            z.write(path, arcname=Path(path).name)
    return archive
