"""Task registry: dataset name -> the module that loads it.

Task modules import Keras and heavy loaders lazily, inside functions, so that validating a
spec (which needs only the names and the option models) starts fast and imports no backend.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TASK_MODULES = {
    "digits": "simulators.tasks.digits",
    "adding": "simulators.tasks.adding",
}
TASK_NAMES = tuple(TASK_MODULES)


def task_module(name: str) -> ModuleType:
    """The module of task ``name``: it has ``Options`` (pydantic), ``load(options, data_dir)`` and
    ``missing_files(data_dir)``."""
    if name not in TASK_MODULES:
        raise ValueError(f"unknown dataset '{name}'; allowed: {', '.join(TASK_NAMES)}")
    return importlib.import_module(TASK_MODULES[name])
