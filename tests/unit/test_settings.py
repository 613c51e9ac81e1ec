"""Typed settings across libEnsemble's boundary: libE() validates its inputs and dumps them back
to dicts; the sim function and the generators must still get the frozen objects."""

from __future__ import annotations

import pickle

import pytest
from libensemble.specs import _EnsembleSpecs
from libensemble.utils.misc import specs_dump
from pydantic import ValidationError

from ensembles.libe_inputs import libe_inputs
from ensembles.loading import load_spec
from ensembles.settings import generator_settings
from generators.settings import GenSettings
from simulators.run_dir import RunDir
from simulators.settings import SimSettings


def through_libe(inputs: dict) -> list[dict]:
    """sim_specs, gen_specs and alloc_specs as libE() hands them on, after its own validation."""
    ensemble = _EnsembleSpecs(**inputs)
    handed_on = (ensemble.sim_specs, ensemble.gen_specs, ensemble.alloc_specs)
    return [specs_dump(specs, by_alias=True) for specs in handed_on]


@pytest.mark.parametrize("kind", ["grid", "asha"])
def test_settings_reach_the_sim_function_and_the_generator_as_the_objects_made(write_spec, tmp_path, kind):
    generator = {"kind": kind} | ({"min_budget": 1} if kind == "asha" else {})
    spec = load_spec(write_spec(generator=generator))
    watcher = object()
    inputs = libe_inputs(spec, RunDir(tmp_path), sim_workers=3, watchers=(watcher,))
    sim_specs, gen_specs, alloc_specs = through_libe(inputs)
    settings, gen_settings = sim_specs["user"]["settings"], gen_specs["user"]["settings"]
    assert isinstance(settings, SimSettings) and settings is inputs["sim_specs"].user["settings"]
    assert isinstance(gen_settings, GenSettings) and gen_settings.space is spec.space  # validated once
    assert settings.run_dir == RunDir(tmp_path) and settings.training.threads == 1 and gen_settings.initial_batch == 3
    assert (gen_settings.asha is not None) == (kind == "asha")
    assert alloc_specs["user"]["watchers"] == (watcher,)  # the manager's own objects, not copies
    for made in (settings, gen_settings):
        assert pickle.loads(pickle.dumps(made)) == made


def test_settings_are_frozen(write_spec):
    settings = generator_settings(load_spec(write_spec()))
    with pytest.raises(ValidationError, match="frozen"):
        settings.seed = 3
