"""A task that sleeps instead of training, loaded through ``TASKGEN_PLUGINS=benchmarks.sleep_task``,
so that ``benchmarks/ensemble_overhead.py`` times taskgen's real dispatch path (run_ensemble.py,
its generator, allocator and sim function, the per-training records) with sims of a known
length and without importing a backend.

Loading it sleeps ``seconds`` and then raises: the trainer records the training as ``failed``
with the error ``Slept``, having done everything a training does around the model itself.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field


class Slept(Exception):
    """The sleep is over; there is nothing to train."""


class SleepTask:
    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        seconds: float = Field(1.0, ge=0, description="How long each sim sleeps.")

    @staticmethod
    def missing_files(data_dir):
        return []

    @staticmethod
    def load(options, data_dir=None):
        time.sleep(options.seconds)
        raise Slept(f"slept {options.seconds} s")


SLEEP = SleepTask()
TASKS = {"sleep": "benchmarks.sleep_task:SLEEP"}
