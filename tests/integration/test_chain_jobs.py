"""Job chains (python -m theta_like_jobs ... --chain N): the scripts parse as bash, and, run as the
scheduler would with fake qsub/sbatch commands on PATH that record their calls, each job submits
exactly one continuation with the scheduler's after-any dependency; the continuation resumes the
same run directory, and stops the chain when the study is finished, when the previous job
recorded no training, and when the chain has its N jobs."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from simulators.run_dir import RunDir
from tests.helpers.runs import finished_tiny_run
from theta_like_jobs.cli import main

SCHEDULERS = {  # platform, scheduler, its job id variable, submit command, the dependency arguments before the script
    "cobalt": ("theta", "COBALT_JOBID", "qsub", ["--dependencies", "{job_id}"]),
    "pbs": ("polaris", "PBS_JOBID", "qsub", ["-W", "depend=afterany:{job_id}"]),
    "slurm": ("perlmutter", "SLURM_JOB_ID", "sbatch", ["--parsable", "--dependency=afterany:{job_id}"]),
}
FAKE_SUBMIT = """#!/bin/sh
# records its arguments, answers with the next job id, as qsub and sbatch --parsable print it
count=$(($(cat "$FAKE_SUBMITS" 2>/dev/null | wc -l) + 1))
echo "$*" >> "$FAKE_SUBMITS"
echo "$FAKE_ID_PREFIX$count$FAKE_ID_SUFFIX"
"""
FAKE_LAUNCHER = """import os, sys, pathlib
with open(os.environ["FAKE_LAUNCHES"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_TRAINED"):  # the job's ensemble finished a training
    run = pathlib.Path(os.environ["FAKE_TRAINED"]) / "sims" / f"trained-by-{os.getpid()}"
    run.mkdir(parents=True)
    (run / "result.json").write_text("{}")
"""


@pytest.fixture
def chain(tmp_path):
    """Writes a chain's scripts for a scheduler and runs them as its jobs would run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in ("qsub", "sbatch"):
        (bin_dir / command).write_text(FAKE_SUBMIT)
        (bin_dir / command).chmod(0o755)
    (tmp_path / "fake_launcher.py").write_text(FAKE_LAUNCHER)
    return Chain(tmp_path, bin_dir)


class Chain:
    def __init__(self, tmp_path, bin_dir):
        self.tmp_path, self.bin_dir = tmp_path, bin_dir
        self.submits, self.launches = tmp_path / "submits.log", tmp_path / "launches.log"
        self.run_dir = RunDir(tmp_path / "runs" / "tiny")

    def write(self, scheduler, what, max_jobs=3, name="job.sh"):
        platform = SCHEDULERS[scheduler][0]
        args = ["--platform", platform, "--nodes", "1", "--walltime", "01:00:00", "--queue", "q", "--account", "a",
                "--launcher", f"{sys.executable} {self.tmp_path / 'fake_launcher.py'}", "--python", sys.executable,
                "--chain", str(max_jobs), *what, "-o", str(self.tmp_path / name)]
        assert main(args) == 0
        return self.tmp_path / name

    def run(self, script, scheduler, job_id, trained=False):
        """Run ``script`` as job ``job_id``; the submit calls it made and its stderr."""
        variable = SCHEDULERS[scheduler][1]
        before = self.calls()
        env = {**os.environ, variable: job_id, "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}",
               "FAKE_SUBMITS": str(self.submits), "FAKE_LAUNCHES": str(self.launches),
               "FAKE_ID_PREFIX": "9", "FAKE_ID_SUFFIX": ";cluster" if scheduler == "slurm" else ".fake"}
        if trained:
            env["FAKE_TRAINED"] = str(self.run_dir.path)
        done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return self.calls()[len(before):], done.stderr

    def calls(self):
        return self.submits.read_text().splitlines() if self.submits.exists() else []

    def record(self):
        return json.loads(self.run_dir.chain.read_text())["chains"]

    def last_launch(self):
        return shlex.split(self.launches.read_text().splitlines()[-1])


def expected_call(scheduler, after, script):
    dependency = [arg.format(job_id=after) for arg in SCHEDULERS[scheduler][3]]
    return " ".join([*dependency, str(script)])


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_each_job_of_a_chain_submits_one_continuation_that_resumes_the_run(chain, tmp_path, scheduler, write_spec):
    first = chain.write(scheduler, ["--spec", str(write_spec()), "--out", str(chain.run_dir.path)])
    continuation = tmp_path / "job-continue.sh"
    for script in (first, continuation):
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
        assert os.access(script, os.X_OK)

    suffix = ".fake" if scheduler != "slurm" else ""  # sbatch --parsable's ";cluster" is not part of the id
    calls, stderr = chain.run(first, scheduler, "100", trained=True)
    assert calls == [expected_call(scheduler, "100", continuation)]
    assert f"job 1 of at most 3: submitted 91{suffix}" in stderr
    launched = chain.last_launch()
    assert launched[launched.index("--spec") + 1] == str(tmp_path / "spec.yaml")
    assert launched[launched.index("--out") + 1] == str(chain.run_dir.path)

    calls, stderr = chain.run(continuation, scheduler, f"91{suffix}", trained=True)
    assert calls == [expected_call(scheduler, f"91{suffix}", continuation)]  # it submits itself again
    launched = chain.last_launch()
    assert launched[launched.index("--resume") + 1] == str(chain.run_dir.path) and "--spec" not in launched
    assert "--out" not in launched

    calls, stderr = chain.run(continuation, scheduler, f"92{suffix}", trained=True)
    assert calls == [] and "job 3 of at most 3 (--chain 3)" in stderr
    [record] = chain.record()
    assert [job["job_id"] for job in record["jobs"]] == ["100", f"91{suffix}", f"92{suffix}"]
    assert [job["continuation"] for job in record["jobs"]] == [f"91{suffix}", f"92{suffix}", None]
    assert [job["results"] for job in record["jobs"]] == [0, 1, 2]


def test_a_job_whose_predecessor_recorded_no_training_ends_the_chain(chain, tmp_path, write_spec):
    first = chain.write("pbs", ["--spec", str(write_spec()), "--out", str(chain.run_dir.path)], max_jobs=10)
    calls, _ = chain.run(first, "pbs", "100.fake")  # its ensemble crashed: nothing recorded
    assert len(calls) == 1
    calls, stderr = chain.run(tmp_path / "job-continue.sh", "pbs", "91.fake")
    assert calls == []
    assert "no continuation: the previous job 100.fake recorded no training" in stderr
    assert chain.record()[0]["jobs"][-1]["stopped"].startswith("the previous job 100.fake recorded no training")


def test_a_job_that_finds_the_study_finished_submits_nothing(chain, tmp_path):
    """A --resume chain on a run whose trainings all finished: the script is its own continuation."""
    finished_tiny_run(chain.run_dir.path)
    script = chain.write("slurm", ["--resume", str(chain.run_dir.path)])
    assert not (tmp_path / "job-continue.sh").exists()
    calls, stderr = chain.run(script, "slurm", "300")
    assert calls == [] and "no continuation: the study is finished (4 trainings)" in stderr
    assert chain.last_launch()[chain.last_launch().index("--resume") + 1] == str(chain.run_dir.path)


def test_a_requeued_job_and_a_new_run_on_a_taken_directory_submit_nothing(chain, tmp_path, write_spec):
    first = chain.write("pbs", ["--spec", str(write_spec()), "--out", str(chain.run_dir.path)])
    assert len(chain.run(first, "pbs", "100.fake")[0]) == 1
    calls, stderr = chain.run(first, "pbs", "100.fake")  # the scheduler ran the same job again
    assert calls == [] and "job 100.fake ran before" in stderr
    chain.run_dir.spec.write_text("name: another\n")
    calls, stderr = chain.run(first, "pbs", "200.fake")  # a second --spec chain onto this run directory
    assert calls == [] and "already holds a run" in stderr
