"""Successive halving: promotions per group and rung, continuation from the parent, finalists'
replicates, the state rebuilt on resume, and a real ASHA ensemble."""


from collections import Counter

import numpy as np
import pytest

from generators.asha import DEFAULT_GROUP_BY, AshaScheduler, rung_budgets, score, search_is_over
from generators.points import to_array
from generators.settings import AshaSettings, GenSettings
from hypers.fields import point_dtype
from hypers.space import SearchSpace
from simulators.training import shape_of

SPACE = SearchSpace.model_validate(
    {"choices": {"architecture": ["rnn", "gru"], "dataset": ["digits"],
                 "learning_rate": [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256]}}
)


def quality(point):
    """A known landscape: lr 0.016 is best for rnn, 0.064 for gru; more epochs help a little."""
    best = 0.016 if point["architecture"] == "rnn" else 0.064
    return 1.0 - abs(np.log2(point["learning_rate"] / best)) / 10 + point["epochs"] / 1000


def scheduler(replicates=2, **kwargs):
    return AshaScheduler(SPACE.configurations({"batch_size": 32}), seed=0, budgets=rung_budgets(1, 9, 3), eta=3,
                         finalist_replicates=replicates, **kwargs)


# The generator's settings for the same search, as libe_inputs passes them
GEN_SETTINGS = GenSettings(space=SPACE, defaults={"batch_size": 32}, seed=0, replicates=2,
                           asha=AshaSettings(budgets=(1, 3, 9), eta=3, group_by=DEFAULT_GROUP_BY))


def run_to_end(asha, workers=3, order=None, quality_of=quality, status_of=lambda point: "ok"):
    """Drive the scheduler as the generator does: ``workers`` trainings at a time, results back
    in the order the trainings were issued (or ``order`` picks which running one ends next)."""
    running, trained = [], []
    while True:
        while len(running) < workers and (point := asha.next_point()) is not None:
            running.append(point)
        if not running:
            return trained
        point = running.pop(order(running) if order else 0)
        asha.record(point["identifier"], status_of(point), quality_of(point), float("nan"))
        trained.append(point)


def issued_epochs(trained, point):
    """Epochs a promoted training inherits from its parent (continued, not retrained)."""
    parents = [p for p in trained if p["identifier"] == point["resume_from"]]
    return parents[0]["epochs"] if parents else 0


def test_rungs_grow_by_eta_up_to_the_full_budget():
    assert rung_budgets(1, 9, 3) == [1, 3, 9]
    assert rung_budgets(1, 10, 3) == [1, 3, 9, 10]
    assert rung_budgets(2, 2, 3) == [2]


def test_regression_scores_by_negative_loss_and_failures_rank_last():
    assert score("ok", float("nan"), 0.25) == -0.25
    assert score("diverged", 0.9, 0.1) == float("-inf")


def test_each_group_promotes_its_best_and_finalists_get_replicates():
    trained = run_to_end(scheduler())
    by_epochs = {b: [p for p in trained if p["epochs"] == b and p["replicate"] == 0] for b in (1, 3, 9)}
    assert len(by_epochs[1]) == 18  # every configuration once at the first rung
    for architecture, best in (("rnn", 0.016), ("gru", 0.064)):
        # asynchronous: early rungs promote the best of what has finished so far, so a group can
        # have several finalists, but its best configuration is always among them
        finalists = sorted(p["learning_rate"] for p in by_epochs[9] if p["architecture"] == architecture)
        assert best in finalists and len(finalists) <= 3
        extra = [p for p in trained if p["replicate"] == 1 and p["architecture"] == architecture]
        extras = sorted((p["learning_rate"], p["epochs"], p["resume_from"]) for p in extra)
        assert extras == [(lr, 9, "") for lr in finalists]
    epochs_trained = sum(p["epochs"] - (issued_epochs(trained, p)) for p in trained)
    assert epochs_trained < 0.4 * 18 * 9 * 2  # the grid: 18 configurations x 9 epochs x 2 replicates
    issued = {p["identifier"]: p for p in trained}
    for point in by_epochs[3] + by_epochs[9]:
        parent = issued[point["resume_from"]]  # promotions continue from the rung below
        assert parent["epochs"] * 3 == point["epochs"] and parent["learning_rate"] == point["learning_rate"]
        assert point["seed"] == parent["seed"]  # a chain is one training of one seed: replicate 0
    assert len({p["identifier"] for p in trained}) == len(trained)


