"""segdec.config: run settings from Python, YAML and the command line, their recipes and types."""

import argparse
import re

import pytest

from segdec.cli import main
from segdec.config import DATASETS, RunConfig
from segdec.model import ModelConfig


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
    args = parser.parse_args(["--n-all", "1500", "--n-seg", "none", "--no-atrous",
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
        ({"bit_depth": 7}, r"bit_depth=7 must be 8 to 16 \(or null"),
        ({"bit_depth": 17}, "bit_depth=17 must be 8 to 16"),
        ({"bit_depth": "deep"}, "bit_depth='deep' must be a whole number or null"),
        ({"typo_field": 1}, "unknown run-configuration keys: typo_field"),
    ],
)
def test_invalid_values_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(values)


def test_bit_depth_is_derived_unless_set():
    assert RunConfig().bit_depth is None
    assert RunConfig.from_dict({"bit_depth": "null"}).bit_depth is None
    assert RunConfig.from_dict({"bit_depth": 12}).bit_depth == 12
    assert RunConfig.from_dict({"bit_depth": 16.0}).bit_depth == 16


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RunConfig.from_file(tmp_path / "nope.yaml")


def test_each_dataset_gets_its_published_recipe():
    """docs/paper.md, Recipes per dataset: Božič's KSDD, DAGM and KSDD2 scripts; Severstal's
    Table 4 by N_all."""
    fs = RunConfig(dataset="ksdd", n_all=None)
    assert (fs.epochs, fs.batch_size, fs.learning_rate, fs.delta, fs.dilate_masks) == (
        50, 1, 1.0, 0.01, 7)
    assert (fs.dt_power, fs.dt_max_weight, fs.beta) == (2.0, 1.0, 0.0185)
    assert (1 - fs.beta) ** (fs.epochs - 1) == pytest.approx(0.4, abs=0.002)
    ws = RunConfig(dataset="ksdd", n_all=None, n_seg=0)
    assert (ws.learning_rate, ws.delta) == (0.01, 1.0)
    dagm = RunConfig(dataset="dagm", n_all=None, n_seg=0)
    assert (dagm.epochs, dagm.learning_rate, dagm.delta, dagm.dt_power, dagm.dt_max_weight) == (
        70, 0.05, 1.0, 1.0, 10.0)
    ksdd2 = RunConfig(dataset="ksdd2", n_all=None)
    assert (ksdd2.dilate_masks, ksdd2.learning_rate, ksdd2.dt_max_weight) == (15, 0.01, 3.0)
    assert [(RunConfig(n_all=n).epochs, RunConfig(n_all=n).beta) for n in (300, 750, 1500, 3000)
            ] == [(90, 0.01), (80, 0.01), (60, 0.015), (40, 0.02)]
    folder = RunConfig(dataset="folder", n_all=None)
    assert (folder.epochs, folder.learning_rate, folder.batch_size, folder.delta,
            folder.dilate_masks, folder.beta) == (25, 1.0, 1, 0.01, 0, 0.0375)
    assert (folder.tie_break, fs.tie_break, RunConfig().tie_break) == ("loss", "first", "first")
    with pytest.raises(ValueError, match="tie_break='last' is not one of first, loss"):
        RunConfig(tie_break="last")
    folder_ws = RunConfig(dataset="folder", n_all=None, n_seg=0)
    assert (folder_ws.learning_rate, folder_ws.delta) == (0.01, 1.0)
    # Gradient adjustment: Božič's (on) for the published datasets, off for one's own images.
    assert [RunConfig(dataset=d, n_all=None).gradient_adjustment for d in DATASETS] == [
        True, True, True, True, False]
    assert folder_ws.gradient_adjustment is False
    assert RunConfig(dataset="folder", gradient_adjustment=True).gradient_adjustment is True
    assert ModelConfig().gradient_adjustment is True  # a network built directly: as published


def test_explicit_values_win_over_the_recipe_everywhere():
    assert RunConfig(dataset="ksdd", n_all=None, learning_rate=0.5).learning_rate == 0.5
    assert RunConfig(dataset="ksdd", recipe="none").learning_rate == 0.1
    parser = argparse.ArgumentParser()
    RunConfig.add_arguments(parser)
    config = RunConfig.from_args(parser.parse_args(["--dataset", "ksdd", "--epochs", "3"]))
    assert (config.epochs, config.learning_rate, config.batch_size) == (3, 1.0, 1)
    assert RunConfig.from_dict({"dataset": "dagm", "n_seg": 0}).learning_rate == 0.05
    # A saved configuration holds resolved values: reading it back changes nothing.
    assert RunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="recipe"):
        RunConfig(recipe="bozic")


