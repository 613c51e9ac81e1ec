"""Ensemble specs: validation messages name the field; --set overrides; --dry-run counts."""

import pytest
import yaml

from ensembles.loading import PROJECT_ROOT, SpecError, load_spec
from hypers.space import SearchSpace
from run_ensemble import main

GEN_SWEEP = str(PROJECT_ROOT / "ensembles" / "gen_sweep.yaml")


def dry_run(capsys, *args) -> tuple[int, str, str]:
    """``run_ensemble.py --dry-run ARGS``: (exit code, stdout, stderr)."""
    code = main([*args, "--dry-run"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_quick_spec_is_valid_and_small():
    spec = load_spec()
    assert spec.name == "quick"
    assert spec.count_points() == 12


@pytest.mark.parametrize(
    "sections, field",
    [
        ({"generator": {"replicatez": 2}}, "generator.replicatez: unknown field; allowed here: kind, samples"),
        ({"simulator": {"epochs": "many"}}, "simulator.epochs"),
        ({"simulator": {"timeout": -5}}, "simulator.timeout"),
        ({"space": {"choices": {"architecture": ["transformer"], "dataset": ["digits"]}}}, "space.choices"),
        ({"space": {"choices": {"architecture": ["rnn"], "dataset": ["mnist2"]}}}, "dataset"),
        ({"space": {"choices": {"architecture": ["rnn"], "dataset": ["digits"], "learning_rate": [-1.0e-3]}}},
         "learning_rate"),
        ({"name": "../escape"}, "name"),
        ({"generator": {"kind": "random"}}, "samples"),
        ({"simulator": {"tasks": {"adding": {"length": 0}}}}, "length"),
        ({"simulator": {"engine": "fit", "group_size": 4}}, "group_size > 1 needs engine 'jax' or 'auto'"),
        ({"simulator": {"engine": "jax", "group_size": 4, "schedule": "cosine"}},
         "group_size > 1 takes schedule: constant"),
        ({"space": {"choices": {"architecture": ["rnn"], "dataset": ["group"], "permute": [False, True]}}},
         "dataset group (labels: running, one label per step) takes no permute or pad"),
        ({"simulator": {"engine": "fit", "group_size": "auto"}}, "group_size > 1 needs engine 'jax' or 'auto'"),
        ({"simulator": {"group_size": 0}}, "group_size takes 1 to 1024 or auto"),
        ({"generator": {"kind": "asha", "min_budget": 1, "max_budget": 9, "brackets": 4}},
         "generator.brackets: 4 brackets need as many rungs"),
        ({"generator": {"kind": "asha", "max_budget": 9}, "simulator": {"schedule": "cosine"}},
         "simulator.schedule: asha takes schedule: constant"),
        ({"generator": {"kind": "asha", "replicate_finalists": "best"}}, "generator.replicate_finalists"),
        ({"simulator": {"architectures": {"unicornn": {"readout": "middle"}}}}, "readout"),
        ({"simulator": {"kernel": "triton"}}, "simulator.kernel"),
        ({"simulator": {"kernel": "fused"},
          "space": {"choices": {"architecture": ["gru", "lstm"], "dataset": ["digits"], "hidden_dim": [128]}}},
         "simulator.kernel: fused runs rnn, lstm, antisymmetric, lipschitz, exponential, unicornn where a GPU "
         "program holds their recurrent weights (rnn to hidden 128 (256 in bfloat16), lstm to hidden 64, "
         "antisymmetric to hidden 128, lipschitz to hidden 64 (128 in bfloat16), exponential to hidden 128, unicornn "
         "at any hidden size (no recurrent matrix)), and no configuration of the space is one (gru/128, lstm/128): "
         "set simulator.kernel: scan, or choose such an architecture and size"),
    ],
)
def test_bad_specs_name_the_field(write_spec, sections, field):
    with pytest.raises(SpecError) as raised:
        load_spec(write_spec(**sections))
    assert field in str(raised.value), raised.value


def test_a_fused_kernel_takes_a_space_with_some_architectures_it_lacks(write_spec):
    """rnn runs fused, gru the scan: the fallback is per architecture, not an error."""
    spec = load_spec(write_spec(simulator={"kernel": "fused"}))
    assert spec.space.choices["architecture"] == ["rnn", "gru"]
    assert spec.simulator.compute.kernel == "fused"


def test_set_overrides_any_field(write_spec):
    spec = load_spec(
        write_spec(),
        ["generator.replicates=5", "simulator.isolation=process", "space.choices.hidden_dim=[4, 8]",
         "simulator.tasks.adding.length=9"],
    )
    assert spec.replicates == 5
    assert spec.simulator.isolation == "process"
    assert spec.space.choices["hidden_dim"] == [4, 8]
    assert spec.simulator.tasks["adding"]["length"] == 9
    assert spec.count_points() == 2 * 2 * 5


@pytest.mark.parametrize("assignment, message",
                         [("generator", "key.path=value"), ("name.inner=3", "'name' is a value")])
def test_malformed_overrides_are_explained(write_spec, assignment, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write_spec(), [assignment])


def test_override_with_a_bad_value_names_the_field(write_spec):
    with pytest.raises(SpecError, match="generator.seed"):
        load_spec(write_spec(), ["generator.seed=-1"])


def test_space_file_is_found_in_hypers(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "x", "space": "task_generalization.yaml"}))
    assert load_spec(tmp_path / "s.yaml").space.replicates == 10


