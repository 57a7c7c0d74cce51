"""A winner you can trust: the separation rule, the race, the verdict, proxy fidelity, and real
searches whose repeats, means, intervals, tied sets and tau are stored and read back by Optuna."""

from __future__ import annotations

import math

import optuna
import pytest

import effscale
from effscale.search.verdict.confirm import choose_confirmations, measure_fidelity
from effscale.search.execution.objective import trial_seed
from effscale.search.records.schema import CONFIRMATION_STUDY_ATTR
from effscale.search.records.study import confirmation_study_name
from effscale.search.verdict.race import CandidateRecord, decide, next_repeats, standing
from effscale.search.stats import bootstrap_tau, clearly_worse, kendall_tau, summarize
from effscale.storage import ProjectStore, open_storage

# ---------------------------------------------------------------------------------------------
# the rule and the race, on numbers


def test_summary_is_mean_and_standard_error() -> None:
    s = summarize([0.90, 0.92, 0.94])
    assert s.n == 3 and s.mean == pytest.approx(0.92) and s.stderr == pytest.approx(0.02 / math.sqrt(3))
    assert summarize([0.5]).stderr is None  # one seed has no error bar


def test_clearly_worse_needs_a_consistent_paired_advantage() -> None:
    leader = {0: 0.95, 1: 0.94, 2: 0.96}
    assert clearly_worse(leader, {0: 0.30, 1: 0.32, 2: 0.29})  # far behind on every seed
    assert not clearly_worse(leader, {0: 0.96, 1: 0.93, 2: 0.95})  # within noise
    assert not clearly_worse(leader, {0: 0.10})  # one shared seed proves nothing
    assert not clearly_worse({0: 0.9, 1: 0.5}, {0: 0.5, 1: 0.9})  # mean difference 0


def _records(values: dict[tuple, dict[int, float]], flops: dict[tuple, int] | None = None) -> list[CandidateRecord]:
    return [CandidateRecord(k, (flops or {}).get(k, 100), v) for k, v in values.items()]


def test_race_gives_seeds_to_the_close_calls_only() -> None:
    a, b, c = (1.0, 1.0, 1.2), (1.2, 1.0, 1.0), (1.0, 1.2, 1.0)
    # First every candidate gets min_repeats seeds.
    assert sorted(next_repeats(_records({a: {}, b: {}, c: {}}), min_repeats=2, max_repeats=4)) == sorted(
        [(a, 0), (a, 1), (b, 0), (b, 1), (c, 0), (c, 1)])
    # c is clearly worse; a leads, b is close: the next round is one more seed for a and b.
    records = _records({a: {0: 0.95, 1: 0.96}, b: {0: 0.94, 1: 0.96}, c: {0: 0.20, 1: 0.21}})
    board = standing(records)
    assert board.leader == a and board.contenders == (b,) and board.separated == (c,)
    assert next_repeats(records, min_repeats=2, max_repeats=4) == [(a, 2), (b, 2)]
    # At the cap the race ends; a leader that separated from everyone ends it too.
    capped = _records({a: {i: 0.95 for i in range(4)}, b: {i: 0.95 for i in range(4)}, c: {0: 0.2, 1: 0.2}})
    assert next_repeats(capped, min_repeats=2, max_repeats=4) == []
    alone = _records({a: {0: 0.95, 1: 0.96}, c: {0: 0.20, 1: 0.21}})
    assert next_repeats(alone, min_repeats=2, max_repeats=4) == []


def test_verdict_reports_ties_and_breaks_them_by_measured_flops() -> None:
    a, b, c = (1.0, 1.0, 1.2), (1.2, 1.0, 1.0), (1.0, 1.2, 1.0)
    records = _records({a: {0: 0.95, 1: 0.93, 2: 0.96}, b: {0: 0.94, 1: 0.95, 2: 0.94}, c: {0: 0.2, 1: 0.21, 2: 0.2}},
                       flops={a: 300, b: 200, c: 100})
    verdict = decide(records, num_classes=10)
    assert verdict.leader == a  # highest mean
    assert verdict.winner == b and verdict.tied == (a,)  # tied with a; b is cheaper
    assert verdict.summaries[c].n == 3 and verdict.warnings == ()


