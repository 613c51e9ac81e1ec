"""Run an ensemble of recurrent-network trainings with libEnsemble.

    python run_ensemble.py                                   # ensembles/quick.yaml, local comms
    python run_ensemble.py --spec ensembles/gen_sweep.yaml --dry-run
    mpirun -np 129 python run_ensemble.py --spec ensembles/gen_sweep.yaml   # MPI comms: 1 manager + 128 workers
    python run_ensemble.py --resume runs/quick               # continue a stopped run
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from ensembles.loading import DEFAULT_SPEC, SpecError, check_datasets, load_spec, spec_yaml
from ensembles.orphans import watch_from_forked_workers, watch_manager
from ensembles.ownership import LOCK_FILE, RunLock, RunLocked, acquire
from ensembles.resource_plan import resource_plan
from ensembles.resume import ResumeError, as_initial_history, finished_rows
from ensembles.run_dir import SPEC_FILE, RunDirError, create_run_dir, save_history


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

# What a resumed run may change: how it runs, not which trainings it holds.
RESUMABLE_OVERRIDES = (
    "exit_criteria.", "allocator.", "resources.", "simulator.timeout", "simulator.retries", "simulator.threads",
    "simulator.engine", "simulator.trainings_per_process",
    "simulator.gpus_per_sim", "simulator.sims_per_gpu", "simulator.group_size",  # a resumed job may run on another machine
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="ensemble spec (YAML); default %(default)s")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a spec field, e.g. --set generator.replicates=3 (repeatable)")
    parser.add_argument("--comms", choices=("local", "mpi"),
                        help="libEnsemble comms; default the spec's, else mpi when started by an MPI launcher on several ranks")
    parser.add_argument("--nworkers", type=int, help="sim workers with local comms; default: cores")
    parser.add_argument("--out", help="run directory; default runs/<name>")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved spec and the point count, train nothing")
    parser.add_argument("--nodes", type=int, default=1, help="with --dry-run: nodes to plan for (default 1)")
    parser.add_argument("--sim-seconds", type=float, help="with --dry-run: seconds per training, for a node-hour estimate")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue the study in RUN_DIR with its own spec: finished trainings are kept")
    return parser.parse_args(argv)


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


def choose_comms(spec, given: str | None, resume: bool) -> tuple[str, str]:
    """--comms wins, then the comms a spec names, then the launcher's: ``mpirun -np 129 python
    run_ensemble.py`` needs no flag. A resumed run's spec.yaml records the comms it last ran with,
    not a choice (a resumed job may run on another machine), so there the launcher decides."""
    if given:
        return given, "--comms"
    if "comms" in spec.model_fields_set and not resume:
        return spec.comms, "the spec"
    return launched_comms(os.environ)


def study_is_finished(spec, finished) -> bool:
    """Whether earlier runs did everything: ``sim_max`` trainings, every point of a fixed study,
    or, for asha (whose point count is only an upper bound), a search that would hand out nothing
    more: no promotion, finalist replicate or new configuration left."""
    if spec.exit_criteria.sim_max and len(finished) >= spec.exit_criteria.sim_max:
        return True
    if not spec.adaptive:
        return len(finished) >= spec.count_points()
    from ensembles.libe_inputs import generator_options
    from generators.asha import search_is_over

    return search_is_over(generator_options(spec, 1, finished["identifier"]), finished)


def _mpi_comm(comms: str):
    if comms != "mpi":
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


def _prepare_run_dir(spec, comm, resume: bool) -> tuple[Path | None, str | None]:
    """The manager creates the run dir (a resumed run has one); under MPI every rank learns
    whether that worked."""
    run_dir, error = None, None
    if resume:
        return Path(spec.out).resolve(), None
    if comm is None or comm.Get_rank() == 0:
        try:
            run_dir = create_run_dir(Path(spec.out or f"runs/{spec.name}"), spec_yaml(spec))
        except RunDirError as problem:
            error = str(problem)
    if comm is not None:
        run_dir, error = comm.bcast((run_dir, error), root=0)
    return run_dir, error


def _own_run_dir(run_dir: Path, comm) -> tuple[RunLock | None, str | None]:
    """The manager's lock on the run dir (``ensembles/ownership.py``), or why another manager's
    holds it; every worker watches that manager and ends with it (``ensembles/orphans.py``).
    Under MPI every rank learns the holder, or the refusal."""
    lock, error = None, None
    if comm is None or comm.Get_rank() == 0:
        try:
            lock = acquire(run_dir)
        except RunLocked as refused:
            error = str(refused)
    if comm is None:
        if lock is not None:
            watch_from_forked_workers(lock.record, lock.path)
        return lock, error
    record, error = comm.bcast((lock.record if lock else None, error), root=0)
    if comm.Get_rank() != 0 and record is not None:
        watch_manager(record, run_dir / LOCK_FILE)
    return lock, error


def make_executor(launch: str):
    """libEnsemble's executor for the trainer: a local subprocess on one node; on several nodes
    mpiexec/srun onto the node of the worker's resource set (where its GPUs are)."""
    from libensemble.executors import Executor, MPIExecutor
    from libensemble.resources.env_resources import EnvResources
    from libensemble.resources.resources import GlobalResources

    if launch == "auto":
        nodes = GlobalResources.get_global_nodelist(env_resources=EnvResources())
        launch = "mpi" if len(nodes) > 1 else "local"
    return MPIExecutor() if launch == "mpi" else Executor()


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # inline trainings inherit it
    args = parse_args(argv)
    spec_path, out = (args.resume / SPEC_FILE, str(args.resume)) if args.resume else (args.spec, args.out)
    changes_points = [o for o in args.overrides if not o.startswith(RESUMABLE_OVERRIDES)]
    if args.resume and changes_points:
        print(f"error: --resume runs the study as its spec.yaml says; only {', '.join(RESUMABLE_OVERRIDES)}* "
              f"may be changed with --set, not {changes_points}", file=sys.stderr)
        return 2
    try:
        spec = load_spec(spec_path, args.overrides, comms=args.comms, nworkers=args.nworkers, out=out)
        check_datasets(spec)
    except SpecError as error:
        if not (args.dry_run and error.missing_data):
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"warning: {error}", file=sys.stderr)  # a plan can be made before the data is fetched
    comms, why = choose_comms(spec, args.comms, resume=bool(args.resume))
    spec = spec.model_copy(update={"comms": comms})
    if args.dry_run:
        print(spec_yaml(spec), end="")
        if spec.adaptive:
            print(f"asha: {spec.space.count_configurations()} configurations, rungs of {spec.budgets} epochs")
            print(f"at most {spec.count_points()} points")
        else:
            print(f"{spec.count_points()} points")
        print(resource_plan(spec, args.nodes, args.nworkers, args.sim_seconds))
        return 0

    # The scheduler's pre-walltime warning may reach every rank: only the manager acts on it
    # (it saves H); workers and their trainings, forked or started after this, ignore it.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    comm = _mpi_comm(spec.comms)
    run_dir, error = _prepare_run_dir(spec, comm, resume=bool(args.resume))
    # One run, one manager: it locks the run dir before reading its history, its workers end with it
    lock, error = _own_run_dir(run_dir, comm) if error is None else (None, error)
    try:
        return _run_owned(args, spec, comm, run_dir, error, why)
    finally:
        if lock is not None:
            lock.release()


