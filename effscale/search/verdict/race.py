"""Racing candidates on paired seeds, and the verdict it leads to. Pure functions of the results.

In the spirit of SMAC's intensification: every candidate first runs ``min_repeats`` seeds; then,
round by round, the leader (highest mean top-1) and every candidate not yet clearly worse than it
(`effscale.search.stats.SEPARATION_RULE`) get one more seed, until the leader separates from the
rest or every contender has ``max_repeats``. Clear losers stop early; close calls get the seeds.

The race is recomputed from the stored results each time it is asked, so a resumed search picks
up exactly where the last one stopped, and a trial lost to a crash is simply asked for again.

The verdict: the leader is the highest mean; the candidates it cannot be told apart from are tied
with it; among a tie the lower measured FLOPs wins (`TIE_BREAK`), then the higher mean. The
confirmation's verdict ranks by the longer budget, and a candidate the race already separated
from the confirmation's leader stays separated (`decide`'s ``race``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

from effscale.search.stats import Summary, clearly_worse, summarize

Key = Hashable
TIE_BREAK = "among statistically tied candidates, the lower measured FLOPs (then the higher mean top-1)"
# "Near chance": the winner's mean top-1 is less than a quarter of the way from chance (1/classes)
# to perfect. A proxy that has learned this little ranks nothing.
NEAR_CHANCE_FRACTION = 0.25


@dataclass(frozen=True)
class CandidateRecord:
    """What a candidate has so far: top-1 per repeat (COMPLETE trials), or why it is out."""

    key: Key
    flops: int
    values: dict[int, float] = field(default_factory=dict)
    out: str | None = None  # "failed: <reason>" or "pruned": no more seeds, never the winner

    @property
    def summary(self) -> Summary:
        return summarize([self.values[r] for r in sorted(self.values)])


@dataclass(frozen=True)
class Standing:
    leader: Key | None
    contenders: tuple[Key, ...]  # not clearly worse than the leader (the leader excluded)
    separated: tuple[Key, ...]  # clearly worse than the leader
    out: tuple[Key, ...]


def _order(record: CandidateRecord) -> tuple:
    s = record.summary
    return (-s.mean, record.flops, str(record.key))


def standing(records: Sequence[CandidateRecord]) -> Standing:
    """Leader, contenders and the separated, by `SEPARATION_RULE` on shared seeds."""
    alive = [r for r in records if r.out is None and r.values]
    out = tuple(r.key for r in records if r.out is not None)
    if not alive:
        return Standing(None, (), (), out)
    leader = min(alive, key=_order)
    contenders, separated = [], []
    for r in alive:
        if r.key != leader.key:
            (separated if clearly_worse(leader.values, r.values) else contenders).append(r.key)
    return Standing(leader.key, tuple(contenders), tuple(separated), out)


def next_repeats(records: Sequence[CandidateRecord], *, min_repeats: int, max_repeats: int) -> list[tuple[Key, int]]:
    """The (candidate, repeat) pairs to train next; empty when the race is over."""
    alive = [r for r in records if r.out is None]
    first = [(r.key, i) for r in alive for i in range(min_repeats) if i not in r.values]
    if first:
        return first
    board = standing(records)
    if board.leader is None or not board.contenders:
        return []  # nothing trained, or the leader has separated from everyone
    by_key = {r.key: r for r in records}
    racing = (board.leader, *board.contenders)
    return [(k, _next_index(by_key[k])) for k in racing if len(by_key[k].values) < max_repeats]


def _next_index(record: CandidateRecord) -> int:
    return next(i for i in range(len(record.values) + 1) if i not in record.values)


@dataclass(frozen=True)
class Verdict:
    """The winner and its evidence."""

    leader: Key  # highest mean top-1
    winner: Key  # the leader, or a tied candidate with lower measured FLOPs
    tied: tuple[Key, ...]  # statistically tied with the leader, winner excluded
    summaries: dict[Key, Summary]
    warnings: tuple[str, ...]


def decide(
    records: Sequence[CandidateRecord], *, num_classes: int, race: Sequence[CandidateRecord] | None = None
) -> Verdict | None:
    """The verdict over everything raced; None when no candidate has a result.

    A tie needs evidence: a contender is tied with the leader only when they share two seeds or more
    (with one, nothing can be told apart, and the leader's single highest top-1 stands, with a
    warning saying so).

    ``race``: for the confirmation's verdict, the race's records. A contender the race already
    separated from this leader (on its own, usually more, seeds) is not tied: two seeds at the
    confirmation budget rarely separate anything, and the tie-break would otherwise hand the win
    to whichever noisy, lower-FLOPs candidate the confirmation alone cannot rule out."""
    board = standing(records)
    if board.leader is None:
        return None
    by_key = {r.key: r for r in records}
    leader = by_key[board.leader]
    earlier = {r.key: r for r in race or ()}
    contenders = [k for k in board.contenders
                  if not (k in earlier and board.leader in earlier
                          and clearly_worse(earlier[board.leader].values, earlier[k].values))]
    separated = len(board.separated) + len(board.contenders) - len(contenders)
    comparable = [by_key[k] for k in contenders if len(set(by_key[k].values) & set(leader.values)) >= 2]
    untested = len(contenders) - len(comparable)
    group = [leader, *comparable]
    winner = min(group, key=lambda r: (r.flops, -r.summary.mean, str(r.key)))
    tied = tuple(r.key for r in group if r.key != winner.key)
    summaries = {r.key: r.summary for r in records if r.values}
    warnings = _warnings(winner.summary, len(tied), len(group) + separated, num_classes, untested)
    return Verdict(board.leader, winner.key, tied, summaries, warnings)


def _warnings(best: Summary, tied: int, raced: int, num_classes: int, untested: int) -> tuple[str, ...]:
    out = []
    chance = 1.0 / max(1, num_classes)
    if best.mean < chance + NEAR_CHANCE_FRACTION * (1.0 - chance):
        out.append(
            f"the best mean top-1 {best.mean:.3f} is near chance ({chance:.3f} for {num_classes} classes): "
            "the proxy learned too little to rank anything; raise --epochs (or check --lr)"
        )
    if raced > 1 and tied == raced - 1:
        out.append(
            f"the race separated nothing: all {raced} candidates are tied with the winner; "
            "raise --max-repeats or --epochs to tell them apart"
        )
    if untested:
        out.append(
            f"{untested} candidate{'s' if untested > 1 else ''} shared fewer than 2 seeds with the leader, so "
            "nothing could tell them apart and the single highest top-1 stands; raise --min-repeats to 2 or more"
        )
    return tuple(out)