def test_the_confirmation_does_not_revive_what_the_race_separated() -> None:
    # The demo (ResNet-18, digits, --seed 0, 2-epoch confirmation), as measured. The confirmation's
    # two seeds cannot separate the noisy (1.6, 1, 1) from its leader, and it is cheaper: without
    # the race's evidence (three seeds, clearly worse) the tie-break made it the winner at 0.85
    # against the leader's 0.97.
    lead, noisy, mid = (1.0, 1.0, 1.1), (1.6, 1.0, 1.0), (1.4, 1.1, 1.0)
    flops = {lead: 80_693_760, noisy: 74_928_640, mid: 68_773_104}
    race = _records({lead: {0: 0.9164, 1: 0.9220, 2: 0.9025}, noisy: {0: 0.8106, 1: 0.5209, 2: 0.5933},
                     mid: {0: 0.8802, 1: 0.8858}}, flops=flops)
    confirm = _records({lead: {0: 0.9749, 1: 0.9749}, noisy: {0: 0.8914, 1: 0.8162}, mid: {0: 0.9248, 1: 0.9164}},
                       flops=flops)
    assert decide(confirm, num_classes=10).winner == noisy  # the confirmation alone: a tie, FLOPs decide
    verdict = decide(confirm, num_classes=10, race=race)
    assert verdict.winner == lead and verdict.tied == ()
    # A candidate the race could not separate stays tied, and the tie-break still applies to it.
    close = _records({lead: {0: 0.9164, 1: 0.9220}, noisy: {0: 0.9100, 1: 0.9300}}, flops=flops)
    assert decide(confirm[:2], num_classes=10, race=close).winner == noisy


def test_verdict_warns_near_chance_and_when_nothing_separates() -> None:
    a, b = (1.0, 1.0, 1.2), (1.2, 1.0, 1.0)
    verdict = decide(_records({a: {0: 0.19, 1: 0.2}, b: {0: 0.2, 1: 0.18}}), num_classes=10)
    assert any("near chance" in w and "--epochs" in w for w in verdict.warnings)
    assert any("separated nothing" in w and "--max-repeats" in w for w in verdict.warnings)


def test_one_seed_ties_nothing_and_says_so() -> None:
    a, b = (1.0, 1.0, 1.2), (1.2, 1.0, 1.0)
    verdict = decide(_records({a: {0: 0.9}, b: {0: 0.8}}, flops={a: 300, b: 100}), num_classes=10)
    assert verdict.winner == a and verdict.tied == ()  # no evidence of a tie: the highest stands
    assert any("fewer than 2 seeds" in w and "--min-repeats" in w for w in verdict.warnings)


def test_failed_candidates_are_out_of_the_race() -> None:
    a, b = (1.0, 1.0, 1.2), (1.2, 1.0, 1.0)
    records = [CandidateRecord(a, 100, {0: 0.5, 1: 0.6}), CandidateRecord(b, 100, {}, "failed: loss diverged")]
    assert next_repeats(records, min_repeats=2, max_repeats=3) == []
    assert decide(records, num_classes=10).winner == a


def test_seeds_are_paired_across_candidates_and_differ_across_repeats_and_studies() -> None:
    assert trial_seed(0, 0) == trial_seed(0, 0)
    assert len({trial_seed(0, r) for r in range(5)}) == 5
    assert trial_seed(0, 1) != trial_seed(1, 0) and trial_seed(0, 0) != trial_seed(1, 0)


