"""Run an ensemble of recurrent-network trainings with libEnsemble.

    python run_ensemble.py                                   # ensembles/quick.yaml, local comms
    python run_ensemble.py --spec ensembles/gen_sweep.yaml --dry-run
    mpirun -np 129 python run_ensemble.py --spec ensembles/gen_sweep.yaml   # MPI comms: 1 manager + 128 workers
    python run_ensemble.py --resume runs/quick               # continue a stopped run

Three steps, one function each: ``prepare`` (arguments, spec, comms, run directory, what earlier
runs finished), ``run`` (libEnsemble's ``libE()``: workers train, the manager watches the
history) and ``report`` (the history saved, a summary printed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensembles.comms import choose_comms
from ensembles.loading import DEFAULT_SPEC, SpecError, check_datasets, load_spec, spec_yaml
from ensembles.orphans import watch_from_forked_workers, watch_manager
from ensembles.ownership import RunLocked, acquire
from ensembles.resource_plan import resource_plan
from ensembles.resume import ResumeError, as_initial_history, finished_rows
from ensembles.schema import EnsembleSpec
from simulators.run_dir import RunDir, RunDirError

# What a resumed run may change: how it runs, not which trainings it holds.
RESUMABLE_OVERRIDES = (
    "exit_criteria.", "allocator.", "resources.", "simulator.timeout", "simulator.retries", "simulator.threads",
    "simulator.engine", "simulator.trainings_per_process",
    # a resumed job may run on another machine
    "simulator.gpus_per_sim", "simulator.sims_per_gpu", "simulator.group_size",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="ensemble spec (YAML); default %(default)s")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a spec field, e.g. --set generator.replicates=3 (repeatable)")
    parser.add_argument("--comms", choices=("local", "mpi"),
                        help="libEnsemble comms; default the spec's, else mpi when started by an MPI launcher on "
                        "several ranks")
    parser.add_argument("--nworkers", type=int, help="sim workers with local comms; default: cores")
    parser.add_argument("--out", help="run directory; default runs/<name>")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the resolved spec and the point count, train nothing")
    parser.add_argument("--nodes", type=int, default=1, help="with --dry-run: nodes to plan for (default 1)")
    parser.add_argument("--sim-seconds", type=float,
                        help="with --dry-run: seconds per training, for a node-hour estimate")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue the study in RUN_DIR with its own spec: finished trainings are kept")
    return parser.parse_args(argv)


class Stop(Exception):
    """The command ends before training: with exit code ``code``, printing ``message`` (to
    stderr when the code is not 0; nothing when empty)."""

    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Prepared:
    """Everything a run needs, checked: the spec (comms resolved), its run directory, the workers,
    whether this process is the manager, and the trainings earlier runs finished (``--resume``)."""

    spec: EnsembleSpec
    run_dir: RunDir
    sim_workers: int
    is_manager: bool
    finished: np.ndarray | None


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # inline trainings inherit it
    with contextlib.ExitStack() as owned:  # the manager's lock on the run dir, released however main ends
        try:
            prepared = prepare(parse_args(argv), owned)
        except Stop as stop:
            if stop.message:
                print(stop.message, file=sys.stderr if stop.code else sys.stdout)
            return stop.code
        H, exit_flag = run(prepared)
        return report(prepared, H, exit_flag)


def prepare(args: argparse.Namespace, owned: contextlib.ExitStack) -> Prepared:
    """The checked inputs of a run, or ``Stop``: a bad spec or run directory, or another manager
    running it (exit code 2), a dry run or a study earlier runs finished (0). The manager's lock
    on the run directory goes to ``owned``."""
    spec = load(args)
    comms, why = choose_comms(spec, args.comms, resume=bool(args.resume))
    spec = spec.model_copy(update={"comms": comms})
    if args.dry_run:
        raise Stop(0, dry_run_report(spec, args))
    # The scheduler's pre-walltime warning may reach every rank: only the manager acts on it
    # (it saves H); workers and their trainings, forked or started after this, ignore it.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    comm = _mpi_comm(spec.comms)
    is_manager = comm is None or comm.Get_rank() == 0
    run_dir, finished = _run_dir_and_finished(spec, comm, bool(args.resume), is_manager, owned)
    if finished is not None and study_is_finished(spec, finished):
        raise Stop(0, f"{run_dir.path} is already finished ({len(finished)} trainings); nothing to do."
                   if is_manager else "")
    sim_workers = comm.Get_size() - 1 if comm else (spec.nworkers or os.cpu_count() or 1)
    if sim_workers < 1:
        raise Stop(2, "error: MPI needs at least 2 ranks (1 manager + workers)")
    if is_manager:
        done = f", {len(finished)} trainings finished earlier" if finished is not None else ""
        print(f"taskgen: {spec.name} in {run_dir.path}{done}: {sim_workers} workers, comms {comms} ({why})",
              flush=True)
    return Prepared(spec, run_dir, sim_workers, is_manager, finished)


def load(args: argparse.Namespace) -> EnsembleSpec:
    """The validated spec: ``--spec`` with ``--set``, or a resumed run's own spec.yaml."""
    spec_path, out = (RunDir(args.resume).spec, str(args.resume)) if args.resume else (args.spec, args.out)
    changes_points = [o for o in args.overrides if not o.startswith(RESUMABLE_OVERRIDES)]
    if args.resume and changes_points:
        raise Stop(2, f"error: --resume runs the study as its spec.yaml says; only {', '.join(RESUMABLE_OVERRIDES)}* "
                      f"may be changed with --set, not {changes_points}")
    try:
        spec = load_spec(spec_path, args.overrides, comms=args.comms, nworkers=args.nworkers, out=out)
        check_datasets(spec)
    except SpecError as error:
        if not (args.dry_run and error.missing_data):
            raise Stop(2, f"error: {error}") from None
        print(f"warning: {error}", file=sys.stderr)  # a plan can be made before the data is fetched
    return spec