def test_finalist_replicates_start_alongside_the_promotion_not_after_it():
    """Sent to the full budget, a configuration's replicates are handed out at once: the search's
    longest chain is one configuration's own (1 + 2 + 6 epochs here), not that plus a replicate's 9."""
    asha, running, started_while_running = scheduler(), [], set()
    while True:
        while (point := asha.next_point()) is not None:
            running.append(point)
            if point["replicate"] == 1:
                promoted = [p for p in running if p["replicate"] == 0 and p["epochs"] == 9
                            and p["learning_rate"] == point["learning_rate"]
                            and p["architecture"] == point["architecture"]]
                started_while_running.update(p["identifier"] for p in promoted)
        if not running:
            break
        point = running.pop(0)
        asha.record(point["identifier"], "ok", quality(point), float("nan"))
    assert started_while_running and started_while_running == {
        i for i, p in asha.issued.items() if p["replicate"] == 0 and p["epochs"] == 9}


def gru_best_diverges_in_a_replicate(point):
    """gru's best configuration (lr 0.064) diverges in its replicate 1, as a learning rate at the
    edge of stability does in some seeds."""
    unstable = point["architecture"] == "gru" and point["learning_rate"] == 0.064 and point["replicate"] == 1
    return "diverged" if unstable else "ok"


def full_budget_configurations(trained, architecture):
    return {p["learning_rate"] for p in trained if p["architecture"] == architecture and p["epochs"] == 9}


@pytest.mark.parametrize("replicate_finalists", ["all", "leader"])
def test_a_finalist_that_diverges_in_a_replicate_ranks_last_and_the_next_configuration_goes_up(
        replicate_finalists):
    """As the grid ranks it (its replicates' mean is -inf), so asha: the diverged configuration's
    place in its rungs' top 1/eta goes to the next one, which reaches the full budget with every
    replicate and is the group's choice; nothing more of the diverged one is handed out."""
    steady = run_to_end(scheduler(replicates=3, replicate_finalists=replicate_finalists))
    asha, issued_before = scheduler(replicates=3, replicate_finalists=replicate_finalists), []

    def status_of(point):
        status = gru_best_diverges_in_a_replicate(point)
        if status == "diverged":
            issued_before.append(len(asha.issued))
        return status

    trained = run_to_end(asha, status_of=status_of)
    handed_out_after = list(asha.issued.values())[issued_before[0]:]
    replacements = full_budget_configurations(trained, "gru") - full_budget_configurations(steady, "gru")
    assert replacements and replacements <= full_budget_configurations(handed_out_after, "gru")
    assert not [p for p in handed_out_after if p["architecture"] == "gru" and p["learning_rate"] == 0.064]
    means = {lr: np.mean([quality(p) if status_of(p) == "ok" else -np.inf for p in trained
                          if p["architecture"] == "gru" and p["learning_rate"] == lr and p["epochs"] == 9])
             for lr in full_budget_configurations(trained, "gru")}
    choice = max(means, key=means.get)  # as the analysis and the benchmark choose
    assert np.isfinite(means[choice]) and choice != 0.064  # a replacement, or (leader) the next finalist
    assert sum(p["architecture"] == "gru" and p["learning_rate"] == choice and p["epochs"] == 9 for p in trained) == 3
    assert full_budget_configurations(trained, "rnn") == full_budget_configurations(steady, "rnn")


def test_small_groups_still_reach_the_full_budget():
    """6 configurations per group, eta 3: with results in issue order the 1/eta rule can leave a
    rung of 2 with nobody promoted; once nothing else is left, the group's best there goes on."""
    space = SearchSpace.model_validate({"choices": {
        "architecture": ["rnn", "gru"], "dataset": ["digits"], "learning_rate": [0.004, 0.016, 0.064],
        "hidden_dim": [16, 32]}})
    asha = AshaScheduler(space.configurations({"batch_size": 32}), seed=0, budgets=[1, 3, 9], eta=3,
                         finalist_replicates=1)
    first_rung = [asha.next_point() for _ in range(12)]
    for point in first_rung:  # all first-rung results in before any promotion: 2 per group
        asha.record(point["identifier"], "ok", quality(point), float("nan"))
    trained = first_rung + run_to_end(asha, workers=12)
    for architecture, best in (("rnn", 0.016), ("gru", 0.064)):
        assert sum(p["architecture"] == architecture and p["epochs"] == 3 for p in trained) == 2
        finalists = [p for p in trained if p["architecture"] == architecture and p["epochs"] == 9]
        assert [p["learning_rate"] for p in finalists] == [best]


