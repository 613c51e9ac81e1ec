"""A multi-node rehearsal on one machine: an MPI ensemble whose libEnsemble resources see two
node names (a PBS node file) that both resolve to this machine. mpich's Hydra starts processes on
host aliases of the local machine itself (no ssh), so the launches are real, not a dry run: each
worker's trainer is started through the MPIExecutor (``mpirun -hosts NODE``) onto the node of
the worker's resource set, and every sim's placement.json names that node."""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections import defaultdict

import numpy as np
import pytest

from simulators.run_dir import RunDir, SimDir
from tests.helpers.runs import run_command

LAUNCH = re.compile(  # libEnsemble's MPIExecutor logs every launch line
    r"Launching task libe_task_trainer_worker(\d+)_\d+: (\S+) -hosts (\S+) .*simulators/trainer_server\.py ")


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs mpich's mpirun (pip install mpich mpi4py)")
def test_two_node_mpi_ensemble_launches_each_trainer_on_its_workers_node(write_spec, tmp_path):
    nodes = ["localhost", socket.gethostname()]
    assert len(set(nodes)) == 2, "this machine's host name is localhost: no second name for the rehearsal"
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("".join(f"{node}\n" for node in nodes))  # one slot each: PBS lists a node per slot
    spec_path = write_spec(simulator={"isolation": "process"})
    run_dir = RunDir(tmp_path / "run")
    result = run_command(["mpirun", "-np", "3", "python", "run_ensemble.py", "--spec", str(spec_path),
                          "--out", str(run_dir.path)], env={"PBS_NODEFILE": str(nodefile)}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 workers, comms mpi" in result.stdout
    H = np.load(run_dir.history)
    assert len(H) == 4 and (H["status"] == "ok").all()

    launched = defaultdict(set)  # worker -> nodes its trainers were launched onto
    for worker, runner, node in LAUNCH.findall(run_dir.log.read_text()):
        assert runner in ("mpirun", "mpiexec")  # the MPIExecutor's launch, not a local subprocess
        launched[int(worker)].add(node)
    assert sorted(launched) == [1, 2] and all(len(nodes_of) == 1 for nodes_of in launched.values())
    assert {node for nodes_of in launched.values() for node in nodes_of} == set(nodes)  # one worker per node
    for row in H:
        placement = json.loads(SimDir(run_dir.path / row["sim_dir"]).placement.read_text())
        assert {placement["node"]} == launched[int(row["sim_worker"])]
