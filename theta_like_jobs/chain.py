"""Job chains: a study longer than one walltime goes on in jobs that submit their own continuation.

    python -m theta_like_jobs.chain --run-dir RUN --max-jobs N --scheduler pbs --submit job-continue.sh

A script written with ``python -m theta_like_jobs ... --chain N`` runs this before its ensemble
starts. It submits the continuation script (``run_ensemble.py --resume RUN``) to start once this
job has ended, however it ended (PBS ``-W depend=afterany``, SLURM ``--dependency=afterany``,
Cobalt ``--dependencies``: ``continue_after`` in platforms.yaml), and records both jobs in
``RUN/chain.json``. Submitting first means a job killed at its walltime, or by a node failure,
still has its successor queued. It submits nothing, and says why, when the study is finished,
when the previous job of the chain recorded no training (a crash loop would spend the allocation
on jobs that fail), when the chain already has its N jobs, or when this job ran before (a
scheduler that requeues a job runs its script again under the same id).
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from simulators.records import write_json
from simulators.run_dir import RunDir
from theta_like_jobs.platforms import Scheduler, load_platforms

SUBMIT_TIMEOUT_S = 120


class ChainedJob(BaseModel):
    job_id: str = Field(description="The scheduler's id of this job.")
    started: str = Field(description="When its chain step ran (ISO 8601, the node's local time).")
    results: int = Field(description="Trainings with a recorded result (sims/*/result.json) when it started.")
    continuation: str | None = Field(None, description="The id of the job it submitted to continue the run.")
    stopped: str | None = Field(None, description="Why it submitted no continuation.")


class Chain(BaseModel):
    max_jobs: int = Field(ge=1, description="Jobs the chain may hold, its first included (--chain N).")
    jobs: list[ChainedJob] = Field(default_factory=list, description="Its jobs, in the order they ran.")


class ChainRecord(BaseModel):
    chains: list[Chain] = Field(default_factory=list, description="Every chain that ran this run directory.")


class ChainError(RuntimeError):
    pass


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m theta_like_jobs.chain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="the run directory the chain continues")
    parser.add_argument("--max-jobs", type=int, required=True, help="jobs the chain may hold, this one included")
    parser.add_argument("--scheduler", required=True, choices=list(load_platforms().schedulers))
    parser.add_argument("--submit", type=Path, required=True, metavar="SCRIPT", help="the continuation's job script")
    parser.add_argument("--new-run", action="store_true",
                        help="this job starts the run (--spec): a directory that already holds one is not its own")
    return parser.parse_args(argv)


def read_record(run_dir: RunDir) -> ChainRecord:
    path = run_dir.chain
    if not path.exists():
        return ChainRecord()
    try:
        return ChainRecord.model_validate_json(path.read_text())
    except ValidationError as error:
        raise ChainError(f"{path} is not a chain record ({error.errors()[0]['msg']}); "
                         "move it away to start afresh") from None


def recorded_results(run_dir: RunDir) -> int:
    """Trainings with a recorded outcome: what a job that made progress leaves, saved history or not."""
    return sum(1 for sim_dir in run_dir.sim_dirs() if sim_dir.result.exists())


def study_finished(run_dir: RunDir) -> str | None:
    """Why the run needs no more jobs, when it needs none (what ``run_ensemble.py --resume`` decides)."""
    if not run_dir.spec.exists():
        return None
    # imported only when there is a spec to judge (a chain's first job has none yet)
    from ensembles.loading import SpecError, load_spec
    from ensembles.resume import ResumeError, finished_rows
    from run_ensemble import study_is_finished

    try:
        finished = finished_rows(run_dir)
        done = study_is_finished(load_spec(run_dir.spec), finished)
    except (SpecError, ResumeError) as error:
        return f"{run_dir.path} cannot be resumed: {error}"
    return f"the study is finished ({len(finished)} trainings)" if done else None


def current_chain(record: ChainRecord, job_id: str, max_jobs: int) -> Chain:
    """The chain whose last job submitted this one, else a new chain (a job submitted by hand)."""
    if record.chains and record.chains[-1].jobs and record.chains[-1].jobs[-1].continuation == job_id:
        return record.chains[-1]
    record.chains.append(Chain(max_jobs=max_jobs))
    return record.chains[-1]


def why_stop(run_dir: RunDir, chain: Chain, results: int) -> str | None:
    """Why this job submits no continuation; None when it should."""
    finished = study_finished(run_dir)
    if finished:
        return finished
    if chain.jobs and results <= chain.jobs[-1].results:
        previous = chain.jobs[-1]
        return (f"the previous job {previous.job_id} recorded no training ({results} results when it started and "
                "now): a crash loop? See its output, fix the cause, then submit the continuation by hand")
    if len(chain.jobs) + 1 >= chain.max_jobs:
        return f"this is job {len(chain.jobs) + 1} of at most {chain.max_jobs} (--chain {chain.max_jobs})"
    return None


def submit(scheduler: Scheduler, after: str, script: Path) -> str:
    """Submit ``script`` to start once job ``after`` has ended; the new job's id."""
    command = [scheduler.submit, *(arg.format(job_id=after) for arg in scheduler.continue_after), str(script)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ChainError(f"{' '.join(command)} failed: {error}") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ChainError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    return lines[-1].split()[0].split(";")[0]  # sbatch --parsable prints "<id>[;<cluster>]"


def chain_step(args: argparse.Namespace, environ: dict[str, str]) -> str:
    """Record this job, submit its continuation if the run needs one; what it did, in a line."""
    scheduler = load_platforms().schedulers[args.scheduler]
    job_id = environ.get(scheduler.job_id_variable)
    if not job_id:
        raise ChainError(f"${scheduler.job_id_variable} is not set: this is not a {scheduler.title} job")
    run_dir = RunDir(args.run_dir.resolve())
    record = read_record(run_dir)
    if any(job.job_id == job_id for chain in record.chains for job in chain.jobs):
        return f"job {job_id} ran before (requeued by the scheduler): its continuation was decided then"
    if args.new_run and run_dir.spec.exists():
        return f"{run_dir.path} already holds a run, which this job's --spec does not continue: no continuation"
    chain = current_chain(record, job_id, args.max_jobs)
    job = ChainedJob(job_id=job_id, started=datetime.datetime.now().isoformat(timespec="seconds"),
                     results=recorded_results(run_dir))
    job.stopped = why_stop(run_dir, chain, job.results)
    if job.stopped is None:
        try:
            job.continuation = submit(scheduler, job_id, args.submit)
        except ChainError as error:
            job.stopped = str(error)
    chain.jobs.append(job)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    write_json(run_dir.chain, record.model_dump(mode="json"))
    place = f"job {len(chain.jobs)} of at most {chain.max_jobs}"
    if job.continuation:
        return f"{place}: submitted {job.continuation} to continue the run once {job_id} has ended"
    return f"{place}: no continuation: {job.stopped}"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        line = chain_step(args, dict(os.environ))
    except ChainError as error:
        print(f"taskgen chain: error: {error}; no continuation submitted", file=sys.stderr)
        return 2
    print(f"taskgen chain: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