def test_a_run_saved_before_new_fields_existed_can_resume(tmp_path):
    from segdec.train import _check_resumable

    config = RunConfig(dataset="ksdd", n_all=None)
    saved = config.to_dict()
    del saved["recipe"], saved["architecture"]
    _check_resumable(saved, config, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="differs in epochs"):
        _check_resumable({**saved, "epochs": 7}, config, tmp_path / "last.pt")


def test_command_line_options_carry_type_choices_default_and_help(capsys):
    parser = argparse.ArgumentParser()
    RunConfig.add_arguments(parser)
    text = " ".join(parser.format_help().split())  # unwrapped
    assert "--attention, --no-attention" in text
    assert "--balance {decay,linear,constant}" in text and "--epochs INT" in text
    assert "weight of the decision loss (default: the dataset's recipe (Severstal: 0.1))" in text
    assert RunConfig.from_args(parser.parse_args(["--no-attention"])).attention is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--balance", "cosine"])
    assert "invalid choice: 'cosine'" in capsys.readouterr().err
    split = argparse.ArgumentParser()
    RunConfig.add_arguments(split, groups=("data",))
    assert "--n-seg" in split.format_help() and "--learning-rate" not in split.format_help()


def test_the_lock_file_pins_every_dependency():
    """requirements.lock (make locked) holds an exact version of everything pyproject asks for."""
    import re
    from pathlib import Path

    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
        if not r.startswith("segdec")]

    def name(requirement: str) -> str:
        return re.split(r"[<>=\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    pinned = {name(line): line.split("==")[1] for line in
              (root / "requirements.lock").read_text().splitlines()
              if line and not line.startswith("#")}
    assert {name(r) for r in wanted} <= set(pinned)
    assert pinned["torch"] == "2.13.0"


def _from_command_line(tmp_path, yaml_text: str, *options: str) -> RunConfig:
    from segdec.cli import _base_config

    (tmp_path / "run.yaml").write_text(yaml_text)
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--resume", action="store_true")
    RunConfig.add_arguments(parser)
    return _base_config(parser.parse_args(["--config", str(tmp_path / "run.yaml"), *options]))


def test_the_recipe_follows_the_final_settings_not_the_config_file(tmp_path):
    """Options over a --config file change the mode, N_all or dataset: the recipe fields the
    file left unset are derived from the result, as if everything had been given at once."""
    ksdd_ms = "dataset: ksdd\nn_all: null\nn_seg: 5\n"
    ws = _from_command_line(tmp_path, ksdd_ms, "--n-seg", "0")
    assert (ws.learning_rate, ws.delta) == (0.01, 1.0)
    ms = _from_command_line(tmp_path, ksdd_ms)
    assert (ms.learning_rate, ms.delta) == (1.0, 0.01)
    large = _from_command_line(tmp_path, "dataset: severstal\nn_all: 300\n", "--n-all", "3000")
    assert (large.epochs, large.beta) == (40, 0.02)
    folder = _from_command_line(tmp_path, "dataset: severstal\n", "--dataset", "folder")
    assert (folder.epochs, folder.gradient_adjustment, folder.tie_break) == (25, False, "loss")
    plain = _from_command_line(tmp_path, "dataset: ksdd\n", "--recipe", "none")
    assert (plain.epochs, plain.learning_rate, plain.gradient_adjustment) == (90, 0.1, True)
    # What the file sets explicitly stays, whatever the options change.
    kept = _from_command_line(tmp_path, "dataset: ksdd\nn_seg: 5\nlearning_rate: 0.3\n",
                              "--n-seg", "0")
    assert (kept.learning_rate, kept.delta) == (0.3, 1.0)


def test_replace_derives_the_recipe_and_architecture_fields_afresh():
    ms = RunConfig(dataset="ksdd", n_all=None, n_seg=5)
    assert (ms.replace(n_seg=0).learning_rate, ms.replace(n_seg=0).delta) == (0.01, 1.0)
    assert ms.replace(n_seg=0, learning_rate=0.5).learning_rate == 0.5
    assert ms.replace(architecture="released").seg_to_decision == "logit"
    assert ms.replace(dataset="dagm").epochs == 70
    explicit = RunConfig(dataset="ksdd", n_all=None, n_seg=5, delta=0.2)
    assert explicit.replace(n_seg=0).delta == 0.2
    assert ms.replace(out_dir="elsewhere").to_dict() == {**ms.to_dict(), "out_dir": "elsewhere"}