def test_confirmations_cover_the_head_and_the_spread() -> None:
    ranked = list(range(10))
    assert choose_confirmations(ranked, 3) == [0, 1, 2, 4, 6, 8]
    assert choose_confirmations(ranked[:4], 3) == [0, 1, 2, 3]
    assert choose_confirmations(ranked, 0) == []


def test_kendall_tau_and_its_bootstrap_interval() -> None:
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    proxy = [{0: 0.9, 1: 0.8}, {0: 0.7, 1: 0.6}, {0: 0.5, 1: 0.4}]
    low, high = bootstrap_tau(proxy, proxy)
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)  # the same ranking on every resample
    reversed_ = [{0: 0.4, 1: 0.5}, {0: 0.6, 1: 0.7}, {0: 0.8, 1: 0.9}]
    fidelity = measure_fidelity(_records(dict(enumerate(proxy))), _records(dict(enumerate(reversed_))),
                                proxy_winner=0, confirmed_winner=2, longer_flag="--epochs 6")
    assert fidelity.kendall_tau == pytest.approx(-1.0) and not fidelity.agrees
    assert fidelity.warning and "--epochs 6" in fidelity.warning


# ---------------------------------------------------------------------------------------------
# real searches

RACE = dict(data="digits", base_resolution=16, alpha="1.0,1.4", beta="1.0", gamma="1.0,1.3", constraint="formula",
            tolerance=10.0, epochs=1, batch_size=64, min_repeats=2, max_repeats=3, confirm_top=1, progress=False)


def _trials(url: str, *studies: str) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(url)
    return [t for name in studies for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)]


def _values(url: str, study: str) -> list[tuple]:
    """Every trial of a search, its confirmation study's included."""
    trials = _trials(url, study, confirmation_study_name(study, {"epochs": 3}))
    return sorted((t.params["alpha"], t.params["gamma"], t.user_attrs["repeat"], t.user_attrs["confirmation"],
                   t.user_attrs["seed"], t.value) for t in trials)


@pytest.mark.ray
@pytest.mark.slow
def test_a_real_race_stores_its_evidence_and_repeats_identically(local_ray: None, tmp_path) -> None:
    from effscale.search.driver import run_confirmation

    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    # The race alone, then `effscale confirm` on the finished study...
    raced = effscale.run_search("tiny", **{**RACE, "confirm_top": 0}, storage=first, study="race")
    assert raced.fidelity is None and raced.best["chosen_by"] == "race"
    result = run_confirmation("race", storage=first, top=1)
    doc = result.to_dict()
    best = doc["best"]
    assert best["repeats"] >= 2 and best["val_top1_stderr"] is not None and best["confirmed"]["repeats"] == 2
    assert isinstance(best["tied_with"], list) and best["chosen_by"] == "confirmation"
    fidelity = doc["fidelity"]
    assert fidelity["confirm_epochs"] == 3 and fidelity["candidates"] == 2 and fidelity["repeats"] == 2
    assert -1.0 <= fidelity["kendall_tau"] <= 1.0

    # Plain Optuna reads every repeat back, with its seed, repeat and stage: the race in the search's
    # study, the confirmation round at its longer budget in a study of its own, linked to the search.
    confirm_name = confirmation_study_name("race", {"epochs": 3})
    assert confirm_name == "race-confirm-3-epochs"
    linked = optuna.load_study(study_name=confirm_name, storage=open_storage(first)).user_attrs
    assert linked[CONFIRMATION_STUDY_ATTR] == {"search": "race", "budget": {"epochs": 3}}
    trials = _trials(first, "race", confirm_name)
    proxy = [t for t in trials if not t.user_attrs["confirmation"]]
    confirm = [t for t in trials if t.user_attrs["confirmation"]]
    assert proxy == _trials(first, "race")
    assert len(confirm) == 4 and all(t.user_attrs["budget"] == {"epochs": 3} for t in confirm)
    assert all(t.user_attrs["seed"] == trial_seed(0, t.user_attrs["repeat"]) for t in trials)  # paired seeds
    assert {len([t for t in proxy if t.params == c.params]) for c in proxy} <= {2, 3}

    # effscale's own rows aggregate the repeats per candidate, and the verdict is stored.
    store = ProjectStore(first)
    rows = store.load_candidates("race")
    assert len(rows) == 4 and sum(r["n"] for r in rows) == len(proxy)
    assert sum(r["confirm_n"] for r in rows) == len(confirm)
    winner_row = next(r for r in rows if r["standing"] == "winner")
    assert (winner_row["alpha"], winner_row["gamma"]) == (best["alpha"], best["gamma"])
    stored = store.load_result("race")
    assert stored["best"]["val_top1_mean"] == pytest.approx(best["val_top1_mean"])
    assert stored["fidelity"]["kendall_tau"] == pytest.approx(fidelity["kendall_tau"])

    # The winner's measured ratio is the family's B1 ratio: one head (the data's 10 classes) for both.
    assert result.family.member("B1").flops_ratio == pytest.approx(best["flops_ratio"])
    assert result.family.num_classes == 10

    # Optuna's own view of the search (the real `optuna` CLI): its best trial is a race trial, at
    # the budget of every other trial of that objective, and one of the winner's.
    _check_optuna_best_trial(first, "race", best)

    # ...is the same as race and confirmation in one search: into a fresh study, trial by trial,
    # the same numbers.
    effscale.run_search("tiny", **RACE, storage=second, study="race")
    assert _values(first, "race") == _values(second, "race")

    # A search stored before confirmation rounds had studies of their own (its confirmation trials
    # in its own study) resumes: both are read, nothing is trained again, the verdict is the same.
    _legacy_copy(first, "race", "legacy")
    again = run_confirmation("legacy", storage=first, top=1)
    assert len(_trials(first, "legacy")) == len(trials) and again.best == best
    assert confirmation_study_name("legacy", {"epochs": 3}) not in optuna.get_all_study_names(open_storage(first))


