"""`ExportOptions`: which member of which family to write, in which format, where (see
`effscale._settings`). No torch here: the CLI reads this module to build ``--help``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effscale._settings import check_settings, number, setting, text, whole
from effscale.errors import UsageError
from effscale.storage.url import storage_setting

FORMATS = ("python", "onnx", "pt2", "state-dict")
ONNX_OPSET = 18  # the opset PyTorch's exporter writes; ONNX Runtime 1.16+ runs it


def _directory(value: Any, name: str) -> str:
    """A directory to write into: it may not exist yet, but neither it nor a parent may be a file."""
    from pathlib import Path

    value = text(max_length=4096, what="a directory")(value, name)
    target = Path(value).expanduser()
    for path in (target, *target.parents):
        if path.exists():
            if not path.is_dir():
                raise UsageError(f"{name} {value}: {path} is a file, not a directory; pass a directory to write into")
            break
    return value


@dataclass(frozen=True)
class ExportOptions:
    """One family member to carry away: from a family file or a stored search, by name or by φ."""

    family: str | None = setting(None, positional=True, check=text(max_length=4096, what="a family file"),
                                 help="a family JSON file (effscale family --out, search's family-STUDY.json); "
                                      "or --study NAME")
    study: str | None = setting(None, check=text(max_length=512, what="a study name"), metavar="NAME",
                                help="the family a finished search emitted, instead of a file")
    storage: str | None = storage_setting(what="with --study: the database of the search")
    member: str | None = setting(None, check=text(max_length=64, what="a member name"), metavar="NAME",
                                 help="the member to export, e.g. B3 or phi-1 (see the family's table)")
    phi: float | None = setting(None, kind=float, check=number(-20.0, example=0.5), metavar="PHI",
                                help="instead of --member: the member at this phi, built from the family's "
                                     "coefficients (negative and fractional too)")
    format: str = setting("python", choices=FORMATS,
                          help="python: a standalone PyTorch file and its weights (default); onnx: opset "
                               f"{ONNX_OPSET}, checked with ONNX Runtime; pt2: torch.export; state-dict: the weights")
    out: str = setting("export", check=_directory, metavar="DIR", help="the directory to write into (default export/)")
    seed: int = setting(0, kind=int, check=whole(0, example=0), help="seed of the initial weights (default 0)")

    def __post_init__(self) -> None:
        check_settings(self)
        if (self.family is None) == (self.study is None):
            raise UsageError("export needs a family file or --study NAME (one of them); e.g. "
                             "effscale export family-demo.json --member B1")
        if (self.member is None) == (self.phi is None):
            raise UsageError("export needs --member NAME or --phi PHI (one of them); e.g. --member B3")
