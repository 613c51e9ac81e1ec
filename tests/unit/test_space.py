"""Search spaces: expansion, the exclusion rule, replicates and value checks."""

import pytest
from pydantic import ValidationError

from hypers.space import SearchSpace


def study_like_space(**extra):
    return SearchSpace.model_validate(
        {
            "choices": {
                "architecture": ["rnn", "lstm"],
                "dataset": ["digits"],
                "pad": [0, 1000],
                "orientation": ["none", "post", "uniform"],
            },
            "exclude": [{"pad": 0, "orientation": ["post", "uniform"]}, {"pad": 1000, "orientation": "none"}],
            **extra,
        }
    )


def test_exclusion_rule_keeps_pad_zero_exactly_with_orientation_none():
    configurations = list(study_like_space().configurations())
    assert len(configurations) == 2 * 3
    assert all((c["pad"] == 0) == (c["orientation"] == "none") for c in configurations)
    assert study_like_space().count_configurations() == 6


def test_replicates_multiply_points_and_defaults_fill_unchosen_fields():
    space = study_like_space(replicates=3)
    assert space.count_points() == 18
    first = next(space.configurations({"epochs": 4}))
    assert first["epochs"] == 4 and first["permute"] is False and first["hidden_dim"] == 64


def test_learning_rate_written_without_a_dot_is_read_as_a_number():
    space = SearchSpace.model_validate(
        {"choices": {"architecture": ["rnn"], "dataset": ["digits"], "learning_rate": ["1e-3", 0.01]}}
    )
    assert space.choices["learning_rate"] == [0.001, 0.01]


@pytest.mark.parametrize(
    "choices, message",
    [
        ({"architecture": ["transformer"], "dataset": ["digits"]}, "architecture"),
        ({"architecture": ["rnn"], "dataset": ["imagenet"]}, "dataset"),
        ({"architecture": ["rnn"], "dataset": ["digits"], "learning_rate": [-0.1]}, "learning_rate"),
        ({"architecture": ["rnn"], "dataset": ["digits"], "hidden_dim": [True]}, "hidden_dim"),
        ({"architecture": ["rnn"], "dataset": ["digits"], "colour": ["red"]}, "colour"),
        ({"architecture": ["rnn"]}, "dataset"),
    ],
)
def test_bad_choices_name_the_field(choices, message):
    with pytest.raises(ValidationError, match=message):
        SearchSpace.model_validate({"choices": choices})


def test_exclusion_naming_an_unchosen_value_is_an_error():
    with pytest.raises(ValidationError, match="exclude.*orientation"):
        SearchSpace.model_validate(
            {"choices": {"architecture": ["rnn"], "dataset": ["digits"]}, "exclude": [{"orientation": "post"}]}
        )


def test_excluding_everything_is_an_error():
    with pytest.raises(ValidationError, match="every configuration"):
        SearchSpace.model_validate({"choices": {"architecture": ["rnn"], "dataset": ["digits"]},
                                    "exclude": [{"architecture": "rnn"}]})


def test_impossible_pad_and_orientation_combinations_are_dropped_and_counted():
    """pad is 0 exactly when orientation is none: the other half of pad x orientation never
    reaches a worker, and the space says how many it dropped and why."""
    space = SearchSpace.model_validate(
        {"choices": {"architecture": ["rnn"], "dataset": ["digits"], "pad": [0, 10], "orientation": ["none", "post"]}}
    )
    configurations = list(space.configurations())
    assert [(c["pad"], c["orientation"]) for c in configurations] == [(0, "none"), (10, "post")]
    assert space.count_configurations() == 2 and space.count_points(3) == 6
    assert space.dropped() == {"pad must be 0 exactly when orientation is none": 2}
    unpadded = SearchSpace.model_validate({"choices": {"architecture": ["rnn"], "dataset": ["digits"],
                                                       "orientation": ["none", "post"]}})
    assert [c["orientation"] for c in unpadded.configurations()] == ["none"]  # pad's default is 0


def test_a_space_of_only_impossible_combinations_is_an_error():
    with pytest.raises(ValidationError, match="drop every configuration.*pad must be 0"):
        SearchSpace.model_validate({"choices": {"architecture": ["rnn"], "dataset": ["digits"], "pad": [5]}})
