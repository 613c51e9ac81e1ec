"""Prepared task variants on disk, so that process-isolated trainings load each one once.

With ``isolation: process`` every training is a new process: an in-memory cache never hits,
and each training would read, permute and pad its dataset again (seconds for sequential MNIST
padded to 1784 steps). The variant (``TaskData`` after ``apply_variation``) is written once as
``.npy`` files and read back with ``mmap_mode="r"``, so trainings packed on one node share its
pages. An entry is written into a temporary directory and renamed into place: a concurrent
reader sees a whole entry or none. An entry that cannot be read (a disk full, a file cut
short) is removed and built again, never trusted.

The key names everything the data depends on: dataset, task options, data dir, variation (with
the corruptions and the seed they were drawn from), and the size and modification time of the
task's code and data files, so an edited task or a re-downloaded file never reads a stale entry.
Tasks must be deterministic (they are: every training of a study sees the same data). Entries are
never evicted; delete the directory freely.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from simulators.tasks import corruptions, keras_cache, transforms
from simulators.tasks.base import TaskData

ARRAYS = ("x_train", "y_train", "x_val", "y_val")
META_FILE = "meta.json"  # written last into the temporary directory


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/taskgen``, by default ``~/.cache/taskgen``."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "taskgen"


def _stat(path: Path) -> list[Any]:
    """What tells an edited or replaced file apart, without reading it."""
    try:
        status = path.stat()
    except OSError:
        return [str(path), None]
    return [str(path), status.st_size, status.st_mtime_ns]


def source_files(task: Any, data_dir: Path | None) -> list[Path]:
    """The task's code (its module, or its object's class) and, for downloaded datasets, the files it reads."""
    owner = task if inspect.ismodule(task) else type(task)
    code = [Path(inspect.getfile(owner)), Path(transforms.__file__), Path(corruptions.__file__)]
    directory = keras_cache.data_dir_or_default(data_dir)
    return code + [directory / name for name in getattr(task, "files", ())]


def entry_name(dataset: str, task: Any, options_json: str, data_dir: Path | None, variation: tuple) -> str:
    """``<dataset>-<hash of everything the prepared data depends on>``."""
    key = [dataset, options_json, str(data_dir), list(variation), [_stat(p) for p in source_files(task, data_dir)]]
    return f"{dataset}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:20]}"


def read(entry: Path) -> TaskData | None:
    """The entry's data, memory-mapped; None if it is absent. Raises if it is damaged."""
    if not entry.is_dir():
        return None
    meta = json.loads((entry / META_FILE).read_text())
    arrays = {name: np.load(entry / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    if {name: list(array.shape) for name, array in arrays.items()} != meta.pop("shapes"):
        raise ValueError(f"{entry}: arrays do not have the shapes the entry recorded")
    return TaskData(**arrays, **meta)


def write(entry: Path, data: TaskData) -> None:
    """Write into a private temporary directory, then rename it to ``entry`` in one step; if
    another process got there first its (identical) entry stays."""
    temporary = entry.with_name(f".{entry.name}.{uuid.uuid4().hex}")
    try:
        temporary.mkdir(parents=True)
        meta = {f.name: getattr(data, f.name) for f in dataclasses.fields(data) if f.name not in ARRAYS}
        for name in ARRAYS:
            np.save(temporary / f"{name}.npy", np.ascontiguousarray(getattr(data, name)))
        meta["shapes"] = {name: list(getattr(data, name).shape) for name in ARRAYS}
        (temporary / META_FILE).write_text(json.dumps(meta))
        os.rename(temporary, entry)
    except (OSError, TypeError):  # a concurrent writer won, a full or read-only disk, or a plugin
        pass  # task's metadata JSON cannot hold: train on, uncached
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _discard(entry: Path) -> None:
    """Move a damaged entry aside first, so that no reader meets it half deleted."""
    doomed = entry.with_name(f".{entry.name}.damaged.{uuid.uuid4().hex}")
    try:
        os.rename(entry, doomed)
    except OSError:  # another process already moved it
        return
    shutil.rmtree(doomed, ignore_errors=True)


def cached(entry: Path, build: Callable[[], TaskData]) -> TaskData:
    """The data in ``entry``, built and stored there first if it is missing or damaged."""
    try:
        data = read(entry)
    except (OSError, ValueError, TypeError, KeyError):
        _discard(entry)
        data = None
    if data is not None:
        return data
    data = build()
    write(entry, data)
    return data
