"""The worker -> trainer path without a trainer process: a request and its reply round-trip as
JSON, the trainer answers it in this process (no argparse), and the trainer's environment."""

from __future__ import annotations

import json

from hypers.fields import defaults
from simulators.inbox import TrainingReply, TrainingRequest
from simulators.options import TrainingOptions
from simulators.trainer_client import trainer_environment
from simulators.trainer_server import answer
from tests.helpers.training import record_points


def test_a_trainers_environment_is_the_same_from_sim_to_sim(monkeypatch):
    """The environment is the same on every call, so the worker's trainer is not restarted for nothing."""
    first = trainer_environment(threads=2, engine="auto")
    for name, value in first.items():
        monkeypatch.setenv(name, value)
    assert trainer_environment(threads=2, engine="auto") == first


def test_a_request_and_its_reply_round_trip_without_argparse(tmp_path, capsys):
    """The worker's request as JSON, answered in this process as the trainer answers it, the reply
    as JSON: its result is the one recorded. The point cannot train (pad without an orientation),
    so the task fails before any backend is imported."""
    point = {**defaults(), "architecture": "rnn", "dataset": "digits", "pad": 5, "seed": 1, "replicate": 0,
             "identifier": "round-trip", "resume_from": ""}
    [sim_dir] = record_points([point], [tmp_path / "sim"])
    sent = TrainingRequest(sim_dirs=[sim_dir.path], options=TrainingOptions(threads=1), stdout=sim_dir.stdout,
                           stderr=sim_dir.stderr)
    received = TrainingRequest.model_validate_json(sent.model_dump_json())
    assert received == sent and received.units == [sim_dir]

    with capsys.disabled():  # the trainer sends its output to the request's files, as a process does
        reply = TrainingReply.model_validate_json(answer(received).model_dump_json())
    assert reply.code == 1 and len(reply.results) == 1
    result = reply.results[0]
    assert result["status"] == "failed" and "pad must be 0 exactly when orientation is none" in result["error"]
    assert json.dumps(result, sort_keys=True) == json.dumps(json.loads(sim_dir.result.read_text()), sort_keys=True)
    assert sim_dir.error.exists()
    assert sim_dir.stdout.read_text().startswith("failed: ")  # the training's output went to its own file
    assert json.loads(sim_dir.point.read_text()) == point  # written once, by the worker: the trainer only reads it


def test_a_request_the_trainer_cannot_read_is_refused_with_code_1(capsys):
    from simulators.trainer_server import _reply_to

    reply = _reply_to({"argv": ["--architecture", "rnn"]})  # an older worker's message
    assert reply.code == 1 and reply.results == [] and "cannot read the request" in capsys.readouterr().err
