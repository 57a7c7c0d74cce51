"""Read-only comparison endpoints: `effscale compare`'s studies (compound against single-dimension
and fast scaling at a matched measured cost, the paper's Figure 8), listed and one by one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from effscale.service import serializers as ser
from effscale.service.deps import ComparisonData, ServiceState, get_state, load_comparison
from effscale.service.routes_studies import comparison_url
from effscale.service.comparison_schemas import ComparisonDetail, ComparisonList
from effscale.service.schemas import Problem

router = APIRouter(prefix="/api/comparisons", tags=["comparisons"])


@router.get("", response_model=ComparisonList, summary="List comparisons")
def list_comparisons(state: ServiceState = Depends(get_state)) -> dict[str, Any]:
    """Every comparison in the storage, oldest first, with the search whose winner it compares
    (null for given coefficients), its status and, once done, each φ's verdict."""
    return {"comparisons": [ser.comparison_link(c, url=comparison_url(c.name)) for c in state.comparisons()]}


@router.get(
    "/{comparison_name}",
    response_model=ComparisonDetail,
    responses={404: {"model": Problem, "description": "no such comparison"}},
    summary="One comparison",
)
def get_comparison(data: ComparisonData = Depends(load_comparison)) -> dict[str, Any]:
    """The stored result: per φ, every arm's measured cost, mean top-1 ± se over its paired seeds
    (n), its paired difference to compound with a 95% interval, and the φ's verdict."""
    return ser.comparison_detail(data, url=comparison_url(data.name))
