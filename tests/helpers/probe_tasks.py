"""A task that reports the environment a training sees instead of training (TASKGEN_PLUGINS),
to test GPU and thread placement without GPUs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from simulators.tasks import digits

RECORD_DIR_ENV = "TASKGEN_PROBE_DIR"


class EnvironmentProbe:
    Options = digits.Options

    @staticmethod
    def missing_files(data_dir):
        return []

    @staticmethod
    def load(options, data_dir=None):
        names = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "OMP_NUM_THREADS", "XLA_PYTHON_CLIENT_MEM_FRACTION")
        seen = {name: os.environ.get(name) for name in names}
        record = Path(os.environ[RECORD_DIR_ENV]) / f"{os.getpid()}-{len(os.listdir(os.environ[RECORD_DIR_ENV]))}.json"
        record.write_text(json.dumps(seen))
        raise RuntimeError("probe recorded its environment")


PROBE = EnvironmentProbe()
TASKS = {"probe_environment": "tests.helpers.probe_tasks:PROBE"}
