"""Batch job scripts (python -m theta_like_jobs): every scheduler x platform script parses as bash
and says what platforms.yaml says about the machine; the 2-node Polaris (PBS) and Perlmutter
(SLURM) scripts carry what those sites' documentation prescribes; signals sent to the script
reach the ensemble's launcher. No scheduler is needed: scripts are parsed, or run with a fake
launcher.

Documentation followed (also cited next to each fact in theta_like_jobs/platforms.yaml):
  https://docs.alcf.anl.gov/running-jobs/example-job-scripts/        Polaris PBS + mpiexec examples
  https://docs.alcf.anl.gov/polaris/running-jobs/                     Polaris queues, mpiexec options
  https://docs.alcf.anl.gov/aurora/running-jobs-aurora/               Aurora PBS options, cores, tiles
  https://docs.alcf.anl.gov/theta/queueing-and-running-jobs/example-job-scripts/   Theta Cobalt + aprun
  https://docs.nersc.gov/systems/perlmutter/running-jobs/             Perlmutter -C gpu, QOS, GPUs, srun -c
  https://docs.nersc.gov/jobs/examples/                               NERSC example batch scripts
  https://docs.olcf.ornl.gov/systems/frontier_user_guide.html         Frontier -S 8 (56 cores), 8 GCDs, --signal
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from run_ensemble import RESUMABLE_OVERRIDES
from tests.helpers.jobs import SPEC, write_job
from tests.helpers.runs import PROJECT_ROOT
from theta_like_jobs.cli import main
from theta_like_jobs.platforms import load_platforms

# read as plain YAML, independently of the package's own models, to check the scripts against
FACTS = yaml.safe_load((PROJECT_ROOT / "theta_like_jobs" / "platforms.yaml").read_text())
DIRECTIVE = {"cobalt": "#COBALT", "pbs": "#PBS", "slurm": "#SBATCH"}
COMBINATIONS = [(p, s) for p, facts in FACTS["platforms"].items() for s in facts["jobs"]]
NONSENSE = [(p, s) for p, facts in FACTS["platforms"].items() for s in FACTS["schedulers"] if s not in facts["jobs"]]
GENERIC_CORES = 48


def job_args(platform, scheduler=None, nodes=3, walltime="01:30:00", queue="q1", account="acct1", extra=()):
    args = ["--platform", platform, "--spec", str(SPEC), "--nodes", str(nodes), "--walltime", walltime,
            "--queue", queue, "--account", account, "--venv", "/opt/venvs/taskgen", *extra]
    if scheduler:
        args += ["--scheduler", scheduler]
    if platform == "generic" and "--cores-per-node" not in extra:
        args += ["--cores-per-node", str(GENERIC_CORES)]
    return args


def directives(script: str, scheduler: str) -> dict[str, list[str]]:
    """flag -> values of the scheduler's directive lines ('-l walltime=1:00' -> {'-l': ['walltime=1:00']})."""
    found: dict[str, list[str]] = {}
    for line in script.splitlines():
        if line.startswith(DIRECTIVE[scheduler] + " "):
            tokens = shlex.split(line[len(DIRECTIVE[scheduler]):])
            flag, value = tokens[0].split("=", 1) if "=" in tokens[0] else (tokens[0], " ".join(tokens[1:]))
            found.setdefault(flag, []).append(value)
    return found


def launch(script: str, command: str) -> tuple[list[str], list[str]]:
    """The launcher's tokens and run_ensemble.py's, from the (continued) launch line."""
    for line in script.replace("\\\n", " ").splitlines():
        if line.split(" ", 1)[0] == command:
            tokens = shlex.split(line)
            tokens = tokens[:-1] if tokens[-1] == "&" else tokens
            split = tokens.index("run_ensemble.py") - 1
            return tokens[:split], tokens[split:]
    raise AssertionError(f"no line starts with {command}")


def option(tokens: list[str], flag: str) -> str:
    if flag.endswith("="):
        return next(t[len(flag):] for t in tokens if t.startswith(flag))
    return tokens[tokens.index(flag) + 1]


def sets(ensemble: list[str]) -> dict[str, str]:
    return dict(ensemble[i + 1].split("=", 1) for i, token in enumerate(ensemble) if token == "--set")


def test_the_platform_file_is_valid_and_cites_its_sources():
    facts = load_platforms()
    assert set(facts.platforms) == {"theta", "polaris", "aurora", "perlmutter", "frontier", "generic"}
    assert all(platform.docs and all(url.startswith("https://") for url in platform.docs)
               for platform in facts.platforms.values())
    assert facts.platforms["theta"].default_scheduler == "cobalt"
    assert facts.platforms["polaris"].default_scheduler == facts.platforms["aurora"].default_scheduler == "pbs"
    assert facts.platforms["perlmutter"].default_scheduler == facts.platforms["frontier"].default_scheduler == "slurm"


