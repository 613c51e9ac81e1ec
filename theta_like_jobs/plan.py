"""From a request (the command line) to a job plan: every number and command line the batch
script needs, computed once and checked against the platform's facts.

The templates only lay text out; deciding workers, ranks, placement flags and the ensemble's
``--set`` overrides here keeps that logic testable without rendering, and keeps the three
scheduler templates from each growing their own arithmetic.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from simulators.run_dir import RunDir
from theta_like_jobs.inputs import ENV_NAME, JobError, directive_word, parse_walltime, read_spec_facts
from theta_like_jobs.platforms import Job, Platform, PlatformFile, Scheduler, load_platforms

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_THREADS_PER_SIM = 4  # CPU platforms: small recurrent models gain little beyond a few threads
MAX_DEFAULT_MARGIN = 600  # seconds; the default margin is min(10 minutes, a quarter of the walltime)
CONTINUATION_SUFFIX = "-continue"  # --chain with --spec: job.sh's continuation is job-continue.sh


@dataclass(frozen=True)
class JobRequest:
    platform: str
    nodes: int
    walltime: str
    queue: str
    account: str
    spec: Path | None = None
    resume: Path | None = None
    scheduler: str | None = None
    sims_per_gpu: int | None = None
    gpus_per_sim: int | None = None
    group_size: int | Literal["auto"] | None = None
    threads_per_sim: int | None = None
    workers: int | None = None
    margin_minutes: float | None = None
    env_setup: str | None = None
    venv: str | None = None
    conda: str | None = None
    job_name: str | None = None
    launcher: str | None = None
    python: str = "python"
    workdir: Path = PROJECT_ROOT
    out: str | None = None
    cores_per_node: int | None = None
    gpus_per_node: int | None = None
    gpu_env: str | None = None
    filesystems: str | None = None
    chain: int | None = None
    output: Path | None = None
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChainPlan:
    """--chain N: the run the chain continues, the script that continues it (``--resume``; a
    ``--resume`` job is its own), and the step that submits it (``theta_like_jobs/chain.py``)."""

    max_jobs: int
    run_dir: Path
    continuation: Path
    step: list[str]


@dataclass(frozen=True)
class JobPlan:
    request: JobRequest
    scheduler: str
    scheduler_facts: Scheduler
    platform_name: str
    platform: Platform
    job: Job
    walltime: str
    walltime_seconds: int
    margin_seconds: int
    warning_lead: int
    cores_per_node: int
    gpus_per_node: int
    gpu_env: str | None
    gpus_per_sim: int
    sims_per_gpu: int
    workers: int
    ranks: int
    ranks_per_node: int
    launcher: list[str]
    ensemble: list[str]
    directives: list[str]
    environment: list[str]
    job_name: str
    notes: list[str] = field(default_factory=list)
    chain: ChainPlan | None = None

    @property
    def wallclock_max(self) -> int:
        return self.walltime_seconds - self.margin_seconds

    @property
    def warn_after(self) -> int:
        """Seconds after the job starts when the script warns the ensemble itself (no scheduler signal)."""
        return self.walltime_seconds - self.warning_lead

    @property
    def threads_per_sim(self) -> int:
        """What libEnsemble's resource sets give each training: the node's cores over its trainings."""
        return max(1, self.cores_per_node // (self.workers // self.request.nodes))


def make_plan(request: JobRequest, facts: PlatformFile | None = None) -> JobPlan:
    facts = facts or load_platforms()
    platform = _platform(request, facts)
    scheduler = request.scheduler or platform.default_scheduler
    if scheduler not in platform.jobs:
        raise JobError("--scheduler", f"{request.platform} runs {', '.join(platform.jobs)}, not {scheduler} "
                       f"(see {platform.docs[0]})")
    if request.nodes < 1:
        raise JobError("--nodes", f"must be at least 1, got {request.nodes}")
    walltime_seconds, walltime = parse_walltime(request.walltime)
    margin = _margin(request, walltime_seconds)
    cores, gpus, gpu_env = _node(request, platform)
    spec = _spec_facts(request)
    size = request.group_size
    if size is not None and (not gpus or size != "auto" and not (isinstance(size, int) and size >= 1)):
        raise JobError("--group-size", f"vectorised groups (auto, or at least 1 training) need GPUs; "
                       f"{request.platform} has {gpus} per node, got {size}")
    gpus_per_sim, sims_per_gpu, capacity = _packing(request, spec, cores, gpus)
    workers = _workers(request, capacity, gpus)
    chain = _chain(request, spec, scheduler)
    if chain is not None and request.resume is None:  # the run directory the chain continues, named
        request = replace(request, out=str(chain.run_dir))
    ranks = workers + 1  # gen_on_manager: rank 0 is the manager, every other rank trains
    per_node = math.ceil(ranks / request.nodes)
    job = platform.jobs[scheduler]
    plan_values = dict(nodes=request.nodes, gpus_per_node=gpus, cores_per_node=cores,
                       filesystems=request.filesystems or platform.filesystems)
    if any("{filesystems}" in line for line in job.directives) and not plan_values["filesystems"]:
        raise JobError("--filesystems", f"{request.platform} jobs name their filesystems; give --filesystems")
    return JobPlan(
        request=request, scheduler=scheduler, scheduler_facts=facts.schedulers[scheduler],
        platform_name=request.platform, platform=platform, job=job,
        walltime=walltime, walltime_seconds=walltime_seconds, margin_seconds=margin,
        warning_lead=max(1, margin // 2),
        cores_per_node=cores, gpus_per_node=gpus, gpu_env=gpu_env,
        gpus_per_sim=gpus_per_sim, sims_per_gpu=sims_per_gpu,
        workers=workers, ranks=ranks, ranks_per_node=per_node,
        launcher=_launcher(request, job, platform, cores, per_node, ranks),
        ensemble=_ensemble(request, platform, job, workers, cores, gpus, gpu_env, gpus_per_sim, sims_per_gpu,
                           walltime_seconds - margin),
        directives=[line.format(**plan_values) for line in job.directives],
        environment=_environment(request, platform),
        job_name=directive_word("--job-name", request.job_name or f"taskgen-{spec.get('name') or 'ensemble'}"),
        notes=_notes(request, spec, job, scheduler, margin, max(1, cores // (workers // request.nodes)), gpus),
        chain=chain,
    )


def _chain(request: JobRequest, spec: dict, scheduler: str) -> ChainPlan | None:
    if request.chain is None:
        return None
    if request.chain < 2:
        raise JobError("--chain", f"a chain holds at least 2 jobs (this one and a continuation), got {request.chain}")
    if request.output is None:
        raise JobError("--chain", "needs -o FILE: every job of the chain submits a script file (the continuation, "
                                  "written next to it)")
    output = Path(request.output).resolve()
    if request.resume is not None:
        run_dir, continuation = Path(request.resume).resolve(), output
    else:
        name = request.out or (f"runs/{spec['name']}" if spec.get("name") else None)
        if name is None:
            raise JobError("--out", "the spec has no name: give the run directory the chain continues with --out")
        run_dir = (Path(request.workdir) / name).resolve()
        continuation = output.with_name(f"{output.stem}{CONTINUATION_SUFFIX}{output.suffix}")
    step = [*shlex.split(request.python), "-m", "theta_like_jobs.chain", "--run-dir", str(run_dir),
            "--max-jobs", str(request.chain), "--scheduler", scheduler, "--submit", str(continuation)]
    return ChainPlan(request.chain, run_dir, continuation, step + (["--new-run"] if request.resume is None else []))


def continuation_plan(plan: JobPlan) -> JobPlan:
    """The plan of the script that continues a chain started with --spec: the same job, resuming
    the run directory (its own spec.yaml holds the points) instead of starting it."""
    chain = plan.chain
    ensemble = list(plan.ensemble)
    at = ensemble.index("--spec")
    ensemble[at:at + 2] = ["--resume", str(chain.run_dir)]
    at = ensemble.index("--out")
    del ensemble[at:at + 2]
    return replace(plan, ensemble=ensemble, chain=replace(chain, step=[a for a in chain.step if a != "--new-run"]),
                   notes=[*plan.notes, f"this script continues the chain: it resumes {chain.run_dir}"])


def _platform(request: JobRequest, facts: PlatformFile) -> Platform:
    if request.platform not in facts.platforms:
        raise JobError("--platform", f"unknown platform {request.platform!r}; known: {', '.join(facts.platforms)}")
    platform = facts.platforms[request.platform]
    described = {"--cores-per-node": request.cores_per_node, "--gpus-per-node": request.gpus_per_node,
                 "--gpu-env": request.gpu_env}
    given = [flag for flag, value in described.items() if value is not None]
    if given and request.platform != "generic":
        raise JobError(given[0], f"{request.platform}'s nodes are described in platforms.yaml; "
                                 "use --platform generic to describe another machine")
    directive_word("--queue", request.queue)
    directive_word("--account", request.account)
    if request.filesystems is not None:
        directive_word("--filesystems", request.filesystems)
    if request.gpu_env is not None and not ENV_NAME.match(request.gpu_env):
        raise JobError("--gpu-env", f"{request.gpu_env!r} is not an environment variable name")
    return platform


def _margin(request: JobRequest, walltime_seconds: int) -> int:
    if request.margin_minutes is None:
        return max(1, min(MAX_DEFAULT_MARGIN, walltime_seconds // 4))
    margin = round(request.margin_minutes * 60)
    if margin < 1:
        raise JobError("--margin-minutes", f"must be positive, got {request.margin_minutes}")
    if margin >= walltime_seconds:
        raise JobError("--margin-minutes", f"{request.margin_minutes} min is not shorter than --walltime "
                                           f"{request.walltime}: no time would be left to train")
    return margin


def _node(request: JobRequest, platform: Platform) -> tuple[int, int, str | None]:
    cores = request.cores_per_node or platform.cores_per_node
    if not cores or cores < 1:
        raise JobError("--cores-per-node", f"{request.platform} needs the cores of a node (a positive number)")
    gpus = platform.gpus_per_node if request.gpus_per_node is None else request.gpus_per_node
    if gpus < 0:
        raise JobError("--gpus-per-node", f"must be 0 or more, got {gpus}")
    return cores, gpus, request.gpu_env or platform.gpu_env


def _spec_facts(request: JobRequest) -> dict:
    if (request.spec is None) == (request.resume is None):
        raise JobError("--spec", "give the ensemble's --spec, or --resume RUN_DIR to continue a run (not both)")
    if request.spec is not None:
        return read_spec_facts(request.spec, "--spec")
    return read_spec_facts(RunDir(Path(request.resume)).spec, "--resume")


def _packing(request: JobRequest, spec: dict, cores: int, gpus: int) -> tuple[int, int, int]:
    """GPUs per training, trainings per GPU, and how many trainings a node holds at once."""
    if gpus == 0:
        for flag, value in (("--sims-per-gpu", request.sims_per_gpu), ("--gpus-per-sim", request.gpus_per_sim)):
            if value is not None:
                raise JobError(flag, f"{request.platform} nodes have no GPUs")
        threads = request.threads_per_sim or spec.get("threads") or min(DEFAULT_THREADS_PER_SIM, cores)
        if not 1 <= threads <= cores:
            raise JobError("--threads-per-sim", f"must be between 1 and the node's {cores} cores, got {threads}")
        return 0, 1, cores // threads
    if request.threads_per_sim is not None:
        raise JobError("--threads-per-sim", "on GPU nodes each training gets the node's cores divided by its "
                                            "trainings; choose --sims-per-gpu (or --workers) instead")
    gpus_per_sim = request.gpus_per_sim or spec.get("gpus_per_sim") or 1
    grouped = request.group_size == "auto" or (request.group_size or 0) > 1  # one group per GPU: the fastest
    sims_per_gpu = request.sims_per_gpu or (1 if grouped else spec.get("sims_per_gpu")) or 1  # (performance.md)
    if not 1 <= gpus_per_sim <= gpus:
        raise JobError("--gpus-per-sim", f"must be between 1 and the node's {gpus} GPUs, got {gpus_per_sim}")
    if sims_per_gpu < 1:
        raise JobError("--sims-per-gpu", f"must be at least 1, got {sims_per_gpu}")
    return gpus_per_sim, sims_per_gpu, (gpus // gpus_per_sim) * sims_per_gpu


def _workers(request: JobRequest, capacity: int, gpus: int) -> int:
    if request.workers is None:
        return request.nodes * capacity
    if request.workers < 1:
        raise JobError("--workers", f"must be at least 1, got {request.workers}")
    if request.workers % request.nodes:
        raise JobError("--workers", f"{request.workers} trainings do not divide evenly over --nodes {request.nodes} "
                                    "(libEnsemble splits resource sets evenly over the nodes)")
    if request.workers > request.nodes * capacity:
        what = "GPU slots (raise --sims-per-gpu)" if gpus else "cores (lower --threads-per-sim)"
        raise JobError("--workers", f"{request.workers} trainings at once exceed the {request.nodes * capacity} "
                                    f"{what} of {request.nodes} node(s)")
    return request.workers


def _flag(flag: str | None, value: int) -> list[str]:
    if flag is None:
        return []
    return [f"{flag}{value}"] if flag.endswith("=") else [flag, str(value)]


def _launcher(request: JobRequest, job: Job, platform: Platform, cores: int, per_node: int, ranks: int) -> list[str]:
    launcher = job.launcher
    depth = max(1, cores // per_node)
    if launcher.depth_unit == "hw_threads":
        depth *= platform.threads_per_core
    command = shlex.split(request.launcher) if request.launcher else [launcher.command]
    return [*command, *_flag(launcher.nodes_flag, request.nodes), *_flag(launcher.ranks_flag, ranks),
            *_flag(launcher.per_node_flag, per_node), *_flag(launcher.depth_flag, depth), *launcher.extra]


def _ensemble(request: JobRequest, platform: Platform, job: Job, workers: int, cores: int, gpus: int,
              gpu_env: str | None, gpus_per_sim: int, sims_per_gpu: int, wallclock_max: int) -> list[str]:
    """run_ensemble.py's command line: MPI comms, the node's facts as --set overrides, and the
    exit criterion that leaves the margin to stop and save."""
    command = [*shlex.split(request.python), "run_ensemble.py"]
    if request.resume is not None:  # the run's own spec.yaml: its points; this job's machine and packing
        command += ["--resume", str(Path(request.resume).resolve())]
    else:
        command += ["--spec", str(Path(request.spec).resolve())]
    command += ["--comms", "mpi", "--nworkers", str(workers)]
    sets = [f"resources.gpus_per_node={gpus}", f"resources.cores_per_node={cores}",
            f"simulator.gpus_per_sim={gpus_per_sim}"]
    if gpus:
        sets += [f"simulator.sims_per_gpu={sims_per_gpu}", f"resources.gpu_env={gpu_env}"]
    if request.group_size:  # K trainings of one shape in one jax program per sim
        sets += ["simulator.engine=jax", f"simulator.group_size={request.group_size}"]
    if not job.launcher.nested:
        sets.append("resources.launch=local")
    sets.append(f"exit_criteria.wallclock_max={wallclock_max}")
    for assignment in sets:
        command += ["--set", assignment]
    if request.out and request.resume is None:
        command += ["--out", request.out]
    return command


def _environment(request: JobRequest, platform: Platform) -> list[str]:
    """Shell lines: the platform's Python modules, the user's environment, then exports."""
    chosen = [name for name, value in (("--env-setup", request.env_setup), ("--venv", request.venv),
                                       ("--conda", request.conda)) if value]
    if len(chosen) > 1:
        raise JobError(chosen[1], f"give one of --env-setup, --venv, --conda, not {' and '.join(chosen)}")
    lines = list(platform.modules)
    if request.env_setup:
        lines.append(request.env_setup)
    elif request.venv:
        lines.append(f"source {shlex.quote(str(Path(request.venv) / 'bin' / 'activate'))}")
    elif request.conda:
        lines += ['eval "$(conda shell.bash hook)"', f"conda activate {shlex.quote(request.conda)}"]
    exports = dict(platform.env)
    if platform.libe_platform:
        exports["LIBE_PLATFORM"] = platform.libe_platform  # libEnsemble's known-platform settings
    lines += [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
    return lines


def _notes(request: JobRequest, spec: dict, job: Job, scheduler: str, margin: int, threads: int,
           gpus: int) -> list[str]:
    notes = []
    if isinstance(spec.get("threads"), int) and spec["threads"] > threads:
        notes.append(f"the spec's simulator.threads={spec['threads']} overrides the {threads} cores each training "
                     "is allotted: packed trainings will oversubscribe the cores")
    if not (request.env_setup or request.venv or request.conda):
        notes.append("no --venv, --conda or --env-setup: the job runs whatever `python` its shell finds")
    if request.nodes > 1 and spec.get("isolation") == "inline" and job.launcher.nested:
        notes.append("the spec trains inline (in the worker process), but a worker's rank may sit on another node "
                     "than its resource set's GPUs: use simulator.isolation: process on several nodes")
    if not job.launcher.nested:
        notes.append(f"{job.launcher.command} cannot be nested: each worker trains on its own node "
                     "(resources.launch=local)")
    if request.resume is not None and spec.get("gpus_per_node") not in (None, gpus):
        notes.append(f"the run was planned for {spec['gpus_per_node']} GPUs per node, these nodes have {gpus}: "
                     "it continues with this job's packing (finished trainings are kept)")
    if scheduler == "slurm" and margin // 2 < 60:
        notes.append("Slurm may send --signal up to 60 s early; with a margin under 2 minutes the warning "
                     "can come before the ensemble's own stop")
    return notes
