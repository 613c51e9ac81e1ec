"""Which libEnsemble comms a run uses: the flag, the spec, or the MPI launcher that started it."""

from __future__ import annotations

import os

from ensembles.schema import EnsembleSpec

# What MPI launchers set in every rank they start (mpich's Hydra mpirun checked here, the others
# from their documentation): the world's size where they give it, else only a rank, and then MPI
# itself is asked for the size. Slurm's srun sets PMI_SIZE (--mpi=pmi2, cray_shasta) or PMIX_RANK
# (--mpi=pmix); its own SLURM_* variables are also set in the batch shell, so they prove nothing.
WORLD_SIZE_VARIABLES = (
    "PMI_SIZE",  # mpich/Hydra mpirun and mpiexec, Intel MPI, Cray PMI
    "OMPI_COMM_WORLD_SIZE",  # Open MPI's mpirun
)
RANK_VARIABLES = (
    "PMIX_RANK",  # PMIx launchers: Open MPI 5's prterun, srun --mpi=pmix
    "PALS_RANKID",  # Cray PALS mpiexec (Polaris, Aurora)
    "ALPS_APP_PE",  # Cray ALPS aprun (Theta)
)


def launched_comms(environ: dict[str, str]) -> tuple[str, str]:
    """The comms an MPI launcher asks for: mpi when it started this process as one of several
    ranks (every rank reads the same answer), else local; and the evidence, for the startup line."""
    for name in WORLD_SIZE_VARIABLES:
        if environ.get(name, "").isdigit():
            size = int(environ[name])
            return ("mpi" if size > 1 else "local"), f"{name}={size}"
    for name in RANK_VARIABLES:
        if name in environ:
            try:
                from mpi4py import MPI
            except ImportError:  # a plain run inside a launcher's step, without MPI installed
                return "local", f"{name} set, no mpi4py"
            size = MPI.COMM_WORLD.Get_size()
            return ("mpi" if size > 1 else "local"), f"{name} set, {size} MPI ranks"
    return "local", "no MPI launcher"


def choose_comms(spec: EnsembleSpec, given: str | None, resume: bool) -> tuple[str, str]:
    """--comms wins, then the comms a spec names, then the launcher's: ``mpirun -np 129 python
    run_ensemble.py`` needs no flag. A resumed run's spec.yaml records the comms it last ran with,
    not a choice (a resumed job may run on another machine), so there the launcher decides."""
    if given:
        return given, "--comms"
    if "comms" in spec.model_fields_set and not resume:
        return spec.comms, "the spec"
    return launched_comms(os.environ)
