"""Job scripts under signals: the walltime's SIGTERM, qdel/scancel and Ctrl-C reach the launcher
(a fake one, and a real mpiexec passing it on to every rank), and PBS scripts warn the ensemble
before the walltime themselves."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.jobs import SPEC, write_job

FAKE_LAUNCHER = '''\
import os, signal, sys, time
log = os.environ["FAKE_LAUNCHER_LOG"]
def record(number, frame):
    with open(log, "a") as out:
        out.write(signal.Signals(number).name + "\\n")
    sys.exit(128 + number)  # as run_ensemble.py does once the manager has saved
for number in (signal.SIGTERM, signal.SIGUSR1):
    signal.signal(number, record)
with open(log, "a") as out:
    out.write("started " + " ".join(sys.argv[1:]) + "\\n")
time.sleep(60)
'''


def start_fake_job(tmp_path, walltime="01:00:00", margin=None, launcher_file=FAKE_LAUNCHER):
    fake = tmp_path / "fake_launcher.py"
    fake.write_text(launcher_file)
    extra = ["--margin-minutes", margin] if margin else []
    _, path = write_job(tmp_path, ["--platform", "generic", "--scheduler", "pbs", "--cores-per-node", "4",
                                   "--spec", str(SPEC), "--nodes", "1", "--walltime", walltime, "--queue", "q",
                                   "--account", "a", "--launcher", f"{sys.executable} {fake}", *extra])
    log = tmp_path / "launcher.log"
    # as a scheduler starts it: its own session, SIGINT not ignored (bash cannot trap a signal
    # ignored when it starts, and a pytest-xdist worker ignores SIGINT)
    job = subprocess.Popen(["bash", str(path)], env={**os.environ, "FAKE_LAUNCHER_LOG": str(log)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 10
    while not (log.exists() and "started" in log.read_text()):
        assert time.monotonic() < deadline and job.poll() is None, job.stderr.read() if job.poll() is not None else ""
        time.sleep(0.05)
    return job, log


@pytest.mark.parametrize(("sent", "received"), [("SIGTERM", "SIGTERM"), ("SIGUSR1", "SIGUSR1"), ("SIGINT", "SIGTERM")])
def test_signals_to_the_job_script_reach_the_launcher(tmp_path, sent, received):
    job, log = start_fake_job(tmp_path)
    assert "-n 2 -ppn 2 python run_ensemble.py --spec" in log.read_text()  # 4 cores / 4 threads: 1 worker + 1 manager
    job.send_signal(getattr(signal, sent))
    assert job.wait(timeout=10) == 128 + getattr(signal, received)  # the launcher's status is the job's
    assert log.read_text().splitlines()[1:] == [received]
    assert f"received {sent}, sending {received}" in job.stderr.read()


def test_pbs_script_warns_the_ensemble_before_the_walltime_itself(tmp_path):
    """PBS gives no warning: the script's own timer sends SIGUSR1 margin/2 before the walltime
    (here a 5 s walltime with a 3 s margin: the warning comes 4 s in)."""
    started = time.monotonic()
    job, log = start_fake_job(tmp_path, walltime="00:00:05", margin="0.05")
    assert job.wait(timeout=10) == 128 + signal.SIGUSR1
    assert log.read_text().splitlines()[1:] == ["SIGUSR1"] and 3.5 < time.monotonic() - started < 9


FAKE_PYTHON = '''\
#!{python}
import os, signal, sys, time
def record(number, frame):
    with open(os.path.join(os.environ["FAKE_LAUNCHER_LOG"] + ".ranks", str(os.getpid())), "w") as out:
        out.write(signal.Signals(number).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, record)
open(os.environ["FAKE_LAUNCHER_LOG"], "a").write("started\\n")
time.sleep(60)
'''


@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec on PATH")
def test_a_real_mpiexec_passes_the_forwarded_signal_to_every_rank(tmp_path):
    """bash -> mpiexec (MPICH's Hydra, as a generic PBS cluster has) -> each rank: the manager's
    save-on-signal needs the launcher to pass SIGTERM on, which Hydra does."""
    fake_python = tmp_path / "fake_python"
    fake_python.write_text(FAKE_PYTHON.format(python=sys.executable))
    fake_python.chmod(0o755)
    (tmp_path / "launcher.log.ranks").mkdir()
    _, path = write_job(tmp_path, ["--platform", "generic", "--scheduler", "pbs", "--cores-per-node", "2",
                                   "--workers", "1", "--spec", str(SPEC), "--nodes", "1", "--walltime", "01:00:00",
                                   "--queue", "q", "--account", "a", "--python", str(fake_python)])
    log = tmp_path / "launcher.log"
    job = subprocess.Popen(["bash", str(path)], env={**os.environ, "FAKE_LAUNCHER_LOG": str(log)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not (log.exists() and log.read_text().count("started") == 2):
        assert time.monotonic() < deadline and job.poll() is None
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    job.wait(timeout=15)
    ranks = [f.read_text() for f in (tmp_path / "launcher.log.ranks").iterdir()]
    assert ranks == ["SIGTERM", "SIGTERM"]
