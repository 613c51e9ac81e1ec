"""One run, one manager: the run directory's lock (ensembles/ownership.py) refuses a second
manager while the first lives, is taken over when its holder is dead or silent, survives two
managers racing for the same stale lock, and stops a manager that lost it."""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
import subprocess
import sys
import time

import psutil
import pytest

import ensembles.ownership as ownership
from ensembles.ownership import LOCK_FILE, LockRecord, RunLocked, acquire, holder_summary, read_lock
from tests.conftest import finished_tiny_run, run_command


def plant_lock(run_dir, **fields) -> LockRecord:
    """A lock as another manager would have left it (this process's own, changed by ``fields``)."""
    record = LockRecord.for_this_process().model_copy(update=fields)
    (run_dir / LOCK_FILE).write_text(record.model_dump_json())
    return record


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_live_manager_refuses_a_second_one_naming_itself(tmp_path):
    lock = acquire(tmp_path)
    try:
        with pytest.raises(RunLocked) as refused:
            acquire(tmp_path)
        message = str(refused.value)
        host, pid = socket.gethostname(), os.getpid()
        assert re.search(rf"host {host}, pid {pid}, started \S+ \S+, last heartbeat [01] s ago", message)
        assert f"remove {tmp_path / LOCK_FILE}" in message and "Wait for it to end" in message
        assert "running (its process runs)" in holder_summary(tmp_path)
    finally:
        lock.release()
    assert not (tmp_path / LOCK_FILE).exists()
    assert holder_summary(tmp_path).startswith("manager: none")


def test_the_heartbeat_rewrites_the_lock_while_it_is_held(tmp_path, monkeypatch):
    monkeypatch.setattr(ownership, "HEARTBEAT_SECONDS", 0.1)
    lock = acquire(tmp_path)
    try:
        first = read_lock(tmp_path / LOCK_FILE)
        time.sleep(0.5)
        later = read_lock(tmp_path / LOCK_FILE)
        assert later.token == first.token and later.beats >= 2 and later.heartbeat > first.heartbeat
    finally:
        lock.release()


@pytest.mark.parametrize("stale", ["dead pid", "reused pid", "old heartbeat elsewhere"])
def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, capsys, stale):
    fields = {"dead pid": {"pid": dead_pid()},
              "reused pid": {"created": psutil.Process().create_time() - 3600},  # this pid, an earlier process
              "old heartbeat elsewhere": {"host": "another-node", "heartbeat": time.time() - 120}}[stale]
    old = plant_lock(tmp_path, **fields)
    lock = acquire(tmp_path)
    try:
        note = capsys.readouterr().err
        assert f"took over the stale lock of {tmp_path}: host {old.host}, pid {old.pid}" in note
        why = "last heartbeat is 120 s old" if stale == "old heartbeat elsewhere" else "no longer runs"
        assert why in note
        assert read_lock(tmp_path / LOCK_FILE).token == lock.record.token
        assert sorted(path.name for path in tmp_path.iterdir()) == [LOCK_FILE]  # nothing moved aside is left
    finally:
        lock.release()


def test_a_silent_holder_on_another_host_is_watched_until_it_is_stale_and_a_beating_one_refuses(tmp_path, capsys):
    plant_lock(tmp_path, host="another-node")  # a recent heartbeat from a host whose processes we cannot see
    started = time.monotonic()
    lock = acquire(tmp_path, wait=1.5)
    assert 1.5 <= time.monotonic() - started < 5
    assert "no heartbeat from another-node for 2 s" in capsys.readouterr().err
    lock.release()

    beating = plant_lock(tmp_path, host="another-node")
    with multiprocessing.get_context("fork").Pool(1) as pool:
        beat = pool.apply_async(_beat_once, (tmp_path / LOCK_FILE, beating, 0.5))
        with pytest.raises(RunLocked, match="host another-node"):
            acquire(tmp_path, wait=5)
        beat.get(timeout=10)


def _beat_once(path, record, after):
    time.sleep(after)
    path.write_text(record.beat().model_dump_json())


def _race(run_dir, start_at, results):
    while time.time() < start_at:
        time.sleep(0.001)
    try:
        lock = acquire(run_dir)
        results.put(("owner", os.getpid()))
        time.sleep(1.5)  # hold it while the other one decides
        lock.release()
    except RunLocked as refused:
        results.put(("refused", str(refused)))


def test_two_managers_racing_for_one_stale_lock_leave_exactly_one_owner(tmp_path):
    for _ in range(2):
        plant_lock(tmp_path, pid=dead_pid())
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        start_at = time.time() + 0.5
        racers = [context.Process(target=_race, args=(tmp_path, start_at, results)) for _ in range(2)]
        for racer in racers:
            racer.start()
        outcomes = sorted(results.get(timeout=30)[0] for _ in racers)
        for racer in racers:
            racer.join(timeout=30)
        assert outcomes == ["owner", "refused"]
        assert not (tmp_path / LOCK_FILE).exists()


def test_a_manager_that_lost_its_lock_stops_at_once(tmp_path):
    """A manager frozen past the stale bound (SIGSTOP, a hung file system) finds another holder
    when it wakes: it must stop rather than run on beside the new one."""
    script = (f"import time, ensembles.ownership as o; o.HEARTBEAT_SECONDS = 0.2; lock = o.acquire({str(tmp_path)!r}); "
              "print('locked', flush=True); time.sleep(30)")
    manager = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert manager.stdout.readline() == "locked\n"
    plant_lock(tmp_path, token="someone-else")
    assert manager.wait(timeout=10) == ownership.OWNERSHIP_LOST_EXIT
    assert "lost the lock" in manager.stderr.read()
    assert read_lock(tmp_path / LOCK_FILE).token == "someone-else"  # the new holder's lock is left alone


def test_resume_is_refused_while_a_manager_holds_the_run_and_takes_a_dead_ones_lock_over(tmp_path):
    run_dir = finished_tiny_run(tmp_path / "run")
    saved = (run_dir / "history.npy").read_bytes()
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (run_dir / LOCK_FILE).write_text(LockRecord.for_this_process().model_copy(update={
            "pid": holder.pid, "created": psutil.Process(holder.pid).create_time()}).model_dump_json())
        refused = run_command(["python", "run_ensemble.py", "--resume", str(run_dir)])
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert f"is being run by another manager: host {socket.gethostname()}, pid {holder.pid}" in refused.stderr
        assert "already finished" not in refused.stdout
        status = run_command(["python", "-m", "analysis", str(run_dir), "--status"])
        assert f"manager: host {socket.gethostname()}, pid {holder.pid}" in status.stdout
    finally:
        holder.kill()
        holder.wait()
    resumed = run_command(["python", "run_ensemble.py", "--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"took over the stale lock of {run_dir}" in resumed.stderr
    assert f"pid {holder.pid} no longer runs" in resumed.stderr
    assert "already finished (4 trainings)" in resumed.stdout
    assert not (run_dir / LOCK_FILE).exists()
    assert (run_dir / "history.npy").read_bytes() == saved
