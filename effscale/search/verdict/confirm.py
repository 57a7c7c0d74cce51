"""Proxy fidelity: does the short proxy rank candidates like longer training does?

A few-epoch proxy can prefer what converges fast over what is better (the paper, EcoNAS and Bello
et al., "Revisiting ResNets", all warn that short training reorders candidates). So after the race,
the top ``K`` candidates by proxy mean, plus ``K`` others spread across the rest of the ranking,
train again with a longer budget on the same paired seeds, and Kendall's tau between the two
rankings (with a bootstrap interval over the seeds) says how far the proxy can be trusted. The
family is emitted from the *confirmed* winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

from effscale.search.verdict.race import CandidateRecord
from effscale.search.stats import LOW_TAU, bootstrap_tau, kendall_tau, summarize

Key = Hashable


def choose_confirmations(ranked: Sequence[Key], top: int) -> list[Key]:
    """The first ``top`` of ``ranked`` (best first) and ``top`` more spread evenly over the rest,
    so that the check covers the whole ranking, not only its head."""
    head, rest = list(ranked[:top]), list(ranked[top:])
    k = min(top, len(rest))
    spread = [rest[int((i + 0.5) * len(rest) / k)] for i in range(k)] if k else []
    return head + spread


def missing_confirmations(
    confirmed: Sequence[CandidateRecord], keys: Sequence[Key], repeats: int
) -> list[tuple[Key, int]]:
    """The (candidate, repeat) confirmation runs not yet done (or failed for good)."""
    by_key = {r.key: r for r in confirmed}
    todo = []
    for key in keys:
        record = by_key.get(key)
        if record is not None and record.out is not None:
            continue
        done = record.values if record is not None else {}
        todo += [(key, i) for i in range(repeats) if i not in done]
    return todo


@dataclass(frozen=True)
class Fidelity:
    kendall_tau: float
    tau_interval: tuple[float, float]
    proxy_winner: Key
    confirmed_winner: Key
    candidates: tuple[Key, ...]
    repeats: int
    warning: str | None

    @property
    def agrees(self) -> bool:
        return self.proxy_winner == self.confirmed_winner


def measure_fidelity(
    proxy: Sequence[CandidateRecord],
    confirmed: Sequence[CandidateRecord],
    *,
    proxy_winner: Key,
    confirmed_winner: Key,
    longer_flag: str,
) -> Fidelity:
    """Tau between proxy and confirmed means over the candidates both have, on the shared seeds."""
    by_key = {r.key: r for r in proxy}
    pairs = [(by_key[c.key], c) for c in confirmed if c.values and c.key in by_key and c.out is None]
    proxy_values = [{s: p.values[s] for s in c.values if s in p.values} for p, c in pairs]
    confirmed_values = [{s: c.values[s] for s in pv} for pv, (_, c) in zip(proxy_values, pairs)]
    tau = kendall_tau(
        [summarize(list(v.values())).mean for v in proxy_values],
        [summarize(list(v.values())).mean for v in confirmed_values],
    )
    interval = bootstrap_tau(proxy_values, confirmed_values)
    warning = None
    if not tau >= LOW_TAU:  # also catches nan (fewer than two candidates confirmed)
        warning = (
            f"the proxy ranks the confirmed candidates unlike longer training (Kendall tau {tau:.2f} < {LOW_TAU}); "
            f"do not trust its ranking: use a longer proxy ({longer_flag})"
        )
    repeats = min((len(v) for v in confirmed_values), default=0)
    return Fidelity(tau, interval, proxy_winner, confirmed_winner, tuple(c.key for _, c in pairs), repeats, warning)
