"""One run, one manager: the lock a manager holds on its run directory while it runs.

flock and fcntl locks cannot be trusted across the nodes of NFS or Lustre, so the lock is a file
created exclusively (``O_CREAT | O_EXCL``: atomic on local disks, NFSv3 and later, and Lustre)
that names its holder, plus a heartbeat: a daemon thread of the manager rewrites the file every
``HEARTBEAT_SECONDS``. It rewrites it whole, as a temporary file renamed over the lock, rather
than touching it. A reader then always reads a complete record (host, pid, start, last beat) in
one open, and NFS revalidates a file when it is opened, whereas a stat()'s mtime may come from
a client's attribute cache that is up to a minute old.

A lock is stale when its holder is dead on this host, or when its heartbeat is older than
``STALE_AFTER_SECONDS`` on any host. A holder on another host whose last beat is recent is
watched until it beats again (alive) or stays silent that long (dead), on this process's own
clock. So a chained job that starts right after its killed predecessor takes the run over
instead of being refused, and clocks that differ between nodes do not matter. A stale lock is
renamed aside (only one manager's rename can succeed), checked to be the very record judged
stale, and removed; a fresh lock is read back after ``CONFIRM_AFTER_SECONDS``, because a rival
that moved a live lock aside by mistake puts it back.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from allocators.safekeeping import end_everything
from simulators.run_dir import RunDir

HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 6 * HEARTBEAT_SECONDS  # several beats: a busy file system or a slow beat is not a death
CONFIRM_AFTER_SECONDS = 0.5  # a rival that moved a live lock aside puts it back well within this
READ_ATTEMPTS = 5  # an empty file is a lock being created this instant: read it again shortly
TAKE_ATTEMPTS = 10  # rivals that keep changing the lock: give up rather than loop
OWNERSHIP_LOST_EXIT = 4


class RunLocked(RuntimeError):
    """Another manager holds the run directory, or its lock cannot be read or taken."""


class LockRecord(BaseModel):
    """Who holds a run directory: the content of its lock file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(description="Host name of the manager holding the run directory.")
    pid: int = Field(description="Process id of that manager on its host.")
    created: float = Field(description="When that process started (psutil): tells it from a later one with its pid.")
    started: float = Field(description="When it took the lock, in seconds since the epoch.")
    heartbeat: float = Field(description="Its last heartbeat, in seconds since the epoch by its own clock.")
    beats: int = Field(0, description="Heartbeats so far: a watcher elsewhere sees it change, whatever the clocks say.")
    token: str = Field(description="Unique to this holding of the lock: a takeover or a restart gets another.")

    @classmethod
    def for_this_process(cls) -> LockRecord:
        now = time.time()
        return cls(host=socket.gethostname(), pid=os.getpid(), created=psutil.Process().create_time(),
                   started=now, heartbeat=now, token=uuid.uuid4().hex)

    def beat(self) -> LockRecord:
        return self.model_copy(update={"heartbeat": time.time(), "beats": self.beats + 1})

    def describe(self) -> str:
        started = datetime.datetime.fromtimestamp(self.started).isoformat(sep=" ", timespec="seconds")
        return (f"host {self.host}, pid {self.pid}, started {started}, "
                f"last heartbeat {max(0.0, time.time() - self.heartbeat):.0f} s ago")

    def process_alive(self) -> bool | None:
        """Whether the holder's process runs: known on its own host only (None elsewhere). A
        killed manager stays a zombie until its parent reaps it: dead all the same."""
        if self.host != socket.gethostname():
            return None
        try:
            process = psutil.Process(self.pid)
            return abs(process.create_time() - self.created) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def stale_because(self) -> str | None:
        """Why this lock no longer holds, from this one reading; None when it may still hold."""
        if self.process_alive() is False:
            return f"pid {self.pid} no longer runs on {self.host}"
        age = time.time() - self.heartbeat
        if age > STALE_AFTER_SECONDS:
            return f"its last heartbeat is {age:.0f} s old (stale after {STALE_AFTER_SECONDS:.0f} s)"
        return None


def read_lock(path: Path) -> LockRecord | None:
    """The record in the lock file ``path``; None when there is none."""
    for attempt in range(READ_ATTEMPTS):
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        if text:
            try:
                return LockRecord.model_validate_json(text)
            except ValidationError:
                break
        time.sleep(0.05 * (attempt + 1))
    raise RunLocked(f"{path} is not a taskgen lock (it holds {text[:80]!r}); remove it if no manager runs "
                    f"{path.parent}, then start again")


