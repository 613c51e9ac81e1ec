"""Which comms a run uses: --comms, then the spec's, then the MPI launcher's ranks."""

import pytest

from ensembles.comms import choose_comms, launched_comms
from ensembles.loading import load_spec


@pytest.mark.parametrize("environ, comms", [
    ({"PMI_SIZE": "129", "PMI_RANK": "5"}, "mpi"),  # mpich's Hydra mpirun (also Slurm's srun --mpi=pmi2)
    ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "0"}, "mpi"),  # Open MPI
    ({"PMI_SIZE": "1", "PMI_RANK": "0"}, "local"),  # mpirun -np 1: no workers over MPI
    ({"SLURM_NTASKS": "8", "SLURM_PROCID": "0"}, "local"),  # a Slurm batch shell is not a rank
    ({}, "local"),
])
def test_comms_follow_the_mpi_launcher(environ, comms):
    assert launched_comms(environ)[0] == comms


def test_given_comms_win_over_the_launcher_but_a_resumed_runs_recorded_comms_do_not(write_spec, monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "3")
    spec = load_spec(write_spec())
    assert choose_comms(spec, None, resume=False) == ("mpi", "PMI_SIZE=3")
    assert choose_comms(spec, "local", resume=False) == ("local", "--comms")
    named = load_spec(write_spec(comms="local"))
    assert choose_comms(named, None, resume=False) == ("local", "the spec")
    assert choose_comms(named, None, resume=True) == ("mpi", "PMI_SIZE=3")  # spec.yaml records every field
