"""Shared fixtures. Unit tests (tests/unit) start no ensemble, trainer process or MPI; the
integration tests (tests/integration) do. Helpers shared by both are in tests/helpers."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.helpers.jax_scripts import JaxProcess
from tests.helpers.runs import tiny_spec_dict

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def write_spec(tmp_path):
    """Write ``tiny_spec_dict(**sections)`` as a real YAML file; returns its path."""

    def write(**sections):
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(tiny_spec_dict(**sections)))
        return path

    return write


@pytest.fixture(scope="session")
def on_jax(tmp_path_factory):
    """Runs a script on Keras' JAX backend, in this pytest process's warm JAX process
    (tests/helpers/jax_scripts.py); returns the last line it printed, read as JSON."""
    process = JaxProcess(tmp_path_factory.mktemp("jax") / "stderr.log")
    yield process.run
    process.stop()