def run(prepared: Prepared) -> tuple[np.ndarray, int]:
    """libEnsemble's run. The manager watches the live history (progress line, periodic saves)
    and, from here on, answers SIGTERM, SIGINT and SIGUSR1 by saving it; so does an exception."""
    from libensemble import logger
    from libensemble.libE import libE

    from allocators.progress import ProgressReport
    from allocators.safekeeping import HistoryKeeper
    from ensembles.libe_inputs import libe_inputs
    from simulators.trainer_client import register_trainer

    spec, run_dir, finished = prepared.spec, prepared.run_dir, prepared.finished
    logger.set_directory(str(run_dir.path))
    register_trainer(make_executor(spec.resources.launch))
    H0 = as_initial_history(finished) if finished is not None else None
    keeper = HistoryKeeper(run_dir, spec.allocator.save_every) if prepared.is_manager else None
    watchers = ()
    if keeper is not None:
        total = None if spec.adaptive else spec.trainings_to_run()  # asha: the total depends on the results
        already = len(finished) if finished is not None else 0
        watchers = (ProgressReport(total, spec.allocator.progress_interval, already), keeper)
        keeper.install_signal_handlers()
    try:
        H, _, exit_flag = libE(**libe_inputs(spec, run_dir, prepared.sim_workers, H0, watchers))
    except BaseException:
        if keeper is not None:
            keeper.save()
        raise
    return H, exit_flag


def report(prepared: Prepared, H: np.ndarray, exit_flag: int) -> int:
    """The manager saves the history and prints the best results, how to upload offline W&B runs,
    and how to continue a run that stopped early."""
    if not prepared.is_manager:
        return 0
    from ensembles.summary import print_summary
    from simulators.tracking import sync_hint

    spec, run_dir = prepared.spec, prepared.run_dir
    print_summary(H, run_dir.save_history(H))
    hint = sync_hint(spec.simulator.tracking, run_dir)
    if hint:
        print(hint)
    if exit_flag or not H["sim_ended"].all() or (len(H) < spec.trainings_to_run() and not spec.adaptive):
        print(f"Stopped early (exit flag {exit_flag}); continue with: python run_ensemble.py --resume {run_dir.path}")
    return 0


