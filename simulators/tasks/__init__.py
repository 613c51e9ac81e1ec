"""Task registry: dataset name -> the module (or object) that loads it.

Task modules import Keras and heavy loaders lazily, inside functions, so that validating a
spec (which needs only the names and the option models) starts fast and imports no backend.
Users add their own tasks without editing taskgen: ``TASKGEN_PLUGINS=mypkg.tasks`` names
modules whose ``TASKS`` dict maps new dataset names to ``"module"`` or ``"module:attribute"``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

TASK_MODULES = {
    "digits": "simulators.tasks.digits",
    "adding": "simulators.tasks.adding",
    "copy": "simulators.tasks.copy",
    "group": "simulators.tasks.group",
    "two_moons": "simulators.tasks.two_moons",
    "mnist": "simulators.tasks.keras_datasets:mnist",
    "fashion_mnist": "simulators.tasks.keras_datasets:fashion_mnist",
    "cifar10": "simulators.tasks.keras_datasets:cifar10",
    "imdb": "simulators.tasks.keras_datasets:imdb",
    "reuters": "simulators.tasks.keras_datasets:reuters",
}


def _plugin_tasks() -> dict[str, str]:
    tasks: dict[str, str] = {}
    for name in filter(None, os.environ.get("TASKGEN_PLUGINS", "").split(",")):
        try:
            tasks.update(importlib.import_module(name.strip()).TASKS)
        except (ImportError, AttributeError) as error:
            raise ImportError(f"TASKGEN_PLUGINS: '{name}' must be an importable module with a TASKS dict: "
                              f"{error}") from None
    return tasks


TASK_MODULES.update(_plugin_tasks())
TASK_NAMES = tuple(TASK_MODULES)


def task_module(name: str) -> Any:
    """The task ``name``: it has ``Options`` (pydantic), ``load(options, data_dir)`` and
    ``missing_files(data_dir)``."""
    if name not in TASK_MODULES:
        raise ValueError(f"unknown dataset '{name}'; allowed: {', '.join(TASK_NAMES)}")
    module, _, attribute = TASK_MODULES[name].partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded
