"""Pydantic models of the REST API: the search request (derived from the CLI's settings) and the responses.

`SearchConfig` is generated from the same settings dataclasses as ``effscale search``'s flags
(`SearchOptions` and `ProxyRecipe`, minus what the server owns: storage, Ray address, output
paths): the same names (``-`` as ``_``), defaults and checks. So anything the CLI refuses is a 422
here, with the CLI's message naming the field. `SearchConfig.to_argv` turns a request back into
that command's arguments.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from effscale._settings import check_value, flag, settings_of
from effscale.models.options import LatencyOptions
from effscale.search.planning.options import SearchOptions
from effscale.search.records.queries import BEST_SOURCES, RANKING_SOURCES, STANDINGS
from effscale.trainer.recipe import ProxyRecipe

STUDY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,119}$"
# A registered name, or package.module:function (what `get_baseline` accepts, nothing a shell reads).
BASELINE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_]*)?$"

TrialStateName = Literal["complete", "pruned", "fail", "running", "waiting"]
TrialSort = Literal["value", "-value", "number", "-number", "flops", "-flops"]

_API_PATTERNS = {"baseline": BASELINE_PATTERN, "study": STUDY_NAME_PATTERN}


def _api_settings() -> list[tuple[str, Any]]:
    return [(f.name, meta) for cls in (SearchOptions, ProxyRecipe, LatencyOptions) for f, meta in settings_of(cls)
            if meta.api]


def _field(name: str, meta: Any) -> tuple[Any, Any]:
    kind = Literal[meta.choices] if meta.choices else (meta.api_kind or meta.kind)  # type: ignore[valid-type]
    annotation = kind if meta.required else kind | None
    extra = {"pattern": _API_PATTERNS[name]} if name in _API_PATTERNS else {}
    default = ... if meta.required else None
    if meta.kind is float:
        extra["allow_inf_nan"] = False
    return annotation, Field(default, description=meta.help, **extra)


def _checker(name: str, meta: Any) -> Any:
    def check(cls: Any, value: Any) -> Any:
        if isinstance(value, list):  # a JSON list of numbers is a grid given as a comma list
            check_value(name, meta, value)
            return ",".join(repr(float(v)) for v in value)
        return check_value(name, meta, value)  # UsageError is a ValueError: pydantic makes it a 422

    return field_validator(name)(classmethod(check))


class _SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="after")
    def _cross_checks(self) -> "_SearchRequest":
        SearchOptions.build(**self.settings())  # epochs or steps, and any other rule across fields
        return self

    def settings(self) -> dict[str, Any]:
        """The settings given, by field name (what `effscale.run_search` takes)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}

    def to_argv(self, *, study: str, ray_address: str | None) -> list[str]:
        """``effscale search`` arguments (after ``search``) for this request. The storage URL is
        not among them: the launcher passes it in the environment, never on a command line."""
        values = {**self.settings(), "study": study}
        argv = [values.pop("baseline")]
        if ray_address:
            values["ray_address"] = ray_address
        for name, value in values.items():
            if value is True:
                argv.append(flag(name))
            elif value is not False:
                argv += [flag(name), repr(value) if isinstance(value, float) else str(value)]
        return argv


SearchConfig = create_model(  # type: ignore[call-overload]
    "SearchConfig",
    __base__=_SearchRequest,
    __doc__="A search to launch: the options of ``effscale search`` (storage and Ray come from the server).",
    __validators__={f"_check_{name}": _checker(name, meta) for name, meta in _api_settings()},
    **{name: _field(name, meta) for name, meta in _api_settings()},
)


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
    unique: int | None = Field(None, description="distinct feasible networks (each trains one or more repeats)")
    aliases: int | None = None
    done: int = Field(..., description="trials COMPLETE, PRUNED or FAIL")
    running: int = Field(..., description="trials running")
    waiting: int = 0
    left: int | None = Field(None, description="networks no trial has started yet (of unique); null when unknown")
    networks_done: int = Field(0, description="networks with at least one finished trial")
    complete: int = 0
    pruned: int = 0
    fail: int = 0
    fraction: float | None = Field(None, description="networks_done / unique")


