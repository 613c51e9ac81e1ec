"""Write a batch job script that runs a taskgen ensemble on a Cobalt, PBS or SLURM machine.

    python -m theta_like_jobs --platform polaris --spec ensembles/gen_sweep.yaml \\
        --nodes 2 --walltime 01:00:00 --queue debug --account MyProject --sims-per-gpu 4 -o job.sh
    qsub job.sh
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from theta_like_jobs.inputs import JobError
from theta_like_jobs.plan import PROJECT_ROOT, JobPlan, JobRequest, continuation_plan, make_plan
from theta_like_jobs.platforms import PlatformFileError, load_platforms
from theta_like_jobs.render import render


def group_size(text: str) -> int | str:
    """--group-size: K as a number, anything else as given (the plan refuses all but auto)."""
    return int(text) if text.lstrip("-").isdigit() else text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    facts = load_platforms()
    description, example = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(prog="python -m theta_like_jobs", description=description,
                                     epilog="example:\n" + example,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_argument_group("what to run")
    where = what.add_mutually_exclusive_group(required=True)
    where.add_argument("--spec", type=Path, help="the ensemble spec (YAML)")
    where.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR instead")
    what.add_argument("--out", help="run directory for a new run; default runs/<name>")
    what.add_argument("--chain", type=int, metavar="N",
                      help="a chain of at most N jobs: before its ensemble starts, each job submits its continuation "
                           "(--resume) to start after it ends, until the study is finished (needs -o)")
    machine = parser.add_argument_group("machine and scheduler")
    machine.add_argument("--platform", required=True, choices=list(facts.platforms))
    machine.add_argument("--scheduler", choices=list(facts.schedulers), help="default: the platform's")
    machine.add_argument("--cores-per-node", type=int, help="generic platform: cores of a node")
    machine.add_argument("--gpus-per-node", type=int, help="generic platform: GPUs of a node (default 0)")
    machine.add_argument("--gpu-env",
                         help="generic platform: variable that selects GPUs (default CUDA_VISIBLE_DEVICES)")
    machine.add_argument("--filesystems", help="filesystems the job needs (PBS/Cobalt at ALCF); default the platform's")
    machine.add_argument("--launcher", help="command that replaces the platform's MPI launcher (its flags are kept)")
    job = parser.add_argument_group("allocation")
    job.add_argument("--nodes", type=int, required=True)
    job.add_argument("--walltime", required=True, metavar="HH:MM:SS")
    job.add_argument("--queue", required=True, help="queue (SLURM: the platform's QOS or partition)")
    job.add_argument("--account", required=True, help="project to charge")
    job.add_argument("--job-name", help="default taskgen-<spec name>")
    job.add_argument("--margin-minutes", type=float,
                     help="time left to stop and save before the walltime; default min(10, walltime/4)")
    packing = parser.add_argument_group("trainings per node")
    packing.add_argument("--sims-per-gpu", type=int, help="trainings sharing one GPU (default: the spec's, else 1)")
    packing.add_argument("--gpus-per-sim", type=int, help="GPUs per training (default: the spec's, else 1)")
    packing.add_argument("--group-size", type=group_size,
                         help="GPU platforms: trainings of one shape vectorised in one sim by the jax engine, K or "
                         "auto (as many as the GPU's memory holds); one sim per GPU unless --sims-per-gpu says "
                         "otherwise (measured fastest)")
    packing.add_argument("--threads-per-sim", type=int, help="CPU platforms: threads per training (default 4)")
    packing.add_argument("--workers", type=int, help="trainings at once, instead of filling every node")
    env = parser.add_argument_group("environment (one of)")
    env.add_argument("--env-setup", help="shell line(s) run before the ensemble, e.g. 'source venv/bin/activate'")
    env.add_argument("--venv", help="virtual environment to activate")
    env.add_argument("--conda", help="conda environment to activate")
    env.add_argument("--python", default="python", help="Python command on the compute nodes (default %(default)s)")
    env.add_argument("--workdir", type=Path, default=PROJECT_ROOT, help="taskgen's directory (default %(default)s)")
    parser.add_argument("-o", "--output", type=Path, help="write the script here (made executable); default stdout")
    return parser.parse_args(argv)


def request_from(args: argparse.Namespace, argv: list[str]) -> JobRequest:
    fields = {name: value for name, value in vars(args).items() if value is not None}
    return JobRequest(**fields, argv=tuple(argv))


def summary(plan: JobPlan) -> str:
    gpus = (f"{plan.gpus_per_node} GPUs/node, {plan.gpus_per_sim} per training, {plan.sims_per_gpu} per GPU; "
            if plan.gpus_per_node else "")
    return (f"{plan.platform_name} ({plan.scheduler}): {plan.request.nodes} node(s), {gpus}{plan.workers} trainings "
            f"at once with {plan.threads_per_sim} threads each, {plan.ranks} MPI ranks; the ensemble stops after "
            f"{plan.wallclock_max} s of {plan.walltime_seconds}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
        plan = make_plan(request_from(args, argv))
        scripts = {args.output: render(plan)}
        if plan.chain is not None and plan.chain.continuation != args.output.resolve():
            scripts[plan.chain.continuation] = render(continuation_plan(plan))
    except (JobError, PlatformFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(scripts[None])
    else:
        for path, script in scripts.items():
            _write_executable(path, script)
        written = " and its continuation ".join(map(str, scripts))
        print(f"wrote {written}; submit with: {plan.scheduler_facts.submit} {args.output}", file=sys.stderr)
    print(summary(plan), file=sys.stderr)
    return 0


def _write_executable(path: Path, script: str) -> None:
    path.write_text(script)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)  # Cobalt runs only these
