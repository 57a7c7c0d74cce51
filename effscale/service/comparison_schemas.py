"""Pydantic models of the comparison responses (`effscale compare`'s stored result document):
each arm with its measured costs and paired difference, per φ, and the comparison whole. The
link to a comparison (`ComparisonLink`) is in `effscale.service.schemas`, beside the study that
lists it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from effscale.service.schemas import Coefficients, ComparisonLink


class ComparisonArm(BaseModel):
    model_config = ConfigDict(extra="allow")

    arm: str = Field(..., description="compound, depth, width, resolution or fast (and, for B0, paper/published)")
    depth: float | None = None
    width: float | None = None
    resolution: int | None = None
    flops: int | None = None
    params: int | None = None
    ratio: float | None = Field(None, description="measured FLOPs / the compound member's")
    flops_ratio: float | None = Field(None, description="measured FLOPs / B0's")
    activations: int | None = Field(None, description="fvcore's activation count (null: stored before it was kept)")
    activations_ratio: float | None = Field(None, description="activations / B0's")
    params_vs_compound: float | None = Field(None, description="params / the compound member's")
    activations_vs_compound: float | None = Field(None, description="activations / the compound member's")
    cost: str | None = Field(None, description="the cost the arms were matched in: flops, activations or latency")
    cost_ratio: float | None = Field(None, description="that cost / the compound member's (what --tolerance bounds)")
    latency_ms: float | None = Field(None, description="median latency in ms, when timed (also latency_iqr_ms, "
                                                       "latency_vs_compound, latency_warning)")
    scale: float | None = Field(None, description="the fast arm's cost factor s (d = s^0.1, w = s^0.4, r = s^0.05)")
    repeats: int = 0
    val_top1_mean: float | None = None
    val_top1_stderr: float | None = None
    delta_mean: float | None = Field(None, description="paired mean of arm − compound over the shared seeds")
    delta_half_width: float | None = Field(None, description="half-width of its 95% t-interval")


class ComparisonPhi(BaseModel):
    model_config = ConfigDict(extra="allow")

    phi: int
    verdict: str
    arms: list[ComparisonArm]


class ComparisonList(BaseModel):
    comparisons: list[ComparisonLink]


class ComparisonDetail(ComparisonLink):
    """A comparison: its stored result document (`effscale compare --json`: ``comparison`` ..
    ``phis``), with the link's fields; ``phis`` is empty until the comparison completes."""

    model_config = ConfigDict(extra="allow")

    comparison: str = Field(..., description="the comparison's study name")
    num_classes: int | None = None
    base_resolution: int | None = None
    coefficients: Coefficients | None = None
    budget: dict[str, Any] = {}
    flops_convention: str | None = None
    activations_convention: str | None = None
    cost: str | None = Field(None, description="the cost the arms were matched in (null: stored before --cost; flops)")
    arms: list[str] = Field([], description="the arms trained (empty: stored before --arms)")
    latency: dict[str, Any] | None = Field(None, description="where the latencies were timed (device_description...)")
    interval: str | None = Field(None, description="how delta_half_width is computed")
    identity: dict[str, Any] = Field({}, description="the settings that identify the comparison")
    phis: list[ComparisonPhi] = Field([], description="per φ: every arm's mean ± se (n), delta to compound, verdict")