class TrialSummary(BaseModel):
    """One trial: `effscale.search.records.queries.trial_row`, the same row `effscale trials --json` prints."""

    model_config = ConfigDict(extra="allow")

    number: int
    state: str
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    depth: float | None = Field(None, description="depth multiplier d = α (φ=1)")
    width: float | None = Field(None, description="width multiplier w = β (φ=1)")
    resolution: int | None = Field(None, description="input size after rounding")
    flops: int | None = Field(None, description="fvcore FLOPs of the network built")
    params: int | None = None
    flops_ratio: float | None = Field(None, description="measured FLOPs / the baseline's")
    formula_ratio: float | None = Field(None, description="α·β²·γ²")
    activations: int | None = Field(None, description="fvcore's activation count of the network built")
    activations_ratio: float | None = Field(None, description="measured activations / the baseline's")
    latency_ms: float | None = Field(None, description="median forward pass, when the search measures latency")
    latency_ratio: float | None = Field(None, description="measured latency / the baseline's")
    val_top1: float | None = Field(None, description="validation top-1: the objective when complete, else the last epoch's")
    val_loss: float | None = None
    train_seconds: float | None = Field(None, description="seconds spent training")
    images_per_s: float | None = None
    epochs: int | None = None
    duration_s: float | None = Field(None, description="Optuna's start-to-finish wall time")
    arch_id: str | None = None
    # A NaN coordinate is sent as null, like every other non-finite float.
    aliases: list[list[float | None]] = Field([], description="the (α, β, γ) grid points that build this network")
    representative_rule: str | None = None
    datetime_start: str | None = None
    datetime_complete: str | None = None
    repeat: int | None = Field(None, description="which repeat (seed) of its candidate this trial is")
    seed: int | None = None
    confirmation: bool | None = Field(None, description="a confirmation run with a longer budget")
    node: str | None = Field(None, description="the Ray node the trial ran on")
    fail_reason: str | None = None
    batch_size: int | None = None
    lr: float | None = None
    budget: dict[str, int] | None = Field(None, description='what it trained for: {"epochs": N} or {"steps": N}')


class MeanSe(BaseModel):
    """Validation top-1 over a candidate's repeats (paired seeds): never a bare top-1."""

    val_top1_mean: float | None = Field(None, description="mean validation top-1 over the repeats")
    val_top1_stderr: float | None = Field(None, description="its standard error; null below 2 repeats")
    repeats: int = Field(0, description="n: how many repeats (seeds) the mean is over")


class Coefficients(BaseModel):
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None


class TiedCandidate(MeanSe, Coefficients):
    """A candidate the separation rule could not tell from the winner."""


class Best(MeanSe, Coefficients):
    """A study's winner: `effscale.search.records.queries.search_verdict`'s ``best``."""

    model_config = ConfigDict(extra="allow")

    confirmed: MeanSe | None = Field(None, description="the winner's top-1 at the confirmation round's longer budget")
    tied_with: list[TiedCandidate] = Field([], description="candidates statistically tied with the winner")
    chosen_by: Literal["race", "confirmation"] | None = Field(
        None, description="which stage's ranking chose the winner; null for a single trial")
    tie_break: str | None = Field(None, description="how a tie is decided")
    separation_rule: str | None = Field(None, description="the rule that tells 'clearly worse' from 'tied'")
    flops: int | None = Field(None, description="fvcore FLOPs of the winner's network")
    flops_ratio: float | None = None
    formula_ratio: float | None = None
    number: int | None = Field(None, description="the trial's number when best_source is 'single trial'")


class Fidelity(BaseModel):
    """How the short proxy ranks the confirmed candidates against longer training."""

    model_config = ConfigDict(extra="allow")

    kendall_tau: float | None = Field(None, description="Kendall's tau between proxy and confirmed mean top-1")
    tau_interval: list[float | None] = Field([], description="95% bootstrap interval of tau over the seeds [lo, hi]")
    proxy_winner: Coefficients | None = None
    confirmed_winner: Coefficients | None = None
    confirm_epochs: int | None = Field(None, description="a confirmation run's budget in epochs (or steps)")
    confirm_steps: int | None = None
    candidates: int | None = Field(None, description="how many candidates were confirmed")
    repeats: int | None = Field(None, description="seeds per confirmed candidate")
    agrees: bool | None = Field(None, description="the proxy's winner is the confirmed winner")
    warning: str | None = None


class PhiVerdict(BaseModel):
    phi: int
    verdict: str


class ComparisonLink(BaseModel):
    """A comparison (`effscale compare`) of a search's winner against single-dimension scaling."""

    name: str
    url: str = Field(..., description="GET this for the comparison's result")
    status: str = Field(..., description="its status row's, as a search's: running, completed, interrupted, cancelled "
                                         "or failed (re-run the command to resume); for a comparison stored before "
                                         "it had one: completed, running or incomplete")
    search: str | None = Field(None, description="the search whose winner it compares; null for given coefficients")
    baseline: str | None = None
    data: str | None = None
    phi_values: list[int] = Field([], description="the φ values compared")
    repeats: int | None = Field(None, description="paired seeds per arm")
    n_trials: int = 0
    verdicts: list[PhiVerdict] = Field([], description="one verdict per φ, once completed")


