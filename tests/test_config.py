import argparse

import pytest

from segdec.config import RunConfig


def test_defaults_follow_table_4():
    config = RunConfig()
    assert (config.n_all, config.epochs, config.beta, config.delta) == (300, 90, 0.01, 0.1)
    assert (config.learning_rate, config.batch_size, config.momentum) == (0.1, 10, 0.0)
    assert config.supervision == "FS"
    assert RunConfig(n_seg=0).supervision == "WS"
    assert RunConfig(n_seg=50).supervision == "MS"


def test_yaml_round_trip_and_overrides(tmp_path):
    config = RunConfig(n_all=750, n_seg=150, classes=[1, 3], out_dir=str(tmp_path / "r"))
    path = config.save(tmp_path / "config.yaml")
    assert RunConfig.from_file(path) == config
    assert RunConfig.from_file(path, epochs=3).epochs == 3


def test_command_line_maps_onto_fields():
    parser = argparse.ArgumentParser()
    RunConfig.add_arguments(parser)
    args = parser.parse_args(["--n-all", "1500", "--n-seg", "none", "--atrous", "false",
                              "--learning-rate", "1e-2", "--classes", "[1, 2]"])
    config = RunConfig.from_args(args)
    assert (config.n_all, config.n_seg, config.atrous) == (1500, None, False)
    assert config.learning_rate == 0.01 and config.classes == [1, 2]


def test_papermill_style_values_are_coerced():
    config = RunConfig.from_dict({"epochs": 5.0, "n_seg": "None", "attention": "no",
                                  "classes": 3, "delta": 1})
    assert config.epochs == 5 and config.n_seg is None and config.attention is False
    assert config.classes == [3] and config.delta == 1.0 and isinstance(config.delta, float)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"balance": "cosine"}, "balance"),
        ({"n_all": 10, "n_seg": 20}, "cannot exceed"),
        ({"input_height": 100}, "multiple of 8"),
        ({"dilate_masks": 4}, "odd"),
        ({"typo_field": 1}, "unknown run-configuration keys: typo_field"),
    ],
)
def test_invalid_values_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(values)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RunConfig.from_file(tmp_path / "nope.yaml")