def study_is_finished(spec, finished) -> bool:
    """Whether earlier runs did everything: ``sim_max`` trainings, every point of a fixed study,
    or, for asha (whose point count is only an upper bound), a search that would hand out nothing
    more: no promotion, finalist replicate or new configuration left."""
    if spec.exit_criteria.sim_max and len(finished) >= spec.exit_criteria.sim_max:
        return True
    if not spec.adaptive:
        return len(finished) >= spec.count_points()
    from ensembles.settings import generator_settings
    from generators.asha import search_is_over

    return search_is_over(generator_settings(spec), finished)


def dry_run_report(spec, args: argparse.Namespace) -> str:
    """What --dry-run prints: the resolved spec, the configurations dropped and why, the point
    count and the resource plan."""
    lines = [spec_yaml(spec).rstrip("\n")]
    for why, count in spec.space.dropped(spec.point_defaults).items():
        lines.append(f"dropped {count} configurations: {why}")
    if spec.adaptive:
        lines.append(f"asha: {spec.count_configurations()} configurations, rungs of {spec.budgets} epochs")
        lines.append(f"at most {spec.count_points()} points")
    else:
        lines.append(f"{spec.count_points()} points")
    lines.append(resource_plan(spec, args.nodes, args.nworkers, args.sim_seconds))
    return "\n".join(lines)


def _mpi_comm(comms: str):
    if comms != "mpi":
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD


def _prepare_run_dir(spec, comm, resume: bool) -> tuple[RunDir | None, str | None]:
    """The manager creates the run dir (a resumed run has one); under MPI every rank learns
    whether that worked."""
    run_dir, error = None, None
    if resume:
        return RunDir(Path(spec.out).resolve()), None
    if comm is None or comm.Get_rank() == 0:
        try:
            run_dir = RunDir.create(Path(spec.out or f"runs/{spec.name}"), spec_yaml(spec))
        except RunDirError as problem:
            error = str(problem)
    if comm is not None:
        run_dir, error = comm.bcast((run_dir, error), root=0)
    return run_dir, error


def _run_dir_and_finished(spec: EnsembleSpec, comm, resume: bool, is_manager: bool,
                          owned: contextlib.ExitStack) -> tuple[RunDir, np.ndarray | None]:
    run_dir, error = _prepare_run_dir(spec, comm, resume)
    if not error:  # one run, one manager: it locks the run dir before reading its history
        error = _own_run_dir(run_dir, comm, owned)
    finished = None
    if not error and resume:
        try:
            finished = finished_rows(run_dir)
        except ResumeError as problem:
            error = str(problem)
    if error:
        raise Stop(2, f"error: {error}" if is_manager else "")
    return run_dir, finished


def _own_run_dir(run_dir: RunDir, comm, owned: contextlib.ExitStack) -> str | None:
    """The manager takes the run dir's lock (``ensembles/ownership.py``), released by ``owned``;
    every worker watches that manager and ends with it (``ensembles/orphans.py``). Why another
    manager holds it, when one does: under MPI every rank learns it."""
    lock, error = None, None
    if comm is None or comm.Get_rank() == 0:
        try:
            lock = acquire(run_dir)
            owned.callback(lock.release)
        except RunLocked as refused:
            error = str(refused)
    if comm is None:
        if lock is not None:
            watch_from_forked_workers(lock.record, run_dir.lock)
        return error
    record, error = comm.bcast((lock.record if lock else None, error), root=0)
    if comm.Get_rank() != 0 and record is not None:
        watch_manager(record, run_dir.lock)
    return error


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


if __name__ == "__main__":
    sys.exit(main())