def test_dry_run_counts_the_published_grid(capsys):
    code, out, err = dry_run(capsys, "--spec", GEN_SWEEP)
    assert code == 0, err
    assert "33600 points" in out.splitlines()


def test_dry_run_reports_bad_spec_without_traceback(write_spec, capsys):
    code, _, err = dry_run(capsys, "--spec", str(write_spec(simulator={"epochs": 0})))
    assert code == 2
    assert "simulator.epochs" in err and "Traceback" not in err


def test_dry_run_prints_the_resource_plan(capsys):
    code, out, err = dry_run(capsys, "--spec", GEN_SWEEP, "--nodes", "8", "--nworkers", "128",
                             "--sim-seconds", "600", "--set", "resources.gpus_per_node=4",
                             "--set", "simulator.gpus_per_sim=1", "--set", "simulator.sims_per_gpu=4")
    assert code == 0, err
    assert "8 node(s), 128 workers (MPI: 129 ranks), up to 16 sims per node" in out
    assert "128 sims at a time, 4 per GPU" in out
    # 33600 trainings / 128 at a time = 263 waves of 600 s = 43.8 h on 8 nodes
    assert "263 waves, about 43.8 h wall time and 350.7 node-hours" in out
    _, grouped, _ = dry_run(capsys, "--spec", GEN_SWEEP, "--nodes", "8", "--nworkers", "32",
                            "--sim-seconds", "600", "--set", "resources.gpus_per_node=4",
                            "--set", "simulator.gpus_per_sim=1", "--set", "simulator.engine=jax",
                            "--set", "simulator.group_size=16")
    assert "32 sims at a time of up to 16 trainings each (vectorised groups), 1 per GPU" in grouped
    assert "66 waves, about 11.0 h wall time" in grouped  # 33600 / (32 x 16) = 65.6
    assert "one group per GPU" not in grouped
    _, shared, _ = dry_run(capsys, "--spec", GEN_SWEEP, "--set", "resources.gpus_per_node=4", "--set",
                           "simulator.gpus_per_sim=1", "--set", "simulator.engine=jax", "--set",
                           "simulator.group_size=auto", "--set", "simulator.sims_per_gpu=4")
    assert "plan: note: groups sharing a GPU; one group per GPU (sims_per_gpu: 1) trained faster" in shared


def test_asha_sweep_searches_the_published_space_and_dry_run_counts_it(capsys):
    spec = load_spec(PROJECT_ROOT / "ensembles" / "asha_sweep.yaml")
    study = yaml.safe_load((PROJECT_ROOT / "hypers" / "task_generalization.yaml").read_text())
    epochs = study["choices"].pop("epochs")  # asha chooses the epochs by rung
    assert spec.space == SearchSpace.model_validate(study)
    assert spec.adaptive and spec.budgets[-1] == max(epochs) and spec.replicates == study["replicates"]
    code, out, err = dry_run(capsys, "--spec", str(PROJECT_ROOT / "ensembles" / "asha_sweep.yaml"))
    assert code == 0, err
    lines = out.splitlines()
    assert "asha: 1680 configurations, rungs of [2, 6, 18, 50] epochs" in lines and "at most 21840 points" in lines


def test_dry_run_says_how_many_impossible_configurations_it_dropped_and_why(write_spec, capsys):
    spec_path = write_spec(space={"choices": {"architecture": ["rnn"], "dataset": ["digits"], "pad": [0, 10],
                                              "orientation": ["none", "post"]}, "replicates": 2})
    assert main(["--spec", str(spec_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "dropped 2 configurations: pad must be 0 exactly when orientation is none" in lines
    assert "4 points" in lines


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not UTF-8 text (byte 0x89 at offset 0)"),
    (b"name: a\x00b\n", "is not a text file"),
    (b"name: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 9)"),
])
@pytest.mark.parametrize("where", ["spec", "space file"])
def test_a_binary_or_non_utf8_spec_is_one_error_line_and_exit_code_2(tmp_path, capsys, content, message, where):
    spec_path = tmp_path / "spec.yaml"
    if where == "spec":
        spec_path.write_bytes(content)
    else:
        (tmp_path / "space.yaml").write_bytes(content)
        spec_path.write_text("name: x\nspace: space.yaml\n")
    assert main(["--spec", str(spec_path), "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and message in error and "Traceback" not in error
