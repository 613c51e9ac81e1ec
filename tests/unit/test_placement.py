"""GPU slots: trainings packed k per GPU, never beyond the node's GPUs."""

import pytest

from simulators import placement
from simulators.placement import Allotment, PlacementError, gpu_memory_environment, gpus_of_slot


def test_slots_map_onto_gpus_packed_k_per_gpu():
    assert [gpus_of_slot(s, 1, 2, 4) for s in range(8)] == [(0,), (0,), (1,), (1,), (2,), (2,), (3,), (3,)]
    assert [gpus_of_slot(s, 2, 1, 4) for s in range(2)] == [(0, 1), (2, 3)]
    assert gpus_of_slot(3, 0, 1, 0) == ()
    with pytest.raises(PlacementError, match="a node has 4"):
        gpus_of_slot(8, 1, 2, 4)


def test_a_training_sharing_a_gpu_takes_its_slice_of_the_memory_up_front(monkeypatch):
    """Uncapped, each JAX process may grow to 75% of the GPU; capped but growing on demand, its
    regions fragment the slice: four sharing an H200 ran out of memory either way."""
    monkeypatch.setattr(placement, "USERS_OWN", {})
    quarter = Allotment(node="n", slot=1, gpus=(0,), threads=4, gpu_share=0.25)
    assert quarter.environment("CUDA_VISIBLE_DEVICES") == {
        "OMP_NUM_THREADS": "4", "CUDA_VISIBLE_DEVICES": "0", "XLA_PYTHON_CLIENT_PREALLOCATE": "true",
        "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    # no GPU, or no share known: on demand, whatever the number of trainings sharing a GPU
    on_demand = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    assert gpu_memory_environment(None, {}) == on_demand
    assert Allotment(node="n", slot=0, gpus=(), threads=4).environment("X") == {"OMP_NUM_THREADS": "4", **on_demand}


def test_a_users_own_memory_settings_win_jaxs_two_as_one():
    """Theirs and ours mixed could grow on demand in a slice, or preallocate more than the GPU has."""
    assert gpu_memory_environment(0.25, {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}) == {
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    theirs = {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.1", "TF_FORCE_GPU_ALLOW_GROWTH": "false"}
    assert gpu_memory_environment(0.25, theirs) == theirs
