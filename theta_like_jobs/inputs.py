"""Checking what the user typed: walltimes, names that end up in directives, and the few spec
fields a job plan depends on.

Checks live here, before any template runs, so that every mistake becomes one error naming the
flag (``--walltime '1:5': write it as HH:MM:SS``) instead of a script the scheduler rejects
hours later in the queue.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

WALLTIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
# queue, account, job names go into directive lines: no spaces, no shell or directive syntax
DIRECTIVE_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,@:+-]*$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class JobError(ValueError):
    """A request that cannot become a job script; the message starts with the flag to fix."""

    def __init__(self, flag: str, message: str):
        super().__init__(f"{flag}: {message}")
        self.flag = flag


def parse_walltime(text: str) -> tuple[int, str]:
    """Seconds and the normalised HH:MM:SS that all three schedulers accept."""
    match = WALLTIME.match(text.strip())
    if not match:
        raise JobError("--walltime", f"{text!r} is not a walltime; write it as HH:MM:SS, e.g. 01:30:00")
    hours, minutes, seconds = map(int, match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total == 0:
        raise JobError("--walltime", "must be longer than 00:00:00")
    return total, f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def directive_word(flag: str, value: str) -> str:
    if not DIRECTIVE_WORD.match(value or ""):
        raise JobError(flag, f"{value!r} must be one word of letters, digits and _ . , @ : + - "
                       "(it becomes a directive)")
    return value


def read_spec_facts(path: Path, flag: str) -> dict[str, Any]:
    """The spec's name and simulator section, read as plain YAML: the job only needs GPU packing,
    threads and isolation from it, and reading them must not import the training stack."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise JobError(flag, f"no such file: {path}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise JobError(flag, f"{path} is not a valid YAML text file: {' '.join(str(error).split())}") from None
    if not isinstance(raw, dict):
        raise JobError(flag, f"{path} must hold a mapping of spec fields")
    simulator = raw.get("simulator") if isinstance(raw.get("simulator"), dict) else {}
    resources = raw.get("resources") if isinstance(raw.get("resources"), dict) else {}
    return {
        "name": raw.get("name") if isinstance(raw.get("name"), str) else None,
        "gpus_per_sim": simulator.get("gpus_per_sim"),
        "sims_per_gpu": simulator.get("sims_per_gpu"),
        "threads": simulator.get("threads"),
        "isolation": simulator.get("isolation", "process"),
        "gpus_per_node": resources.get("gpus_per_node"),
    }
