"""Pydantic models of the REST API: the search request (validated like the CLI) and the responses.

`SearchConfig` accepts the options of ``effscale search`` (same names, ``-`` as ``_``) and turns
them into that command's argv with `SearchConfig.to_argv`; anything the CLI would refuse is a 422
here, with a message naming the field.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Kept in step with effscale.trainer.data.SOURCES (checked by tests/test_service_api.py); not
# imported, so that the service does not load torch to validate a request.
DATA_SOURCES: tuple[str, ...] = ("digits", "synthetic", "folder", "cifar", "npz")
STUDY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,119}$"
BASELINE_PATTERN = (
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_]*)?$"
)
MAX_GRID_POINTS = 1000
_NUMBER = r"[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"

TrialStateName = Literal["complete", "pruned", "fail", "running", "waiting"]
TrialSort = Literal["value", "-value", "number", "-number", "flops", "-flops"]


def parse_grid(text: str, *, name: str) -> list[float]:
    """The values of a grid ``start:stop:step`` (inclusive) or ``v1,v2,...``; `ValueError` if bad."""
    text = text.strip()
    if not text:
        raise ValueError(f"{name} grid is empty: use start:stop:step (e.g. 1.0:1.4:0.1) or a comma list")
    if ":" in text:
        parts = [p.strip() for p in text.split(":")]
        if len(parts) != 3 or not all(re.fullmatch(_NUMBER, p) for p in parts):
            raise ValueError(
                f"{name} grid {text!r} is not start:stop:step with three positive numbers "
                "(e.g. 1.0:1.4:0.1)"
            )
        start, stop, step = (float(p) for p in parts)
        if not all(math.isfinite(v) for v in (start, stop, step)):
            raise ValueError(f"{name} grid {text!r} has a number that is not finite")
        if step <= 0:
            raise ValueError(f"{name} grid {text!r}: step must be > 0")
        if stop < start:
            raise ValueError(f"{name} grid {text!r}: stop must be >= start")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > MAX_GRID_POINTS:
            raise ValueError(f"{name} grid {text!r} has {count} points: use at most {MAX_GRID_POINTS}")
        values = [round(start + i * step, 10) for i in range(count)]
    else:
        items = [p.strip() for p in text.split(",")]
        if not all(re.fullmatch(_NUMBER, p) for p in items):
            raise ValueError(
                f"{name} grid {text!r} is not a comma list of positive numbers (e.g. 1.0,1.1,1.2) "
                "nor start:stop:step"
            )
        values = [float(p) for p in items]
        if len(values) > MAX_GRID_POINTS:
            raise ValueError(f"{name} grid has {len(values)} points: use at most {MAX_GRID_POINTS}")
    for value in values:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} grid value {value!r} must be a finite number > 0")
    return values


class SearchConfig(BaseModel):
    """A search to launch: the options of ``effscale search`` (storage and Ray come from the server)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    baseline: str = Field(
        ...,
        min_length=1,
        max_length=200,
        pattern=BASELINE_PATTERN,
        description="registered baseline name (e.g. efficientnet_b0, tiny) or package.module:function",
        examples=["tiny"],
    )
    data: str = Field(
        ...,
        min_length=1,
        max_length=1000,
        description="proxy data set: digits, synthetic[:classes=N,size=S,n=K], folder:PATH, cifar:PATH or npz:PATH",
        examples=["synthetic:classes=3,size=16,n=120"],
    )
    alpha: str | None = Field(None, max_length=2000, description="depth grid: start:stop:step or a comma list", examples=["1.0,1.1"])
    beta: str | None = Field(None, max_length=2000, description="width grid", examples=["1.0,1.1"])
    gamma: str | None = Field(None, max_length=2000, description="resolution grid", examples=["1.0,1.15"])
    target_ratio: float | None = Field(None, gt=1.0, le=1000.0, allow_inf_nan=False, description="FLOPs ratio a feasible triple must reach (default 2.0)")
    tolerance: float | None = Field(None, ge=0.0, le=100.0, allow_inf_nan=False, description="relative tolerance around the target (default 0.05)")
    constraint: Literal["measured", "formula"] | None = Field(None, description="which FLOPs ratio the constraint uses")
    base_resolution: int | None = Field(None, ge=8, le=4096, description="B0's input size (default: the baseline's)")
    epochs: int | None = Field(None, ge=1, le=10000, description="training epochs per trial (exclusive with steps)")
    steps: int | None = Field(None, ge=1, le=10_000_000, description="training steps per trial (exclusive with epochs)")
    batch_size: int | None = Field(None, ge=1, le=65536)
    lr: float | None = Field(None, gt=0.0, le=100.0, allow_inf_nan=False, description="peak learning rate (default: scaled by batch size)")
    optimizer: Literal["sgd", "rmsprop"] | None = None
    grace_period: int | None = Field(None, ge=1, le=10000, description="epochs before ASHA may stop a trial")
    max_retries: int | None = Field(None, ge=0, le=100, description="retries of a failed worker")
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    scheduler: Literal["none", "asha"] | None = None
    max_concurrent: int | None = Field(None, ge=1, le=4096)
    cpus_per_trial: float | None = Field(None, gt=0.0, le=1024.0, allow_inf_nan=False)
    gpus_per_trial: float | None = Field(None, ge=0.0, le=64.0, allow_inf_nan=False)
    study: str | None = Field(
        None,
        pattern=STUDY_NAME_PATTERN,
        description="study name (letters, digits, _ . -; default: generated from the baseline)",
        examples=["my-search"],
    )
    max_phi: int | None = Field(None, ge=0, le=20, description="largest phi of the emitted family (default 7)")

    @field_validator("alpha", "beta", "gamma", mode="before")
    @classmethod
    def _grid_to_text(cls, value: Any) -> Any:
        if isinstance(value, list):  # a JSON list of numbers is accepted as a comma list
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise ValueError("grid list must hold numbers only")
            return ",".join(repr(float(v)) for v in value)
        return value

    @field_validator("alpha", "beta", "gamma")
    @classmethod
    def _check_grid(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            parse_grid(value, name=info.field_name)
        return value

    @field_validator("data")
    @classmethod
    def _check_data(cls, value: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("data spec must not contain control characters")
        kind = value.partition(":")[0].strip().lower()
        if kind not in DATA_SOURCES:
            raise ValueError(
                f"unknown data source {value!r}: use digits, synthetic[:classes=N,size=S,n=K], "
                "folder:PATH, cifar:PATH or npz:PATH"
            )
        return value

    @model_validator(mode="after")
    def _epochs_or_steps(self) -> "SearchConfig":
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give epochs or steps, not both")
        return self

    def to_argv(self, *, storage_url: str, study: str, ray_address: str | None) -> list[str]:
        """``effscale search`` arguments (after ``search``) for this configuration."""
        argv = [self.baseline, "--data", self.data]
        options: list[tuple[str, Any]] = [
            ("--alpha", self.alpha),
            ("--beta", self.beta),
            ("--gamma", self.gamma),
            ("--target-ratio", self.target_ratio),
            ("--tolerance", self.tolerance),
            ("--constraint", self.constraint),
            ("--base-resolution", self.base_resolution),
            ("--epochs", self.epochs),
            ("--steps", self.steps),
            ("--batch-size", self.batch_size),
            ("--lr", self.lr),
            ("--optimizer", self.optimizer),
            ("--grace-period", self.grace_period),
            ("--max-retries", self.max_retries),
            ("--seed", self.seed),
            ("--scheduler", self.scheduler),
            ("--max-concurrent", self.max_concurrent),
            ("--cpus-per-trial", self.cpus_per_trial),
            ("--gpus-per-trial", self.gpus_per_trial),
            ("--max-phi", self.max_phi),
            ("--ray-address", ray_address),
        ]
        for flag, value in options:
            if value is not None:
                argv += [flag, repr(value) if isinstance(value, float) else str(value)]
        argv += ["--storage", storage_url, "--study", study]
        return argv


# ---------------------------------------------------------------------------------------------
# responses


class Problem(BaseModel):
    detail: Any = Field(..., description="what went wrong and how to fix it")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    storage: str = Field(..., description="storage URL, password redacted")
    version: str
    detail: str | None = None


class Progress(BaseModel):
    grid: int | None = Field(None, description="candidates in the α×β×γ grid")
    feasible: int | None = None
    unique: int | None = Field(None, description="distinct feasible networks (one trial each)")
    aliases: int | None = None
    done: int = Field(..., description="trials COMPLETE, PRUNED or FAIL")
    running: int
    waiting: int = 0
    left: int | None = Field(None, description="unique − done − running; null when unknown")
    complete: int = 0
    pruned: int = 0
    fail: int = 0
    fraction: float | None = None


class TrialSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    number: int
    state: str
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    depth: float | None = None
    width: float | None = None
    resolution: int | None = None
    flops: int | None = None
    params: int | None = None
    flops_ratio: float | None = None
    formula_ratio: float | None = None
    top1: float | None = None
    train_seconds: float | None = None
    duration_s: float | None = None
    arch_id: str | None = None
    aliases: list[list[float]] = []


class StudySummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    status: str
    baseline: str | None = None
    created_at: str | None = None
    n_trials: int
    progress: Progress
    best: TrialSummary | None = None
    has_family: bool = False
    url: str


class StudyDetail(StudySummary):
    config: dict[str, Any] = {}
    counts: dict[str, Any] = {}
    started_at: str | None = None
    finished_at: str | None = None
    heartbeat_at: str | None = None
    error: str | None = None
    cancel_requested: bool = False
    directions: list[str] = []
    launch: dict[str, Any] | None = None


class StudyList(BaseModel):
    studies: list[StudySummary]


class TrialPage(BaseModel):
    study: str
    total: int = Field(..., description="trials matching the filter")
    limit: int
    offset: int
    trials: list[TrialSummary]


class CurvePoint(BaseModel):
    model_config = ConfigDict(extra="allow")

    epoch: int
    val_top1: float | None = None


class Curve(BaseModel):
    study: str
    number: int
    state: str
    points: list[CurvePoint]


class CurveSet(BaseModel):
    study: str
    curves: list[Curve]


class CandidateMap(BaseModel):
    study: str
    constraint: str | None = None
    target_ratio: float | None = None
    tolerance: float | None = None
    counts: dict[str, Any] = {}
    grid: dict[str, list[float]] = {}
    candidates: list[dict[str, Any]]


class SearchLaunched(BaseModel):
    study_name: str
    status: str
    status_url: str
    study_url: str
    pid: int | None = None


class SearchStatus(BaseModel):
    study_name: str
    status: str = Field(..., description="pending|running|completed|failed|cancelled, or starting before the search writes its record")
    launched_here: bool
    pid: int | None = None
    returncode: int | None = None
    cancel_requested: bool = False
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    study_url: str


class SearchList(BaseModel):
    searches: list[SearchStatus]
