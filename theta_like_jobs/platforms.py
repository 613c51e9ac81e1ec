"""The facts about schedulers and machines, read from ``platforms.yaml`` and checked by pydantic.

Facts live in data so that a new machine, or a site's change of cores or launcher flags, is an
edit of one YAML file with its documentation URL next to it, not a code change; validating the
file up front turns a typo there into an error naming the field instead of a broken job script.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

PLATFORMS_FILE = Path(__file__).with_name("platforms.yaml")
SchedulerName = Literal["cobalt", "pbs", "slurm"]
Url = Annotated[str, StringConstraints(pattern=r"^https://\S+$")]
# what a directive line in platforms.yaml may refer to
DIRECTIVE_KEYS = {"nodes": 2, "gpus_per_node": 4, "cores_per_node": 64, "filesystems": "home"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scheduler(_Strict):
    title: str
    submit: str
    warning_signal: bool = Field(description="Can the job ask for a signal before its walltime?")
    job_id_variable: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$",
                                 description="The variable holding a running job's id, in its batch shell.")
    continue_after: list[str] = Field(
        min_length=1, description="Arguments of `submit` that start a job only once job {job_id} has ended, "
        "however it ended (--chain); `submit` then prints the new job's id.")
    docs: list[Url] = Field(min_length=1)


class Launcher(_Strict):
    """The MPI launcher that starts the manager and worker ranks, and its placement flags."""

    command: str
    ranks_flag: str
    per_node_flag: str
    nodes_flag: str | None = None
    depth_flag: str | None = None
    depth_unit: Literal["cores", "hw_threads"] = "cores"
    extra: list[str] = []
    nested: bool = Field(description="Can a rank start launches onto other nodes (libEnsemble's MPIExecutor)?")


class Job(_Strict):
    """How one platform runs under one scheduler."""

    launcher: Launcher
    directives: list[str] = []
    queue_flag: str | None = Field(None, description="SLURM only: -q when queues are QOSs, -p when partitions.")
    select: str | None = Field(None, description="PBS only: what follows select=<nodes>, e.g. ':system=polaris'.")


class Platform(_Strict):
    description: str
    docs: list[Url] = Field(min_length=1)
    cores_per_node: int | None = Field(ge=1, description="Cores free for applications; null: give --cores-per-node.")
    threads_per_core: int = Field(1, ge=1)
    gpus_per_node: int = Field(0, ge=0, description="GPUs (or tiles, GCDs) a process can be given on its own.")
    gpu_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    env: dict[str, str] = {}
    modules: list[str] = []
    filesystems: str | None = None
    libe_platform: str | None = None
    default_scheduler: SchedulerName
    jobs: dict[SchedulerName, Job]

    @model_validator(mode="after")
    def _consistent(self) -> Platform:
        if self.default_scheduler not in self.jobs:
            raise ValueError(f"default_scheduler {self.default_scheduler} has no entry in jobs")
        if self.gpus_per_node and not self.gpu_env:
            raise ValueError("a platform with GPUs needs gpu_env (the variable that selects them)")
        for job in self.jobs.values():
            for line in job.directives:
                try:
                    line.format(**DIRECTIVE_KEYS)
                except (KeyError, IndexError) as error:
                    raise ValueError(f"directive {line!r} uses {error}; allowed: {sorted(DIRECTIVE_KEYS)}") from None
        return self


class PlatformFile(_Strict):
    schedulers: dict[SchedulerName, Scheduler]
    platforms: dict[str, Platform]

    @model_validator(mode="after")
    def _every_scheduler_described(self) -> PlatformFile:
        used = {name for platform in self.platforms.values() for name in platform.jobs}
        missing = used - set(self.schedulers)
        if missing:
            raise ValueError(f"schedulers {sorted(missing)} are used by platforms but not described")
        return self


class PlatformFileError(ValueError):
    pass


@lru_cache(maxsize=4)
def load_platforms(path: Path = PLATFORMS_FILE) -> PlatformFile:
    try:
        return PlatformFile.model_validate(yaml.safe_load(Path(path).read_text()))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise PlatformFileError(f"{path}: {problems}") from None
