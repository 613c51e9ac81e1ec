"""Generators: stable identifiers and seeds, random sampling, and streaming in batches."""

import numpy as np
import pytest
from libensemble.message_numbers import EVAL_GEN_TAG, FINISHED_PERSISTENT_GEN_TAG, PERSIS_STOP

from generators.grid import grid_points, persistent_grid
from generators.points import identify
from generators.random_sampler import random_points
from generators.settings import GenSettings
from hypers.fields import point_dtype
from hypers.space import SearchSpace

SPACE = SearchSpace.model_validate(
    {"choices": {"architecture": ["rnn", "lstm", "gru"], "dataset": ["digits", "adding"], "hidden_dim": [8, 16]}}
)
DEFAULTS = {"epochs": 2, "batch_size": 32}


def test_identifiers_are_unique_and_the_same_in_every_run():
    first = list(grid_points(SPACE, 3, seed=1, defaults=DEFAULTS))
    again = list(grid_points(SPACE, 3, seed=1, defaults=DEFAULTS))
    assert len(first) == 36
    assert len({p["identifier"] for p in first}) == 36
    assert [p["identifier"] for p in first] == [p["identifier"] for p in again]
    assert [p["seed"] for p in first] == [p["seed"] for p in again]
    other_seed = list(grid_points(SPACE, 3, seed=2, defaults=DEFAULTS))
    assert not {p["identifier"] for p in first} & {p["identifier"] for p in other_seed}


def test_identifier_ignores_field_order_but_not_values():
    configuration = next(SPACE.configurations(DEFAULTS))
    reordered = dict(reversed(list(configuration.items())))
    assert identify(configuration, 0, 0) == identify(reordered, 0, 0)
    assert identify(configuration, 0, 0) != identify({**configuration, "learning_rate": 0.5}, 0, 0)
    assert identify(configuration, 0, 0) != identify(configuration, 1, 0)


def test_random_sampler_draws_distinct_allowed_configurations_reproducibly():
    points = list(random_points(SPACE, samples=5, replicates=2, seed=3, defaults=DEFAULTS))
    assert len(points) == 10
    configurations = {(p["architecture"], p["dataset"], p["hidden_dim"]) for p in points}
    assert len(configurations) == 5
    assert points == list(random_points(SPACE, samples=5, replicates=2, seed=3, defaults=DEFAULTS))
    with pytest.raises(ValueError, match="only 12"):
        list(random_points(SPACE, samples=13, replicates=1, seed=3, defaults=DEFAULTS))


class ScriptedManager:
    """Stands in for libEnsemble's manager on the generator's comm: returns ``returns[i]``
    results after the i-th batch, then says stop once nothing is left to say; records every
    batch the generator sent."""

    def __init__(self, returns):
        self.returns = list(returns)
        self.batches = []
        self.inbox = []

    def send(self, tag, message):
        self.batches.append(message["calc_out"])
        if self.returns:
            count = self.returns.pop(0)
            rows = np.zeros(count, dtype=[("sim_id", int)])
            self.inbox += [(EVAL_GEN_TAG, {"libE_info": {"H_rows": list(range(count))}}), (EVAL_GEN_TAG, rows)]

    def recv(self):
        return self.inbox.pop(0) if self.inbox else (PERSIS_STOP, None)

    def push_to_buffer(self, tag, message):
        self.inbox.insert(0, (tag, message))


def test_grid_streams_one_new_point_per_returned_result():
    manager = ScriptedManager(returns=[1, 2, 3, 5, 4])
    settings = GenSettings(space=SPACE, replicates=1, seed=0, defaults=DEFAULTS, initial_batch=4)
    gen_specs = {"out": point_dtype(), "user": {"settings": settings}}
    *_, tag = persistent_grid(None, {}, gen_specs, {"comm": manager, "executor": None})
    assert tag == FINISHED_PERSISTENT_GEN_TAG
    assert [len(batch) for batch in manager.batches] == [4, 1, 2, 3, 2]  # 12 points: the last batch is the rest
    streamed = np.concatenate(manager.batches)
    expected = list(grid_points(SPACE, 1, 0, DEFAULTS))
    assert list(streamed["identifier"]) == [p["identifier"] for p in expected]


class GroupAnsweringManager(ScriptedManager):
    """A manager whose workers finish one group (the points of one priority) per receive, oldest
    first, until nothing is in flight; then it says stop."""

    def __init__(self):
        super().__init__(returns=[])
        self.in_flight = []

    def send(self, tag, message):
        batch = message["calc_out"]
        self.batches.append(batch)
        self.in_flight += [batch[batch["priority"] == p] for p in sorted(set(batch["priority"]), reverse=True)]

    def recv(self):
        if not self.inbox and self.in_flight:
            group = self.in_flight.pop(0)
            self.inbox += [(EVAL_GEN_TAG, {"libE_info": {"H_rows": list(range(len(group)))}}),
                           (EVAL_GEN_TAG, np.zeros(len(group), dtype=[("sim_id", int)]))]
        return super().recv()


@pytest.mark.parametrize("workers", [1, 3])
def test_grouped_stream_hands_out_every_point_in_whole_groups(workers):
    from generators.grouping import LOOKAHEAD_GROUPS
    from generators.points import make_point
    from generators.streaming import stream_points

    base = {**DEFAULTS, "architecture": "rnn", "dataset": "digits", "permute": False, "pad": 0, "orientation": "none",
            "learning_rate": 1e-3}
    # many lone shapes first: the look-ahead releases them as groups of 1 ahead of the full groups of 4
    lone = [make_point({**base, "hidden_dim": h}, 0, 0) for h in range(1, 4 * LOOKAHEAD_GROUPS + 3)]
    full = [make_point({**base, "hidden_dim": 100 + h}, r, 0) for h in range(5) for r in range(4)]
    manager = GroupAnsweringManager()
    settings = GenSettings(space=SPACE, replicates=1, seed=0, defaults=DEFAULTS, initial_batch=workers, group_size=4)
    dtype = point_dtype() + [("priority", "f8")]
    *_, tag = stream_points(iter(lone + full), settings, dtype, {"comm": manager, "executor": None}, {})
    assert tag == FINISHED_PERSISTENT_GEN_TAG
    streamed = np.concatenate(manager.batches)
    assert sorted(streamed["identifier"]) == sorted(p["identifier"] for p in lone + full)
    for priority in set(streamed["priority"]):  # a group: up to 4 points of one shape, sent together
        group = streamed[streamed["priority"] == priority]
        assert 1 <= len(group) <= 4 and len(set(group["hidden_dim"])) == 1
        assert sum(priority in batch["priority"] for batch in manager.batches) == 1
