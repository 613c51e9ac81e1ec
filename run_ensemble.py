"""Run an ensemble of recurrent-network trainings with libEnsemble.

    python run_ensemble.py                                   # ensembles/quick.yaml, local comms
    python run_ensemble.py --spec ensembles/gen_sweep.yaml --dry-run
    mpirun -np 129 python run_ensemble.py --spec ensembles/gen_sweep.yaml --comms mpi
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ensembles.loading import DEFAULT_SPEC, SpecError, check_datasets, load_spec, spec_yaml
from ensembles.run_dir import RunDirError, create_run_dir, save_history


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="ensemble spec (YAML); default %(default)s")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a spec field, e.g. --set generator.replicates=3 (repeatable)")
    parser.add_argument("--comms", choices=("local", "mpi"), help="libEnsemble comms; under mpirun use mpi")
    parser.add_argument("--nworkers", type=int, help="sim workers with local comms; default: cores")
    parser.add_argument("--out", help="run directory; default runs/<name>")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved spec and the point count, train nothing")
    return parser.parse_args(argv)


def _mpi_comm(comms: str):
    if comms != "mpi":
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


def _prepare_run_dir(spec, comm) -> tuple[Path | None, str | None]:
    """The manager creates the run dir; under MPI every rank learns whether that worked."""
    run_dir, error = None, None
    if comm is None or comm.Get_rank() == 0:
        try:
            run_dir = create_run_dir(Path(spec.out or f"runs/{spec.name}"), spec_yaml(spec))
        except RunDirError as problem:
            error = str(problem)
    if comm is not None:
        run_dir, error = comm.bcast((run_dir, error), root=0)
    return run_dir, error


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        spec = load_spec(args.spec, args.overrides, comms=args.comms, nworkers=args.nworkers, out=args.out)
        check_datasets(spec)
    except SpecError as error:
        if not (args.dry_run and error.missing_data):
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"warning: {error}", file=sys.stderr)  # a plan can be made before the data is fetched
    if args.dry_run:
        print(spec_yaml(spec), end="")
        print(f"{spec.count_points()} points")
        return 0

    comm = _mpi_comm(spec.comms)
    run_dir, error = _prepare_run_dir(spec, comm)
    if error:
        if comm is None or comm.Get_rank() == 0:
            print(f"error: {error}", file=sys.stderr)
        return 2
    sim_workers = comm.Get_size() - 1 if comm else (spec.nworkers or os.cpu_count() or 1)
    if sim_workers < 1:
        print("error: MPI needs at least 2 ranks (1 manager + workers)", file=sys.stderr)
        return 2

    from libensemble import logger
    from libensemble.executors.executor import Executor
    from libensemble.libE import libE

    from ensembles.libe_inputs import libe_inputs
    from simulators.sim import TRAINER_APP, TRAINER_SCRIPT

    logger.set_directory(str(run_dir))
    executor = Executor()
    executor.register_app(full_path=str(TRAINER_SCRIPT), app_name=TRAINER_APP, precedent=sys.executable)
    executor.wait_time = 10  # seconds between SIGTERM and SIGKILL for a timed-out training
    H, _, _ = libE(**libe_inputs(spec, run_dir, spec.comms, sim_workers))
    if comm is not None and comm.Get_rank() != 0:
        return 0

    from ensembles.summary import print_summary

    print_summary(H, save_history(run_dir, H))
    return 0


if __name__ == "__main__":
    sys.exit(main())