def test_split_seed_holds_the_split_while_the_seed_varies():
    assert RunConfig(seed=3).effective_split_seed == 3
    assert RunConfig(seed=3, split_seed=0).effective_split_seed == 0


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--n-saved-maps", "-1", "n_saved_maps=-1 must be >= 0"),
    ("--delta", "-1", r"delta=-1.0 must be >= 0"),
    ("--learning-rate", "-0.1", "learning_rate=-0.1 must be greater than 0"),
    ("--momentum", "-5", r"momentum=-5.0 must be in \[0, 1\)"),
    ("--num-workers", "-1", "num_workers=-1 must be >= 0"),
    ("--learning-rate", "nan", "learning_rate=nan must be a finite number"),
    ("--learning-rate", "inf", "learning_rate=inf must be a finite number"),
    ("--beta", "nan", "beta=nan must be a finite number"),
    ("--epochs", "0", "epochs=0 must be at least 1"),
    ("--batch-size", "0", "batch_size=0 must be at least 1"),
    ("--seed", "-1", "seed=-1 must be >= 0"),
    ("--bit-depth", "32", "bit_depth=32 must be 8 to 16"),
    # A negative maximum weight trained defect pixels towards background without a word.
    ("--dt-max-weight", "-5", r"dt_max_weight=-5.0 must be greater than 0"),
    ("--dt-power", "-1", r"dt_power=-1.0 must be >= 0"),
])
def test_out_of_range_values_are_refused_before_anything_is_written(tmp_path, capsys, option,
                                                                     value, message):
    from segdec.cli import main

    out = tmp_path / "run"
    assert main(["train", "--out-dir", str(out), option, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segdec train: error: ") and re.search(message, err)
    assert not out.exists()  # neither config.yaml nor split.csv


def test_every_range_names_a_field():
    from segdec.config import _RANGES

    assert set(_RANGES) <= set(RunConfig.field_types())


def test_a_null_setting_differs_from_a_saved_value_but_a_data_derived_null_does_not():
    """n_seg null (every mask) is a setting: an MS run with n_seg 5 is not it. A null input
    size or bit depth is what the data gives, which the saved run holds."""
    saved = RunConfig(n_seg=5, input_height=64, input_width=320, bit_depth=8).to_dict()
    assert RunConfig(n_seg=None).differences(saved) == {"n_seg": (5, None)}
    assert RunConfig(n_seg=5).differences(saved) == {}
    with_split = RunConfig(n_seg=None, split_csv="split.csv")
    assert with_split.differences({**saved, "split_csv": "split.csv"}) == {}


def test_given_epochs_keep_the_recipes_final_balance():
    """Fewer epochs with the recipe's beta would leave theta near 0.8 (Severstal, 20 epochs
    at 0.01): beta follows the epochs so that theta ends where Table 4's pair ends it."""
    assert RunConfig(n_all=300).beta == 0.01  # Table 4's pair as published
    short = RunConfig(n_all=300, epochs=20)
    assert short.beta == 0.046 and round((1 - short.beta) ** 19, 3) == 0.409
    assert round(0.99 ** 89, 3) == 0.409
    assert RunConfig(dataset="ksdd", epochs=25).beta == 0.0374
    assert RunConfig(n_all=300, epochs=20, beta=0.01).beta == 0.01  # given beta wins


@pytest.mark.parametrize(("values", "message"), [
    ({"epochs": "ten"}, "epochs='ten' must be a whole number"),
    ({"epochs": True}, "epochs=True must be a whole number"),
    ({"learning_rate": "fast"}, "learning_rate='fast' must be a number"),
    ({"batch_size": 4.5}, "batch_size=4.5 must be a whole number"),
    ({"input_height": [64]}, r"input_height=\[64\] must be a whole number"),
    ({"attention": "maybe"}, "attention='maybe' must be true or false"),
    ({"data_root": True}, "data_root=True must be text"),
])
def test_wrong_types_name_the_field(values, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(values)


def test_python_and_command_line_types():
    with pytest.raises(ValueError, match="attention='no' must be true or false"):
        RunConfig(attention="no")
    assert RunConfig.from_dict({"out_dir": 2024}).out_dir == "2024"
    assert main(["train", "--epochs", "ten", "--out-dir", "x"]) == 2
    parser = argparse.ArgumentParser()
    RunConfig.add_arguments(parser)
    args = parser.parse_args(["--out-dir", "2024", "--data-root", "on"])
    config = RunConfig.from_args(args)
    assert (config.out_dir, config.data_root) == ("2024", "on")


def test_yaml_mistakes_name_the_file(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("epochs: [3\n")
    listed = tmp_path / "listed.yaml"
    listed.write_text("input_height: [64]\n")
    with pytest.raises(ValueError, match=f"{broken} is not valid YAML"):
        RunConfig.from_file(broken)
    with pytest.raises(ValueError, match=f"{listed}: input_height"):
        RunConfig.from_file(listed)
    assert main(["train", "--config", str(broken)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
