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
from ensembles.ownership import LockRecord, RunLocked, acquire, holder_summary, read_lock
from simulators.run_dir import RunDir


@pytest.fixture
def run_dir(tmp_path) -> RunDir:
    return RunDir(tmp_path)


def plant_lock(run_dir: RunDir, **fields) -> LockRecord:
    """A lock as another manager would have left it (this process's own, changed by ``fields``)."""
    record = LockRecord.for_this_process().model_copy(update=fields)
    run_dir.lock.write_text(record.model_dump_json())
    return record


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_live_manager_refuses_a_second_one_naming_itself(run_dir):
    lock = acquire(run_dir)
    try:
        with pytest.raises(RunLocked) as refused:
            acquire(run_dir)
        message = str(refused.value)
        host, pid = socket.gethostname(), os.getpid()
        assert re.search(rf"host {host}, pid {pid}, started \S+ \S+, last heartbeat [01] s ago", message)
        assert f"remove {run_dir.lock}" in message and "Wait for it to end" in message
        assert "running (its process runs)" in holder_summary(run_dir)
    finally:
        lock.release()
    assert not run_dir.lock.exists()
    assert holder_summary(run_dir).startswith("manager: none")


def test_the_heartbeat_rewrites_the_lock_while_it_is_held(run_dir, monkeypatch):
    monkeypatch.setattr(ownership, "HEARTBEAT_SECONDS", 0.1)
    lock = acquire(run_dir)
    try:
        first = read_lock(run_dir.lock)
        time.sleep(0.5)
        later = read_lock(run_dir.lock)
        assert later.token == first.token and later.beats >= 2 and later.heartbeat > first.heartbeat
    finally:
        lock.release()


@pytest.mark.parametrize("stale", ["dead pid", "reused pid", "old heartbeat elsewhere"])
def test_a_stale_lock_is_taken_over_with_a_note(run_dir, capsys, stale):
    fields = {"dead pid": {"pid": dead_pid()},
              "reused pid": {"created": psutil.Process().create_time() - 3600},  # this pid, an earlier process
              "old heartbeat elsewhere": {"host": "another-node", "heartbeat": time.time() - 120}}[stale]
    old = plant_lock(run_dir, **fields)
    lock = acquire(run_dir)
    try:
        note = capsys.readouterr().err
        assert f"took over the stale lock of {run_dir.path}: host {old.host}, pid {old.pid}" in note
        why = "last heartbeat is 120 s old" if stale == "old heartbeat elsewhere" else "no longer runs"
        assert why in note
        assert read_lock(run_dir.lock).token == lock.record.token
        assert list(run_dir.path.iterdir()) == [run_dir.lock]  # nothing moved aside is left
    finally:
        lock.release()


def test_a_silent_holder_on_another_host_is_watched_until_it_is_stale_and_a_beating_one_refuses(run_dir, capsys):
    plant_lock(run_dir, host="another-node")  # a recent heartbeat from a host whose processes we cannot see
    started = time.monotonic()
    lock = acquire(run_dir, wait=1.5)
    assert 1.5 <= time.monotonic() - started < 5
    assert "no heartbeat from another-node for 2 s" in capsys.readouterr().err
    lock.release()

    beating = plant_lock(run_dir, host="another-node")
    with multiprocessing.get_context("fork").Pool(1) as pool:
        beat = pool.apply_async(_beat_once, (run_dir.lock, beating, 0.5))
        with pytest.raises(RunLocked, match="host another-node"):
            acquire(run_dir, wait=5)
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


def test_two_managers_racing_for_one_stale_lock_leave_exactly_one_owner(run_dir):
    for _ in range(2):
        plant_lock(run_dir, pid=dead_pid())
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        start_at = time.time() + 0.5
        racers = [context.Process(target=_race, args=(run_dir, start_at, results)) for _ in range(2)]
        for racer in racers:
            racer.start()
        outcomes = sorted(results.get(timeout=30)[0] for _ in racers)
        for racer in racers:
            racer.join(timeout=30)
        assert outcomes == ["owner", "refused"]
        assert not run_dir.lock.exists()


def test_a_manager_that_lost_its_lock_stops_at_once(run_dir):
    """A manager frozen past the stale bound (SIGSTOP, a hung file system) finds another holder
    when it wakes: it must stop rather than run on beside the new one."""
    script = ("import time, pathlib, ensembles.ownership as o; from simulators.run_dir import RunDir; "
              f"o.HEARTBEAT_SECONDS = 0.2; lock = o.acquire(RunDir(pathlib.Path({str(run_dir.path)!r}))); "
              "print('locked', flush=True); time.sleep(30)")
    manager = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert manager.stdout.readline() == "locked\n"
    plant_lock(run_dir, token="someone-else")
    assert manager.wait(timeout=10) == ownership.OWNERSHIP_LOST_EXIT
    assert "lost the lock" in manager.stderr.read()
    assert read_lock(run_dir.lock).token == "someone-else"  # the new holder's lock is left alone