def _run_owned(args: argparse.Namespace, spec, comm, run_dir: Path | None, error: str | None, why: str) -> int:
    """The run, once its manager owns the run directory (or every rank knows why not)."""
    comms, is_manager = spec.comms, comm is None or comm.Get_rank() == 0
    try:
        finished = finished_rows(run_dir) if args.resume else None
    except ResumeError as problem:
        error = str(problem)
    if error:
        if is_manager:
            print(f"error: {error}", file=sys.stderr)
        return 2
    if finished is not None and study_is_finished(spec, finished):
        if is_manager:
            print(f"{run_dir} is already finished ({len(finished)} trainings); nothing to do.")
        return 0
    sim_workers = comm.Get_size() - 1 if comm else (spec.nworkers or os.cpu_count() or 1)
    if sim_workers < 1:
        print("error: MPI needs at least 2 ranks (1 manager + workers)", file=sys.stderr)
        return 2
    if is_manager:
        done = f", {len(finished)} trainings finished earlier" if finished is not None else ""
        print(f"taskgen: {spec.name} in {run_dir}{done}: {sim_workers} workers, comms {comms} ({why})", flush=True)

    from libensemble import logger
    from libensemble.libE import libE

    from allocators.persistent import keeper_of
    from ensembles.libe_inputs import libe_inputs
    from simulators.sim import TRAINER_SCRIPT
    from simulators.warm_trainer import TRAINER_APP

    logger.set_directory(str(run_dir))
    executor = make_executor(spec.resources.launch)
    executor.register_app(full_path=str(TRAINER_SCRIPT), app_name=TRAINER_APP, precedent=sys.executable)
    executor.wait_time = 10  # seconds between SIGTERM and SIGKILL for a timed-out training
    H0 = as_initial_history(finished) if finished is not None else None
    try:
        H, _, exit_flag = libE(**libe_inputs(spec, run_dir, spec.comms, sim_workers, H0))
    except BaseException:
        keeper = keeper_of(run_dir)
        if keeper is not None:
            keeper.save()
        raise
    if not is_manager:
        return 0

    from ensembles.summary import print_summary

    print_summary(H, save_history(run_dir, H))
    target = min(spec.exit_criteria.sim_max or spec.count_points(), spec.count_points())
    if exit_flag or not H["sim_ended"].all() or (len(H) < target and not spec.adaptive):
        print(f"Stopped early (exit flag {exit_flag}); continue with: python run_ensemble.py --resume {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
