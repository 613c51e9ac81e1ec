"""Run the real ``keras.datasets`` loaders offline, on files already in a local cache.

Compute nodes usually have no internet, and Keras' ``get_file`` treats a cached file whose hash
differs from the published one as stale: it deletes it and downloads again. taskgen therefore
runs each loader with its ``get_file`` swapped for a lookup in the data directory (the Keras
cache ``$KERAS_HOME/datasets``, default ``~/.keras/datasets``, or the spec's ``data_dir``), so
the loader's own parsing runs unchanged and nothing is ever fetched from a worker.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path
from unittest import mock


class DatasetMissing(FileNotFoundError):
    """A dataset file is not in the local cache; the message says how to fetch it."""


def default_data_dir() -> Path:
    """Where Keras caches datasets, computed without importing Keras."""
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets"


def data_dir_or_default(data_dir: Path | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


def fetch_command(loader: str, data_dir: Path) -> str:
    """The one line that downloads ``loader``'s files into ``data_dir`` on a machine with internet."""
    load = f"python -c 'import keras; keras.datasets.{loader}.load_data()'"
    if data_dir.name == "datasets":
        home = data_dir.parent
        return load if home == Path("~/.keras").expanduser() else f"KERAS_HOME={home} {load}"
    return f"KERAS_HOME=/tmp/keras-fetch {load} && cp -r /tmp/keras-fetch/datasets/. {data_dir}/"


def missing_files(loader: str, files: tuple[str, ...], data_dir: Path | None) -> list[str]:
    """One line per file of ``files`` (relative to the data dir) that is absent."""
    directory = data_dir_or_default(data_dir)
    absent = [name for name in files if not (directory / name).exists()]
    return [f"{directory / name} (fetch on a login node: {fetch_command(loader, directory)})" for name in absent]


def _cache_lookup(loader: str, directory: Path):
    def get_file(fname=None, origin=None, cache_subdir="datasets", **_ignored):
        subdir = Path(cache_subdir).parts
        subdir = subdir[1:] if subdir[:1] == ("datasets",) else subdir  # Keras nests under datasets/
        path = directory.joinpath(*subdir, fname)
        if not path.exists():
            raise DatasetMissing(f"{path} is missing; fetch it on a login node: {fetch_command(loader, directory)}")
        return str(path)

    return get_file


@contextlib.contextmanager
def offline_loader(loader: str, data_dir: Path | None):
    """``keras.datasets.<loader>`` whose files come from the data directory only."""
    module = importlib.import_module(f"keras.src.datasets.{loader}")
    with mock.patch.object(module, "get_file", _cache_lookup(loader, data_dir_or_default(data_dir))):
        yield module