class ConfirmationLink(BaseModel):
    """A search's confirmation round: its top candidates retrained for longer, in a study of its
    own (one budget per study), so the search's study keeps one objective."""

    name: str = Field(..., description="the confirmation study's name")
    url: str = Field(..., description="GET this study; its /trials lists the confirmation trials")
    budget: dict[str, Any] = Field({}, description='the longer budget: {"epochs": N} or {"steps": N}')
    n_trials: int = 0


class StudySummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(..., description="the study's name (one search is one Optuna study)")
    status: str = Field(
        ..., description="the search's status: pending|running|completed|failed|cancelled|interrupted, else starting or unknown")
    baseline: str | None = Field(None, description="the baseline searched")
    created_at: str | None = Field(None, description="when the search record was created (ISO 8601, UTC)")
    n_trials: int = Field(..., description="trials in every state")
    progress: Progress
    best: Best | None = Field(
        None, description="the winner: the stored verdict's (mean ± se over repeats, its ties), else the best single trial")
    best_source: Literal[BEST_SOURCES] | None = Field(  # type: ignore[valid-type]
        None, description="verdict: the search's stored verdict; single trial: a search still running or made by an "
                          "older effscale, judged by its best single COMPLETE trial")
    fidelity: Fidelity | None = Field(None, description="the proxy's fidelity; null without a confirmation round")
    warnings: list[str] = Field([], description="what the verdict warns about (near chance, nothing separated, ...)")
    failures: list[str] = Field([], description="one line per kind of failed trial")
    has_family: bool = False
    url: str


class StudyDetail(StudySummary):
    config: dict[str, Any] = Field({}, description="the search's configuration (URLs redacted)")
    regime: dict[str, Any] | None = Field(
        None, description="B0's regime at the base resolution: total_stride, last_map (side, px), step_ratio (measured "
                          "FLOPs at r+1 / r), degenerate, summary, warning and the planned ways_out")
    counts: dict[str, Any] = {}
    started_at: str | None = None
    finished_at: str | None = None
    heartbeat_at: str | None = None
    error: str | None = None
    cancel_requested: bool = False
    directions: list[str] = []
    launch: dict[str, Any] | None = None
    comparisons: list[ComparisonLink] = Field([], description="comparisons of this search's winner")
    confirmations: list[ConfirmationLink] = Field(
        [], description="the search's confirmation rounds, each its own study: the search's trial pages list the race "
                        "(a search stored before keeps its confirmation trials there), these the confirmation trials")


class StudyList(BaseModel):
    studies: list[StudySummary] = Field(..., description="the searches (comparisons are at GET /api/comparisons)")


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
    total: int | None = Field(None, description="the study's trials (curves are paged by limit and offset)")
    curves: list[Curve]


class CandidateMap(BaseModel):
    study: str
    constraint: str | None = None
    target_ratio: float | None = None
    tolerance: float | None = None
    counts: dict[str, Any] = {}
    grid: dict[str, list[float]] = {}
    candidates: list[dict[str, Any]] = Field(
        ..., description="every grid point: its ratios, feasible, representative, alias, and its network's race "
                         "val_top1 (mean over the COMPLETE repeats), val_top1_stderr, repeats, trial_numbers")


class CandidateAggregate(BaseModel):
    """One candidate's aggregates: `ProjectStore.load_candidates`'s row (`search --json`'s ranking)."""

    model_config = ConfigDict(extra="allow")

    candidate: str = Field(..., description="'α,β,γ'")
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    arch_id: str | None = None
    flops: int | None = Field(None, description="fvcore FLOPs of its network")
    standing: Literal[STANDINGS] | None = Field(  # type: ignore[valid-type]
        None, description="in the stored verdict; null while the search has none")
    n: int = Field(0, description="race repeats COMPLETE")
    mean: float | None = Field(None, description="race mean validation top-1")
    stderr: float | None = Field(None, description="its standard error (null below 2 repeats)")
    confirm_n: int = Field(0, description="confirmation repeats COMPLETE")
    confirm_mean: float | None = None
    confirm_stderr: float | None = None


class CandidateRanking(BaseModel):
    study: str
    source: Literal[RANKING_SOURCES] = Field(  # type: ignore[valid-type]
        ..., description="verdict: stored with the search's verdict; trials: computed from the trials so far")
    candidates: list[CandidateAggregate] = Field(..., description="best race mean first, untrained last")


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
    error: str | None = Field(
        None, description="the stored one-line error; the search's output is at GET /api/searches/{name}/log (token)"
    )
    started_at: str | None = None
    finished_at: str | None = None
    study_url: str


class SearchList(BaseModel):
    searches: list[SearchStatus]


class SearchLog(BaseModel):
    study_name: str
    log: str = Field(..., description="the end of the search's output (stdout and stderr), passwords as ***")
    max_bytes: int = Field(..., description="at most this many bytes from the end of the log are sent")