def _check_optuna_best_trial(url: str, study: str, best: dict) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    optuna_cli = Path(sys.executable).with_name("optuna")
    proc = subprocess.run([str(optuna_cli), "best-trial", "--study-name", study, "--storage", url, "-f", "json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    number = json.loads(proc.stdout)["number"]
    race = _trials(url, study)
    named = next(t for t in race if t.number == number)
    assert not named.user_attrs["confirmation"] and {t.user_attrs["budget"]["epochs"] for t in race} == {1}
    assert named.value == max(t.value for t in race if t.value is not None)
    assert (named.params["alpha"], named.params["gamma"]) == (best["alpha"], best["gamma"])


def _legacy_copy(url: str, study: str, to: str) -> None:
    """``study`` as an earlier effscale stored it: one study, confirmation trials included."""
    storage = open_storage(url)
    optuna.copy_study(from_study_name=study, from_storage=storage, to_storage=storage, to_study_name=to)
    legacy = optuna.load_study(study_name=to, storage=storage)
    for trial in _trials(url, confirmation_study_name(study, {"epochs": 3})):
        legacy.add_trial(trial)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["confirm", "--study", "nope"], "no study 'nope'"),
        (["confirm", "--study", "empty"], "has no complete trial to confirm"),
        (["confirm", "--study", "empty", "--top", "0"], "must be > 0"),
    ],
)
def test_confirm_refuses_in_one_line(tmp_path, args: list[str], message: str, capsys) -> None:
    from effscale.cli import main

    url = f"sqlite:///{tmp_path / 'c.db'}"
    study = optuna.create_study(study_name="empty", storage=open_storage(url))
    study.set_user_attr("effscale", {"settings": {"baseline": "tiny", "data": "digits"}})
    with pytest.raises(SystemExit) if "must be" in message else _no_raise():
        code = main([*args, "--storage", url])
        assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


class _no_raise:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False
