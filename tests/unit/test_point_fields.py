"""The point-field table is the one source of the history dtype, the defaults, space validation,
the trainer's command-line flags and analysis' column types: checked against each, and a row
added after the published study (corruption, a text field with its own check) shown to reach
all of them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from analysis.loading import _finish, column_kinds, history_frame
from ensembles.libe_inputs import libe_inputs
from ensembles.loading import load_spec
from generators.points import make_point, to_array
from hypers import fields
from hypers.space import SearchSpace
from simulators.inbox import TrainingRequest
from simulators.options import TrainingOptions
from simulators.records import RESULT_DTYPE
from simulators.run_dir import RunDir
from simulators.sim_function import prepare_sim_dir
from simulators.train import parser, point_from_flags


def test_the_history_dtype_is_the_table_and_the_results(write_spec, tmp_path):
    table = [(row.name, row.dtype) for row in fields.FIELDS]
    inputs = libe_inputs(load_spec(write_spec()), RunDir(tmp_path), sim_workers=2)
    assert inputs["sim_specs"].inputs == [name for name, _ in table]  # what the sim function gets of each row
    assert inputs["sim_specs"].outputs == RESULT_DTYPE
    assert inputs["gen_specs"].outputs[: len(table)] == table  # what the generator hands out
    assert set(dict(table)) <= set(inputs["H0"].dtype.names)
    chosen_by_default = {row.name: row.default for row in fields.FIELDS if row.choosable and row.default is not None}
    assert fields.defaults() == chosen_by_default


def test_the_trainer_flags_are_the_table_rows_marked_as_flags():
    flags = {action.dest for action in parser()._actions if action.option_strings} - {"help", "out", "point", "options",
                                                                                       "group"}
    assert flags == {row.name for row in fields.FIELDS if row.flag}
    args = parser().parse_args(["--architecture", "gru", "--dataset", "digits", "--epochs", "6", "--hidden-dim", "32",
                                "--learning-rate", "1e-2", "--seed", "3", "--permute", "true"])
    point = point_from_flags(args)
    assert (point["epochs"], point["hidden_dim"], point["learning_rate"], point["seed"], point["permute"]) == (
        6, 32, 0.01, 3, True)
    assert point["pad"] == 0 and point["orientation"] == "none"  # the table's defaults
    with pytest.raises(SystemExit, match="--hidden-dim: 'hidden_dim' takes whole numbers, got 'wide'"):
        point_from_flags(parser().parse_args(["--architecture", "gru", "--dataset", "digits", "--hidden-dim", "wide"]))


def test_analysis_columns_take_the_table_types():
    kinds = column_kinds()
    for row in fields.FIELDS:
        assert kinds[row.name] == np.dtype(row.dtype).kind
    csv = pd.DataFrame({"architecture": ["rnn"], "dataset": ["digits"], "hidden_dim": ["32"], "permute": ["true"],
                        "learning_rate": ["0.01"], "val_accuracy": ["0.5"]})
    frame = _finish(csv, ".", "t.csv")
    assert frame["hidden_dim"].dtype == np.int64 and frame["permute"].dtype == bool
    assert frame["learning_rate"].dtype == float and frame["status"].tolist() == ["ok"]


def test_a_later_row_reaches_the_space_the_history_the_trainer_and_the_analysis(tmp_path):
    space = SearchSpace.model_validate({"choices": {"architecture": ["rnn"], "dataset": ["digits"],
                                                    "corruption": ["none", "blur"]}})
    with pytest.raises(ValidationError, match="'corruption': 'fog' is not a corruption: 'fog' is not one of rotate"):
        SearchSpace.model_validate({"choices": {"architecture": ["rnn"], "dataset": ["digits"], "corruption": ["fog"]}})
    points = [make_point(c, 0, 0) for c in space.configurations()]
    assert len({p["identifier"] for p in points}) == 2  # the new field tells configurations apart
    H = to_array(points, fields.point_dtype())  # the generator's rows of the history
    assert H.dtype["corruption"] == np.dtype("U64") and list(H["corruption"]) == ["none", "blur"]

    sim_dir = prepare_sim_dir(H[1], RunDir(tmp_path), None)  # what the worker writes for the trainer
    request = TrainingRequest.model_validate_json(
        TrainingRequest(sim_dirs=[sim_dir.path], options=TrainingOptions()).model_dump_json())
    assert json.loads(request.units[0].point.read_text())["corruption"] == "blur"

    args = parser().parse_args(["--architecture", "rnn", "--dataset", "digits", "--corruption", "noise"])
    assert point_from_flags(args)["corruption"] == point_from_flags(args)["val_corruption"] == "noise"  # seen
    args = parser().parse_args(["--architecture", "rnn", "--dataset", "digits", "--corruption", "noise",
                                "--val-corruption", "noise+blur"])
    assert point_from_flags(args)["val_corruption"] == "noise+blur"  # held out

    result = np.zeros(2, dtype=fields.point_dtype() + RESULT_DTYPE + [("sim_ended", bool)])
    for name in H.dtype.names:
        result[name] = H[name]
    frame = _finish(history_frame(result), tmp_path, "run")
    assert column_kinds()["corruption"] == "U" and frame["corruption"].tolist() == ["none", "blur"]
