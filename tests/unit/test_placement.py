"""GPU slots: trainings packed k per GPU, never beyond the node's GPUs."""

import pytest

from simulators.placement import PlacementError, gpus_of_slot


def test_slots_map_onto_gpus_packed_k_per_gpu():
    assert [gpus_of_slot(s, 1, 2, 4) for s in range(8)] == [(0,), (0,), (1,), (1,), (2,), (2,), (3,), (3,)]
    assert [gpus_of_slot(s, 2, 1, 4) for s in range(2)] == [(0, 1), (2, 3)]
    assert gpus_of_slot(3, 0, 1, 0) == ()
    with pytest.raises(PlacementError, match="a node has 4"):
        gpus_of_slot(8, 1, 2, 4)
