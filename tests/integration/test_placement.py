"""GPU and thread placement through libEnsemble's resource sets, on faked PBS and SLURM
allocations: every training sees the GPUs and threads it was allotted, and no GPU carries more
than ``sims_per_gpu`` trainings."""

import json
from collections import Counter

import numpy as np
import pytest

from tests.helpers.runs import run_command


def fake_pbs(tmp_path):
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("".join(f"{node}\n" * 4 for node in ("gpunode1", "gpunode2")))  # PBS lists a node per rank
    return {"PBS_NODEFILE": str(nodefile), "PBS_JOBID": "123.fake"}


def fake_slurm(tmp_path):
    return {"SLURM_NODELIST": "gpunode[1-2]", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOBID": "456"}


@pytest.mark.parametrize("allocation", [fake_pbs, fake_slurm], ids=["PBS", "SLURM"])
def test_every_training_sees_its_allotted_gpus_and_threads(write_spec, tmp_path, allocation):
    """2 nodes x 2 GPUs x 2 trainings per GPU = 8 workers, 16 cores per node -> 4 threads each."""
    probes = tmp_path / "probes"
    probes.mkdir()
    spec_path = write_spec(
        space={"choices": {"architecture": ["rnn"], "dataset": ["probe_environment"], "hidden_dim": [4, 8]},
               "replicates": 4},
        simulator={"isolation": "inline", "gpus_per_sim": 1, "sims_per_gpu": 2, "threads": None},
        resources={"gpus_per_node": 2, "cores_per_node": 16},
    )
    result = run_command(
        ["python", "run_ensemble.py", "--spec", str(spec_path), "--nworkers", "8", "--out", str(tmp_path / "run")],
        env={"TASKGEN_PLUGINS": "tests.helpers.probe_tasks", "TASKGEN_PROBE_DIR": str(probes), **allocation(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    H = np.load(tmp_path / "run" / "history.npy")
    assert len(H) == 8 and (H["error"] == "RuntimeError: probe recorded its environment").all()

    placements = [json.loads((tmp_path / "run" / d / "placement.json").read_text()) for d in H["sim_dir"]]
    assert {p["node"] for p in placements} == {"gpunode1", "gpunode2"}
    assert all(p["threads"] == 4 and len(p["gpus"]) == 1 for p in placements)
    per_gpu = Counter((p["node"], p["gpus"][0]) for p in placements)
    assert max(per_gpu.values()) <= 2

    seen = [json.loads(f.read_text()) for f in probes.iterdir()]
    assert len(seen) == 8
    assert sorted((s["CUDA_VISIBLE_DEVICES"], s["OMP_NUM_THREADS"]) for s in seen) == sorted(
        (str(p["gpus"][0]), "4") for p in placements
    )
    assert {s["XLA_PYTHON_CLIENT_MEM_FRACTION"] for s in seen} == {"0.45"}  # 90% of a GPU, 2 trainings on each
