"""A job plan laid out as a batch script through jinja2: one template per scheduler
(``templates/<scheduler>.sh.j2``) for its directives, one layout and one set of macros for what
every script shares, so a fix to signal handling lands in all three at once.
"""

from __future__ import annotations

import shlex
from functools import lru_cache
from pathlib import Path

import jinja2

from theta_like_jobs.plan import JobPlan

TEMPLATES = Path(__file__).with_name("templates")
CONTINUATION = " \\\n    "


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,  # a missing plan field is an error, not an empty directive
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["quote"] = lambda value: shlex.quote(str(value))
    return environment


def _option_groups(tokens: list[str]) -> list[list[str]]:
    """[python, run_ensemble.py, --spec, X, --set, a=b] -> [[python, run_ensemble.py], [--spec, X], [--set, a=b]]"""
    groups: list[list[str]] = []
    for token in tokens:
        if not groups or token.startswith("--"):
            groups.append([])
        groups[-1].append(token)
    return groups


def launch_command(plan: JobPlan) -> str:
    """The launcher and run_ensemble.py as one shell command, one option per line."""
    return CONTINUATION.join(shlex.join(group) for group in [plan.launcher, *_option_groups(plan.ensemble)])


def render(plan: JobPlan) -> str:
    return _templates().get_template(f"{plan.scheduler}.sh.j2").render(plan=plan, launch=launch_command(plan))
