"""GPU slots: trainings packed k per GPU, never beyond the node's GPUs."""

import pytest

from simulators.placement import Allotment, PlacementError, gpus_of_slot


def test_slots_map_onto_gpus_packed_k_per_gpu():
    assert [gpus_of_slot(s, 1, 2, 4) for s in range(8)] == [(0,), (0,), (1,), (1,), (2,), (2,), (3,), (3,)]
    assert [gpus_of_slot(s, 2, 1, 4) for s in range(2)] == [(0, 1), (2, 3)]
    assert gpus_of_slot(3, 0, 1, 0) == ()
    with pytest.raises(PlacementError, match="a node has 4"):
        gpus_of_slot(8, 1, 2, 4)


def test_a_training_sharing_a_gpu_is_capped_at_its_share_of_the_memory(monkeypatch):
    """Uncapped, each JAX process may grow to 75% of the GPU: four sharing one ran out of memory."""
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    quarter = Allotment(node="n", slot=1, gpus=(0,), threads=4, gpu_share=0.25)
    assert quarter.environment("CUDA_VISIBLE_DEVICES") == {
        "OMP_NUM_THREADS": "4", "CUDA_VISIBLE_DEVICES": "0", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225"}
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in Allotment(node="n", slot=0, gpus=(), threads=4).environment("X")
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.1")  # a user's own cap wins
    assert quarter.environment("CUDA_VISIBLE_DEVICES")["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.1"