def _create(path: Path, record: LockRecord) -> bool:
    """Create the lock holding ``record``, unless a lock exists."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as handle:
        handle.write(record.model_dump_json())
    return True


def _rewrite(path: Path, record: LockRecord) -> None:
    temporary = path.with_name(f".{path.name}.{record.token}")
    temporary.write_text(record.model_dump_json())
    os.replace(temporary, path)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _watch_remote(path: Path, holder: LockRecord, wait: float) -> tuple[str, LockRecord | None]:
    """('alive', its latest record) if ``holder`` (on another host) beats within ``wait`` s,
    ('stale', it) if it stays silent, ('changed', ...) if the lock went away or changed hands."""
    _say(f"taskgen: {path} is held by {holder.describe()}; waiting up to {wait:.0f} s for its next heartbeat")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(min(1.0, HEARTBEAT_SECONDS / 5))
        current = read_lock(path)
        if current is None or current.token != holder.token:
            return "changed", current
        if current.beats != holder.beats:
            return "alive", current
    return "stale", holder


def _move_aside(path: Path, holder: LockRecord, mine: LockRecord) -> bool:
    """Remove the stale lock ``holder``; False when another manager moved it first."""
    aside = path.with_name(f"{path.name}.stale-{mine.token}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    moved = read_lock(aside)
    if moved is not None and (moved.token, moved.beats) == (holder.token, holder.beats):
        aside.unlink()
        return True
    os.rename(aside, path)  # a lock that changed since it was judged (a rival's, or the holder woke): give it back
    return False


def _refusal(run_dir: RunDir, holder: LockRecord) -> RunLocked:
    return RunLocked(
        f"{run_dir.path} is being run by another manager: {holder.describe()}. Wait for it to end "
        f"(python -m analysis {run_dir.path} --status shows it), or, if you know that manager is dead, "
        f"remove {run_dir.lock} and start again.")


def acquire(run_dir: RunDir, wait: float = STALE_AFTER_SECONDS) -> RunLock:
    """Take the run directory's lock, over a stale one if need be (with a note); RunLocked while
    a live manager holds it. A holder on another host is watched for up to ``wait`` s."""
    path = run_dir.lock
    mine, taken_from = LockRecord.for_this_process(), None
    for _ in range(TAKE_ATTEMPTS):
        if _create(path, mine):
            time.sleep(CONFIRM_AFTER_SECONDS)
            current = read_lock(path)
            if current is not None and current.token == mine.token:
                if taken_from:
                    _say(f"taskgen: took over the stale lock of {run_dir.path}: {taken_from}")
                return RunLock(path, mine)
            continue
        holder = read_lock(path)
        if holder is None:
            continue
        reason = holder.stale_because()
        if reason is None and holder.process_alive() is None:
            verdict, latest = _watch_remote(path, holder, wait)
            if verdict == "changed":
                continue
            reason = f"no heartbeat from {holder.host} for {wait:.0f} s" if verdict == "stale" else None
            holder = latest
        if reason is None:
            raise _refusal(run_dir, holder)
        if _move_aside(path, holder, mine):
            taken_from = f"{holder.describe()}; {reason}"
    raise RunLocked(f"{path} kept changing hands over {TAKE_ATTEMPTS} attempts to take it: another manager is "
                    f"starting on {run_dir.path}; try again once it runs or has ended")


_held: list[RunLock] = []  # this process's locks, released on a signal's way out (allocators.safekeeping)


class RunLock:
    """A held lock: its heartbeat thread rewrites it until released, and stops this manager if
    another one holds the lock by then (its workers with it: the new holder owns the run)."""

    def __init__(self, path: Path, record: LockRecord):
        self.path = path
        self.record = record
        self._owner_pid = os.getpid()  # a forked worker's copy must never release it
        self._mutex = threading.Lock()
        self._released = threading.Event()
        _held.append(self)
        threading.Thread(target=self._beat_until_released, daemon=True, name="run-lock-heartbeat").start()

    def _beat_until_released(self) -> None:
        while not self._released.wait(HEARTBEAT_SECONDS):
            with self._mutex:
                if self._released.is_set():
                    return
                try:
                    lost_to = self._beat()
                except OSError as error:  # a file-system hiccup: beat again next time
                    _say(f"taskgen: warning: cannot refresh {self.path}: {error}")
                    continue
            if lost_to is not None:
                _stop_after_losing(self.path, lost_to)
                return

    def _beat(self) -> str | None:
        """Rewrite the record with a new heartbeat; who holds the lock when that is not this manager."""
        try:
            current = read_lock(self.path)
            if current is None:  # removed by hand while this manager runs: put it back, unless another took it
                if _create(self.path, self.record):
                    return None
                current = read_lock(self.path)
        except RunLocked as unreadable:
            return str(unreadable)
        if current is None or current.token != self.record.token:
            return current.describe() if current else "nobody (it keeps vanishing)"
        self.record = self.record.beat()
        _rewrite(self.path, self.record)
        return None

    def release(self) -> None:
        if os.getpid() != self._owner_pid:
            return
        with self._mutex:
            self._released.set()
            with contextlib.suppress(RunLocked, OSError):
                current = read_lock(self.path)
                if current is not None and current.token == self.record.token:
                    self.path.unlink()
        if self in _held:
            _held.remove(self)


def release_held() -> None:
    """Release every lock this process holds: a manager leaving by a signal (os._exit skips ``finally``)."""
    for lock in list(_held):
        lock.release()


def _stop_after_losing(path: Path, holder: str) -> None:
    _say(f"taskgen: error: this manager lost the lock {path}, now held by {holder}. It stops at once, without "
         f"saving history.npy (the new holder owns it; finished trainings are kept in sims/*/result.json).")
    end_everything(OWNERSHIP_LOST_EXIT)


def holder_summary(run_dir: RunDir) -> str:
    """Who runs ``run_dir``, for ``python -m analysis RUN --status`` (reads, never writes)."""
    try:
        holder = read_lock(run_dir.lock)
    except RunLocked as unreadable:
        return f"manager: {unreadable}"
    if holder is None:
        return "manager: none (no ensemble runs this directory now)"
    stale = holder.stale_because()
    if stale:
        return f"manager: {holder.describe()}; stale ({stale}): the next manager takes it over"
    seen = "its process runs" if holder.process_alive() else "its heartbeat is recent"
    return f"manager: {holder.describe()}; running ({seen})"