@pytest.mark.parametrize(("platform", "scheduler"), COMBINATIONS, ids=[f"{p}-{s}" for p, s in COMBINATIONS])
def test_every_script_parses_and_matches_the_platform(tmp_path, platform, scheduler):
    facts, job = FACTS["platforms"][platform], FACTS["platforms"][platform]["jobs"][scheduler]
    gpus = facts["gpus_per_node"]
    extra = ("--sims-per-gpu", "2") if gpus else ()
    script, path = write_job(tmp_path, job_args(platform, scheduler, extra=extra))
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert os.access(path, os.X_OK)

    found = directives(script, scheduler)
    if scheduler == "pbs":
        assert found["-l"][0] == f"select=3{job.get('select') or ''}" and "walltime=01:30:00" in found["-l"]
    elif scheduler == "slurm":
        assert found["-N"] == ["3"] and found["-t"] == ["01:30:00"]
        assert found[job.get("queue_flag", "-p")] == ["q1"]
        assert found["--signal"] == ["B:USR1@300"]  # half the default 10-minute margin
    else:
        assert found["-n"] == ["3"] and found["-t"] == ["01:30:00"]
    assert found["-A"] == ["acct1"] and found.get("-q", found.get("-p")) == ["q1"]
    lines = script.splitlines()
    last_directive = max(i for i, line in enumerate(lines) if line.startswith(DIRECTIVE[scheduler]))
    assert not any(line and not line.startswith("#") for line in lines[:last_directive])

    cores = facts["cores_per_node"] or GENERIC_CORES
    workers = 3 * gpus * 2 if gpus else 3 * (cores // 4)
    launcher, ensemble = launch(script, job["launcher"]["command"])
    assert option(launcher, job["launcher"]["ranks_flag"]) == str(workers + 1)
    assert option(launcher, job["launcher"]["per_node_flag"]) == str(math.ceil((workers + 1) / 3))
    if job["launcher"].get("nodes_flag"):
        assert option(launcher, job["launcher"]["nodes_flag"]) == "3"
    if job["launcher"].get("depth_flag"):  # the ranks of a node, each bound to its depth, fit the node
        threads = facts.get("threads_per_core", 1) if job["launcher"].get("depth_unit") == "hw_threads" else 1
        per_node = int(option(launcher, job["launcher"]["per_node_flag"]))
        assert per_node * int(option(launcher, job["launcher"]["depth_flag"])) <= cores * threads
    assert ensemble[ensemble.index("--comms") + 1] == "mpi"
    assert ensemble[ensemble.index("--nworkers") + 1] == str(workers)
    assert Path(ensemble[ensemble.index("--spec") + 1]) == SPEC
    overrides = sets(ensemble)
    assert overrides["resources.gpus_per_node"] == str(gpus)
    assert overrides["resources.cores_per_node"] == str(cores)
    assert overrides["exit_criteria.wallclock_max"] == str(5400 - 600)
    if gpus:
        assert overrides["simulator.sims_per_gpu"] == "2" and overrides["resources.gpu_env"] == facts["gpu_env"]
    assert ("resources.launch" in overrides) == (not job["launcher"]["nested"])
    assert "source /opt/venvs/taskgen/bin/activate" in script


@pytest.mark.parametrize(("platform", "scheduler"), NONSENSE, ids=[f"{p}-{s}" for p, s in NONSENSE])
def test_nonsense_combinations_are_refused(tmp_path, capsys, platform, scheduler):
    assert main([*job_args(platform, scheduler), "-o", str(tmp_path / "job.sh")]) == 2
    error = capsys.readouterr().err
    assert f"--scheduler: {platform} runs" in error and f"not {scheduler}" in error
    assert not (tmp_path / "job.sh").exists()


@pytest.mark.parametrize(("change", "flag"), [
    ({"--walltime": "1:5"}, "--walltime"),
    ({"--walltime": "00:00:00"}, "--walltime"),
    ({"--walltime": "01:61:00"}, "--walltime"),
    ({"--nodes": "0"}, "--nodes"),
    ({"--margin-minutes": "90", "--walltime": "01:00:00"}, "--margin-minutes"),
    ({"--margin-minutes": "0"}, "--margin-minutes"),
    ({"--queue": "deb ug"}, "--queue"),
    ({"--account": "x\n#PBS -l select=999"}, "--account"),
    ({"--spec": "no/such/spec.yaml"}, "--spec"),
    ({"--workers": "7", "--nodes": "2"}, "--workers"),
    ({"--workers": "100", "--nodes": "2"}, "--workers"),
    ({"--gpus-per-sim": "5"}, "--gpus-per-sim"),
    ({"--threads-per-sim": "8"}, "--threads-per-sim"),
    ({"--cores-per-node": "16"}, "--cores-per-node"),
    ({"--conda": "base"}, "--conda"),
    ({"--platform": "theta", "--sims-per-gpu": "2"}, "--sims-per-gpu"),
    ({"--platform": "theta", "--group-size": "8"}, "--group-size"),
    ({"--group-size": "0"}, "--group-size"),
    ({"--group-size": "many"}, "--group-size"),
    ({"--platform": "generic", "--scheduler": "slurm"}, "--cores-per-node"),
])
def test_bad_requests_are_refused_naming_the_flag(tmp_path, capsys, change, flag):
    args = ["--platform", "polaris", "--spec", str(SPEC), "--nodes", "2", "--walltime", "01:00:00",
            "--queue", "debug", "--account", "A", "--venv", "/v"]
    for key, value in change.items():
        if key in args:
            args[args.index(key) + 1] = value
        else:
            args += [key, value]
    assert main([*args, "-o", str(tmp_path / "job.sh")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {flag}: ")


def test_polaris_two_node_pbs_script_follows_alcf_documentation(tmp_path):
    """ALCF's 2-node GPU example (submit_gpu.sh, https://docs.alcf.anl.gov/running-jobs/example-job-scripts/):
    `#!/bin/bash -l`, `-l select=2:system=polaris`, `-l place=scatter`, `-l walltime=0:30:00`,
    `-l filesystems=home:eagle`, `-q debug`, `-A Catalyst`, no comments among the directives, then
    `mpiexec -n <ranks> --ppn <ranks per node> --depth=<hw threads per rank> --cpu-bind depth`
    (https://docs.alcf.anl.gov/polaris/running-jobs/: -n, -ppn, --depth, --cpu-bind); Python from
    `module use /soft/modulefiles; module load conda` (https://docs.alcf.anl.gov/polaris/data-science/python/)."""
    script, _ = write_job(tmp_path, ["--platform", "polaris", "--spec", str(SPEC), "--nodes", "2", "--walltime",
                                     "00:30:00", "--queue", "debug", "--account", "Catalyst", "--venv", "/v"])
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash -l"
    pbs = [line for line in lines if line.startswith("#PBS")]
    assert lines[1:1 + len(pbs)] == pbs  # directives first, nothing between them
    for directive in ("#PBS -l select=2:system=polaris", "#PBS -l place=scatter", "#PBS -l walltime=00:30:00",
                      "#PBS -l filesystems=home:eagle", "#PBS -q debug", "#PBS -A Catalyst"):
        assert directive in pbs
    assert not any("#" in line[1:] for line in pbs)
    launcher, ensemble = launch(script, "mpiexec")
    assert launcher == ["mpiexec", "-n", "9", "--ppn", "5", "--depth=12", "--cpu-bind", "depth"]
    assert sets(ensemble)["resources.gpus_per_node"] == "4" and sets(ensemble)["resources.cores_per_node"] == "32"
    assert "module use /soft/modulefiles\nmodule load conda\n" in script
    assert "sleep 1575 & sleeper=$!" in script  # PBS has no warning signal: the script warns at 30 min - 225 s


def test_perlmutter_two_node_slurm_script_follows_nersc_documentation(tmp_path):
    """NERSC's Perlmutter GPU jobs (https://docs.nersc.gov/systems/perlmutter/running-jobs/ and the
    examples at https://docs.nersc.gov/jobs/examples/): `#SBATCH -C gpu` (required), `-q regular`
    (a QOS), `-N 2`, GPUs requested explicitly, `-t`, `-A`; srun `-c` = floor(64 / tasks per node) * 2
    logical CPUs with `--cpu-bind=cores`. The warning before the time limit is Slurm's
    `--signal=B:USR1@<s>` (https://docs.olcf.ornl.gov/systems/frontier_user_guide.html, "--signal")."""
    script, _ = write_job(tmp_path, ["--platform", "perlmutter", "--spec", str(SPEC), "--nodes", "2", "--walltime",
                                     "00:30:00", "--queue", "regular", "--account", "m1234", "--conda", "taskgen"])
    sbatch = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    for directive in ("#SBATCH -C gpu", "#SBATCH -q regular", "#SBATCH -N 2", "#SBATCH -t 00:30:00",
                      "#SBATCH -A m1234", "#SBATCH --gpus-per-node=4", "#SBATCH --signal=B:USR1@225"):
        assert directive in sbatch
    launcher, ensemble = launch(script, "srun")
    assert launcher == ["srun", "-N", "2", "-n", "9", "--ntasks-per-node", "5", "-c", str(64 // 5 * 2),
                        "--cpu-bind=cores", "--overlap"]
    assert sets(ensemble)["resources.gpu_env"] == "CUDA_VISIBLE_DEVICES"
    assert "export LIBE_PLATFORM=perlmutter_g" in script and "conda activate taskgen" in script
    assert "sleep " not in script  # Slurm signals the batch shell itself


def test_aurora_uses_twelve_tiles_and_the_documented_pbs_options(tmp_path):
    """https://docs.alcf.anl.gov/aurora/running-jobs-aurora/: 102 of 104 cores free for applications,
    12 tiles selected with ZE_AFFINITY_MASK (tiles as devices: ZE_FLAT_DEVICE_HIERARCHY=FLAT),
    `-l place=scatter`, `-l filesystems=...`, `-k doe`."""
    script, _ = write_job(tmp_path, job_args("aurora", nodes=2, extra=("--sims-per-gpu", "2")))
    found = directives(script, "pbs")
    assert {"place=scatter", "filesystems=flare"} <= set(found["-l"]) and found["-k"] == ["doe"]
    _, ensemble = launch(script, "mpiexec")
    assert ensemble[ensemble.index("--nworkers") + 1] == str(2 * 12 * 2)
    assert sets(ensemble)["resources.gpu_env"] == "ZE_AFFINITY_MASK"
    assert "export ZE_FLAT_DEVICE_HIERARCHY=FLAT" in script


def test_resume_keeps_the_runs_packing_unless_the_job_gives_another(tmp_path, capsys):
    """A resumed run keeps its points (spec.yaml) but may continue on another machine with another
    packing: the job passes its nodes' facts, and run_ensemble.py --resume accepts every one."""
    run = tmp_path / "runs" / "sweep"
    run.mkdir(parents=True)
    run.joinpath("spec.yaml").write_text(yaml.safe_dump({
        "name": "sweep", "simulator": {"gpus_per_sim": 1, "sims_per_gpu": 2}, "resources": {"gpus_per_node": 4}}))
    args = ["--platform", "polaris", "--resume", str(run), "--nodes", "2", "--walltime", "01:00:00",
            "--queue", "prod", "--account", "A", "--venv", "/v"]
    script, _ = write_job(tmp_path, args)
    _, ensemble = launch(script, "mpiexec")
    assert ensemble[ensemble.index("--resume") + 1] == str(run) and "--spec" not in ensemble
    assert ensemble[ensemble.index("--nworkers") + 1] == str(2 * 4 * 2)  # the run's own 2 per GPU
    assert sets(ensemble) == {"resources.gpus_per_node": "4", "resources.cores_per_node": "32",
                              "simulator.gpus_per_sim": "1", "simulator.sims_per_gpu": "2",
                              "resources.gpu_env": "CUDA_VISIBLE_DEVICES",
                              "exit_criteria.wallclock_max": str(3600 - 600)}
    assert all(key.startswith(RESUMABLE_OVERRIDES) for key in sets(ensemble))

    repacked, _ = write_job(tmp_path, [*args, "--sims-per-gpu", "4"], name="repacked.sh")
    _, ensemble = launch(repacked, "mpiexec")
    assert ensemble[ensemble.index("--nworkers") + 1] == str(2 * 4 * 4)
    assert sets(ensemble)["simulator.sims_per_gpu"] == "4"

    grouped, _ = write_job(tmp_path, [*args, "--group-size", "16"], name="grouped.sh")
    _, ensemble = launch(grouped, "mpiexec")
    assert sets(ensemble)["simulator.engine"] == "jax" and sets(ensemble)["simulator.group_size"] == "16"
    assert all(key.startswith(RESUMABLE_OVERRIDES) for key in sets(ensemble))
    filled, _ = write_job(tmp_path, [*args, "--group-size", "auto"], name="filled.sh")  # one group per GPU
    _, ensemble = launch(filled, "mpiexec")
    assert sets(ensemble)["simulator.group_size"] == "auto" and sets(ensemble)["simulator.sims_per_gpu"] == "1"

    capsys.readouterr()
    moved = [arg.replace("polaris", "aurora") for arg in args]
    elsewhere, _ = write_job(tmp_path, moved, name="aurora.sh")
    _, ensemble = launch(elsewhere, "mpiexec")
    assert ensemble[ensemble.index("--nworkers") + 1] == str(2 * 12 * 2)
    assert sets(ensemble)["resources.gpus_per_node"] == "12"
    assert "planned for 4 GPUs per node, these nodes have 12" in capsys.readouterr().err

    not_a_run = [str(tmp_path) if arg == str(run) else arg for arg in args]
    assert main([*not_a_run, "-o", str(tmp_path / "none.sh")]) == 2
    assert "error: --resume: no such file" in capsys.readouterr().err