@pytest.mark.parametrize("replicate_finalists", ["all", "leader"])
def test_a_small_group_whose_finalist_diverges_still_ends_with_one_that_did_not(replicate_finalists):
    """2 configurations a group, eta 3: only the closing promotion reaches the full budget. When its
    finalist diverges in a replicate, the other configuration goes up in its place."""
    space = SearchSpace.model_validate({"choices": {
        "architecture": ["rnn", "gru"], "dataset": ["digits"], "learning_rate": [0.016, 0.064]}})
    asha = AshaScheduler(space.configurations({"batch_size": 32}), seed=0, budgets=[1, 3, 9], eta=3,
                         finalist_replicates=3, replicate_finalists=replicate_finalists)
    first_rung = [asha.next_point() for _ in range(4)]
    for point in first_rung:  # all first-rung results in before any promotion
        asha.record(point["identifier"], "ok", quality(point), float("nan"))
    trained = first_rung + run_to_end(asha, workers=12, status_of=gru_best_diverges_in_a_replicate)
    assert full_budget_configurations(trained, "gru") == {0.064, 0.016}
    replicates = [p["replicate"] for p in trained if p["architecture"] == "gru" and p["learning_rate"] == 0.016
                  and p["epochs"] == 9]
    assert sorted(replicates) == [0, 1, 2]
    assert full_budget_configurations(trained, "rnn") == {0.016}


def test_promotions_are_asynchronous_and_never_repeated_whatever_the_order():
    trained = run_to_end(scheduler(), workers=4, order=lambda running: len(running) - 1)
    promoted_parents = [p["resume_from"] for p in trained if p["resume_from"]]
    assert len(promoted_parents) == len(set(promoted_parents))
    assert sum(p["epochs"] == 9 and p["replicate"] == 0 for p in trained) >= 2


def test_resume_rebuilds_the_state_without_repeating_a_training():
    full = run_to_end(scheduler())
    first_half = full[: len(full) // 2]
    resumed = scheduler()
    resumed.restore(first_half, [("ok", quality(p), float("nan")) for p in first_half])
    rest = run_to_end(resumed)
    assert not {p["identifier"] for p in first_half} & {p["identifier"] for p in rest}
    assert {p["identifier"] for p in first_half + rest} == {p["identifier"] for p in full}


@pytest.mark.parametrize("replicate_finalists", ["all", "leader"])
def test_resume_of_a_search_with_a_diverged_finalist_trains_what_the_whole_run_did(replicate_finalists):
    """Replayed in the order trainings ended, a replicate's divergence can come before its chain's
    own result: at every cut, the resumed search repeats nothing, hands out nothing more of the
    diverged configuration, and ends the group with a configuration that has every replicate."""
    statuses = gru_best_diverges_in_a_replicate
    last_first = lambda running: len(running) - 1  # noqa: E731 - the latest handed out ends first
    full = run_to_end(scheduler(replicates=3, replicate_finalists=replicate_finalists), workers=6,
                      order=last_first, status_of=statuses)
    diverged_at = next(i for i, p in enumerate(full) if statuses(p) == "diverged")
    for cut in range(diverged_at + 1, len(full)):
        resumed = scheduler(replicates=3, replicate_finalists=replicate_finalists)
        resumed.restore(full[:cut], [(statuses(p), quality(p), float("nan")) for p in full[:cut]])
        rest = run_to_end(resumed, workers=6, order=last_first, status_of=statuses)
        assert not {p["identifier"] for p in full[:cut]} & {p["identifier"] for p in rest}
        assert not [p for p in rest if p["architecture"] == "gru" and p["learning_rate"] == 0.064], cut
        counts = Counter(p["learning_rate"] for p in full[:cut] + rest if p["architecture"] == "gru"
                         and p["epochs"] == 9 and p["learning_rate"] != 0.064)
        assert 3 in counts.values(), cut


def test_a_replicates_divergence_replayed_before_its_chain_queues_no_further_replicate():
    """On resume the history is replayed in the order trainings ended: replicate 1 diverged, then
    the chain (replicate 0) ended, replicate 2 was still training when the run stopped. Replaying
    the chain queues its replicates; the diverged configuration's must stay unqueued."""
    full = run_to_end(scheduler(replicates=3), status_of=gru_best_diverges_in_a_replicate)
    unstable = [p for p in full if p["architecture"] == "gru" and p["learning_rate"] == 0.064 and p["epochs"] == 9]
    chain, diverged, still_training = (next(p for p in unstable if p["replicate"] == r) for r in (0, 1, 2))
    replayed = [p for p in full[: full.index(chain) + 1] if p is not diverged and p is not still_training]
    replayed.insert(replayed.index(chain), diverged)  # replicate 1 ended (diverged) before its chain
    resumed = scheduler(replicates=3)
    resumed.restore(replayed, [(gru_best_diverges_in_a_replicate(p), quality(p), float("nan")) for p in replayed])
    rest = run_to_end(resumed, status_of=gru_best_diverges_in_a_replicate)
    assert still_training["identifier"] not in {p["identifier"] for p in rest}
    assert not [p for p in rest if p["architecture"] == "gru" and p["learning_rate"] == 0.064]


def test_a_search_is_over_once_its_history_leaves_nothing_to_hand_out():
    trained = run_to_end(scheduler())
    for order, point in enumerate(trained):
        point.update(status="ok", val_accuracy=quality(point), val_loss=float("nan"), sim_ended_time=float(order))
    results = [("status", "U8"), ("val_accuracy", "f8"), ("val_loss", "f8"), ("sim_ended_time", "f8")]
    H = to_array(trained, point_dtype() + results)
    assert search_is_over(GEN_SETTINGS, H)
    assert not search_is_over(GEN_SETTINGS, H[:-1])  # the last finalist replicate is still to train
    assert not search_is_over(GEN_SETTINGS, H[: len(H) // 2])




def run_groups_to_end(asha, workers, size, quality_of=quality, order=None):
    """As ``run_to_end``, each worker training a vectorised group of up to ``size`` points, whose
    results come back together."""
    running, groups = [], []
    while True:
        while len(running) < workers and (group := asha.next_group(size)):
            running.append(group)
            groups.append(group)
        if not running:
            return groups
        for point in running.pop(order(running) if order else 0):
            asha.record(point["identifier"], "ok", quality_of(point), float("nan"))


def search_path(groups):
    """Which configurations reached which rung, as which replicates: what the search decided."""
    keys = ("architecture", "learning_rate", "epochs", "replicate")
    return sorted(tuple(point[key] for key in keys) for group in groups for point in group)


def ranked_by_order(point):
    """Results whose ranking every prefix agrees with (the earlier a configuration, the better):
    then ASHA's promotions do not depend on when results arrive, only on its rule."""
    return 1.0 - SPACE.choices["learning_rate"].index(point["learning_rate"]) / 100 + point["epochs"] / 1000


def test_grouped_asha_promotes_exactly_what_ungrouped_asha_promotes_on_the_same_results():
    ungrouped = run_groups_to_end(scheduler(), workers=3, size=1, quality_of=ranked_by_order)
    grouped = run_groups_to_end(scheduler(), workers=2, size=4, quality_of=ranked_by_order)
    assert search_path(grouped) == search_path(ungrouped)
    assert max(len(group) for group in grouped) == 4 and len(grouped) < len(ungrouped)


def test_a_group_holds_one_shape_and_never_waits_to_fill():
    groups = run_groups_to_end(scheduler(), workers=2, size=4, order=lambda running: len(running) - 1)
    for group in groups:
        assert len({shape_of(point) for point in group}) == 1 and 1 <= len(group) <= 4
    assert any(len(group) < 4 for group in groups)  # a lone promotion goes out alone
    trained = [point for group in groups for point in group]
    assert len({p["identifier"] for p in trained}) == len(trained)
    promoted_parents = [p["resume_from"] for p in trained if p["resume_from"]]
    assert len(promoted_parents) == len(set(promoted_parents))
    for architecture, best in (("rnn", 0.016), ("gru", 0.064)):
        assert best in {p["learning_rate"] for p in trained if p["architecture"] == architecture and p["epochs"] == 9}


def bracket_starts(space, **kwargs):
    asha = AshaScheduler(space.configurations({"batch_size": 32}), seed=0, budgets=[1, 3, 9], eta=3,
                         finalist_replicates=1, brackets=2)
    trained = run_to_end(asha, **kwargs)
    return trained, {(p["architecture"], p["learning_rate"]): p["epochs"] for p in trained if not p["resume_from"]}


def test_brackets_start_each_configuration_at_its_own_rung_whatever_order_the_space_lists():
    trained, starts = bracket_starts(SPACE, workers=3)
    rates = SPACE.choices["learning_rate"]
    listed_backwards = SearchSpace.model_validate({"choices": {**SPACE.choices, "learning_rate": rates[::-1]}})
    assert bracket_starts(listed_backwards, workers=3)[1] == starts  # the bracket follows the configuration
    assert len(starts) == 18 and sorted(Counter(starts.values()).items())[0][1] >= 5  # both brackets used
    for point in trained:  # a promotion stays in its bracket: its chain starts at that bracket's rung
        root = point
        while root["resume_from"]:
            root = next(p for p in trained if p["identifier"] == root["resume_from"])
        assert root["epochs"] == starts[(root["architecture"], root["learning_rate"])]


def test_a_grouped_search_with_brackets_promotes_below_eta_only_once_its_competition_started():
    """A rung holding fewer than eta results promotes nobody by ASHA's rule; only the closing
    promotion does, once every configuration of its competition (group and bracket) has started
    (not while a group of another shape holds one of them back)."""
    asha = AshaScheduler(SPACE.configurations({"batch_size": 32}), seed=0, budgets=[1, 3, 9], eta=3,
                         finalist_replicates=1, brackets=2)
    competition = {(c["architecture"], c["learning_rate"]): (c["architecture"], asha._bracket(c))
                   for c in SPACE.configurations({"batch_size": 32})}
    results, started = Counter(), Counter()
    while group := asha.next_group(4):
        for point in group:
            key = competition[(point["architecture"], point["learning_rate"])]
            if not point["resume_from"]:
                started[key] += 1
            elif results[(key, asha.issued[point["resume_from"]]["epochs"])] < 3:  # a closing promotion
                assert started[key] == list(competition.values()).count(key), point
        for point in group:
            key = competition[(point["architecture"], point["learning_rate"])]
            results[(key, point["epochs"])] += point["replicate"] == 0
            asha.record(point["identifier"], "ok", quality(point), float("nan"))


def test_resume_of_a_search_with_many_finalist_replicates_hands_out_nothing_again():
    """Restored, every finalist replicate already trained is passed over in a loop, not by
    recursion (a study's 10 replicates of its finalists run into the thousands)."""
    full = run_to_end(scheduler(replicates=1500), workers=8)
    resumed = scheduler(replicates=1500)
    resumed.restore(full, [("ok", quality(p), float("nan")) for p in full])
    assert resumed.next_point() is None


def test_resume_of_a_grouped_search_repeats_nothing():
    full = [point for group in run_groups_to_end(scheduler(), workers=2, size=4) for point in group]
    first_half = full[: len(full) // 2]
    resumed = scheduler()
    resumed.restore(first_half, [("ok", quality(p), float("nan")) for p in first_half])
    rest = [point for group in run_groups_to_end(resumed, workers=2, size=4) for point in group]
    assert not {p["identifier"] for p in first_half} & {p["identifier"] for p in rest}
    chains = [p["resume_from"] for p in first_half + rest if p["resume_from"]]
    assert len(chains) == len(set(chains))  # no promotion twice


def full_budget_means(trained, quality_of=quality):
    """Per (architecture, learning rate) the scores at the full budget, as the analysis averages them."""
    scores = {}
    for point in trained:
        if point["epochs"] == 9:
            scores.setdefault((point["architecture"], point["learning_rate"]), []).append(quality_of(point))
    return scores


def test_leader_replicates_only_the_group_leader_after_its_chains_ended_and_spends_fewer_epochs():
    """replicate_finalists: leader: once a group's chains have all ended, only its finalist with the
    best full-budget score gets the further replicates; the others stay at their chain (replicate 0)."""
    every = run_to_end(scheduler(replicates=3))
    leader = run_to_end(scheduler(replicates=3, replicate_finalists="leader"))
    assert search_path([[p for p in every if p["replicate"] == 0]]) == search_path([[p for p in leader
                                                                                   if p["replicate"] == 0]])
    finalists = full_budget_means(leader)
    assert sum(arch == "gru" for arch, _ in finalists) == 3  # asynchronous: several finalists in a group
    for architecture, best in (("rnn", 0.016), ("gru", 0.064)):
        scores = {lr: values for (arch, lr), values in finalists.items() if arch == architecture}
        assert len(scores[best]) == 3  # the leader: its chain and 2 replicates
        assert all(len(values) == 1 for lr, values in scores.items() if lr != best)
        chains_ended = max(i for i, p in enumerate(leader) if p["architecture"] == architecture and p["replicate"] == 0)
        assert all(i > chains_ended for i, p in enumerate(leader) if p["architecture"] == architecture
                   and p["replicate"] > 0)
    epochs = [sum(p["epochs"] - issued_epochs(trained, p) for p in trained) for trained in (every, leader)]
    assert epochs[1] < epochs[0]


def chain_beats_its_replicates(point):
    """The best configuration's replicates score far below its chain: another finalist overtakes it."""
    value = quality(point)
    return value - 0.5 if point["replicate"] > 0 and point["learning_rate"] in (0.016, 0.064) else value


def test_leader_replicates_a_finalist_that_overtakes_the_leader_so_the_choice_has_every_replicate():
    trained = run_to_end(scheduler(replicate_finalists="leader"), quality_of=chain_beats_its_replicates)
    scores = {lr: values for (arch, lr), values in full_budget_means(trained, chain_beats_its_replicates).items()
              if arch == "gru"}  # 3 finalists (rnn has 1)
    replicated = {lr for lr, values in scores.items() if len(values) == 2}
    assert len(scores) == 3 and 0.064 in replicated and len(replicated) == 2  # the first leader, then its overtaker
    assert max(scores, key=lambda lr: np.mean(scores[lr])) in replicated  # the group's choice
    assert len({p["identifier"] for p in trained}) == len(trained)


def test_resume_of_a_leader_search_repeats_nothing_and_then_is_over():
    settings = GEN_SETTINGS.model_copy(update={"asha": GEN_SETTINGS.asha.model_copy(
        update={"replicate_finalists": "leader"})})
    full = run_to_end(scheduler(replicate_finalists="leader"))
    for cut in (len(full) // 2, len(full) - 1):
        resumed = scheduler(replicate_finalists="leader")
        resumed.restore(full[:cut], [("ok", quality(p), float("nan")) for p in full[:cut]])
        rest = run_to_end(resumed)
        assert not {p["identifier"] for p in full[:cut]} & {p["identifier"] for p in rest}
        assert {p["identifier"] for p in full[:cut] + rest} == {p["identifier"] for p in full}
    for order, point in enumerate(full):
        point.update(status="ok", val_accuracy=quality(point), val_loss=float("nan"), sim_ended_time=float(order))
    results = [("status", "U8"), ("val_accuracy", "f8"), ("val_loss", "f8"), ("sim_ended_time", "f8")]
    H = to_array(full, point_dtype() + results)
    assert search_is_over(settings, H)
    assert not search_is_over(settings, H[:-1])  # the last leader's replicate is still to train


def test_grouped_leader_search_trains_what_an_ungrouped_one_does():
    ungrouped = run_groups_to_end(scheduler(replicate_finalists="leader", brackets=2), workers=3, size=1,
                                  quality_of=ranked_by_order)
    grouped = run_groups_to_end(scheduler(replicate_finalists="leader", brackets=2), workers=2, size=4,
                                quality_of=ranked_by_order)
    assert search_path(grouped) == search_path(ungrouped)
    assert sum(p["replicate"] for group in grouped for p in group) == 2  # one leader per architecture
