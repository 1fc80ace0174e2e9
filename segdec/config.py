"""One typed run configuration shared by the CLI, the notebooks and the papermill batches.

Defaults follow Table 4 of the paper for Severstal (docs/paper.md); every run saves the resolved
configuration as ``config.yaml`` in its run directory, so a run can be repeated from it alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from segdec.augment import FLIPS
from segdec.errors import ConfigError
from segdec.io import write_text
from segdec.model import ModelConfig, SegDecNet
from segdec.options import option
from segdec.paths import DATA_HOME, data_path
from segdec.recipes import RECIPE_FIELDS, beta_for_epochs, recipe
from segdec.timing import parse_duration

DATASETS = ("severstal", "ksdd", "dagm", "ksdd2", "folder")
BALANCES = ("decay", "linear", "constant")
TIE_BREAKS = ("first", "loss")
SEG_LOSSES = ("mse", "bce")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ATROUS_GRADIENTS = ("auto", "space_to_batch", "dilated")
RECIPES = ("published", "none")
SPLITS = ("own", "bozic")  # "none": Severstal's Table 4 values for every dataset
# Fields whose None means "derive": from the dataset's recipe, or from the architecture.
DERIVED_FIELDS = (*RECIPE_FIELDS, "seg_to_decision")
# Fields whose None means "take it from the data" (the image size, the bit depth): a saved run
# holds what its data gave, so a null here does not make it differ.
DATA_DERIVED_FIELDS = ("input_height", "input_width", "bit_depth")
# With a split file, null counts are read from the split (data/prepare.py) as well.
SPLIT_DERIVED_FIELDS = ("n_all", "n_seg")
# Settings that do not change what a run computes: a finished run does not differ by them.
UNCOMPARED_FIELDS = ("out_dir", "notes", "num_workers", "estimate", "splits_root")
# How a run is computed, not what it trains: a checkpoint moved to another device, precision or
# kernel path is still that run's network.
RUNTIME_FIELDS = ("device", "precision", "deterministic", "channels_last", "compile",
                  "atrous_gradient")
# Short spellings; "--data" would otherwise be an ambiguous prefix of --dataset and --data-root.
OPTION_ALIASES = {"data_root": ("--data",)}
OPTION_GROUPS = ("data", "model", "loss", "optimisation", "outputs")
# What a time budget chooses (segdec/budget.py): a budgeted run saves other values than asked for.
BUDGET_FIELDS = ("input_height", "input_width", "epochs", "beta")
_METAVARS = {int: "INT", float: "FLOAT", str: "TEXT", list[int]: "[INT, ...]",
             dict[str, Any]: "{KEY: VALUE}"}


# Numeric fields: the test a value must pass and the range as an error message names it.
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_all": (lambda v: v >= 1, "at least 1 (or null for all)"),
    "n_seg": (lambda v: v >= 0, ">= 0 (or null for all)"),
    "n_train_negatives": (lambda v: v >= 0, ">= 0 (or null)"),
    "n_val": (lambda v: v >= 0, ">= 0 (or null)"),
    "input_height": (lambda v: v > 0 and v % SegDecNet.output_stride == 0,
                     f"a positive multiple of {SegDecNet.output_stride}"),
    "input_width": (lambda v: v > 0 and v % SegDecNet.output_stride == 0,
                    f"a positive multiple of {SegDecNet.output_stride}"),
    "dilate_masks": (lambda v: v == 0 or (v > 0 and v % 2), "0 or an odd kernel size"),
    "bit_depth": (lambda v: 8 <= v <= 16, "8 to 16 (or null: the deepest of the training "
                  "images)"),
    "in_channels": (lambda v: v in (1, 3), "1 (grey) or 3 (colour)"),
    "se_reduction": (lambda v: v >= 1, "at least 1"),
    "beta": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "delta": (lambda v: v >= 0.0, ">= 0"),
    "dt_power": (lambda v: v >= 0.0, ">= 0"),
    "dt_max_weight": (lambda v: v > 0.0, "greater than 0"),
    "epochs": (lambda v: v >= 1, "at least 1"),
    "learning_rate": (lambda v: v > 0.0, "greater than 0"),
    "batch_size": (lambda v: v >= 1, "at least 1"),
    "momentum": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "seed": (lambda v: v >= 0, ">= 0"),
    "split_seed": (lambda v: v >= 0, ">= 0 (or null: the run's seed)"),
    "num_workers": (lambda v: v >= 0, ">= 0 (0: load in the training process)"),
    "validate_every": (lambda v: v >= 1, "at least 1"),
    "patience": (lambda v: v >= 1, "at least 1 (or null: off)"),
    "time_budget": (lambda v: v > 0, "greater than 0 seconds (or null: no budget)"),
    "n_saved_maps": (lambda v: v >= 0, ">= 0"),
}


def supervision_mode(n_all: int | None, n_seg: int | None) -> str:
    """WS (no pixel-labelled positives), FS (all of them; None means all) or MS (some)."""
    if n_seg == 0:
        return "WS"
    if n_seg is None or (n_all is not None and n_seg >= n_all):
        return "FS"
    return "MS"


@dataclass
class RunConfig(ModelConfig):
    """Every parameter of one training run. ``None`` means "derive from the data" or, for the
    optimisation and loss fields, "take the dataset's published recipe" (segdec/recipes.py)."""

    # data
    dataset: str = option("severstal", "data", "dataset format", DATASETS)
    recipe: str = option("published", "data", "fill unset optimisation and loss fields from the "
                         "dataset's published recipe (segdec/recipes.py)", RECIPES)
    data_root: str = option(f"{DATA_HOME}/severstal", "data", "folder of the dataset "
                            f"({DATA_HOME}: $SEGDEC_DATA, else data)")
    split_csv: str | None = option(None, "data", "reuse this split (a run's split.csv)")
    splits: str = option("own", "data", "which images train, validate and test: own (this "
                         "project's seeded split; KolektorSDD: sorted items dealt in turn) or "
                         "bozic (Božič et al.'s published KolektorSDD folds and Severstal "
                         "splits, read from splits_root; n_seg then counts his items or images)",
                         SPLITS)
    splits_root: str = option(f"{DATA_HOME}/bozic_splits", "data", "folder of Božič's published "
                              "splits as CSV (ksdd_folds.csv, severstal_splits.csv.gz), for "
                              "splits: bozic")
    n_all: int | None = option(300, "data", "training positives (null: all there are)")
    n_seg: int | None = option(None, "data", "training positives with pixel labels (0: WS; "
                               "null: all, FS)")
    n_train_negatives: int | None = option(None, "data", "training negatives (null: Božič's "
                                           "Severstal 4143, scaled to smaller data)")
    n_test: int | None = option(None, "data", "test images (null: 2400 scaled, or the fixed "
                                "test set)")
    n_val: int | None = option(None, "data", "validation images (0: validate on the test set, "
                               "Božič's KSDD/DAGM protocol)")
    classes: list[int] | None = option(None, "data", "Severstal ClassIds counted as defects "
                                       "(null: all)")
    dataset_class: int = option(1, "data", "DAGM class")
    fold: int = option(0, "data", "KolektorSDD test fold (0-2)")
    input_height: int | None = option(None, "data", "input height, a multiple of 8 (null: the "
                                      "dataset's usual size)")
    input_width: int | None = option(None, "data", "input width, a multiple of 8")
    dilate_masks: int | None = option(None, "data", "odd kernel to dilate masks with (0: off)")
    bit_depth: int | None = option(None, "data", "bits of the grey images' pixel values (null: "
                                   "the deepest found among the training images; 8 for 8-bit "
                                   "data)")
    # loss
    seg_loss: str = option("bce", "loss", "segmentation loss (the paper: mse; README)",
                           SEG_LOSSES)
    distance_transform: bool = option(True, "loss", "weight positive pixels by distance to "
                                      "the defect border")
    dt_power: float | None = option(None, "loss", "distance-transform power p")
    dt_max_weight: float | None = option(None, "loss", "distance-transform maximum weight")
    balance: str = option("decay", "loss", "segmentation/decision balance schedule", BALANCES)
    beta: float | None = option(None, "loss", "decay rate of the balance: theta_n = "
                                "(1 - beta)^n")
    delta: float | None = option(None, "loss", "weight of the decision loss")
    # optimisation
    epochs: int | None = option(None, "optimisation", "training epochs")
    learning_rate: float | None = option(None, "optimisation", "SGD learning rate (losses "
                                         "summed over the batch)")
    batch_size: int | None = option(None, "optimisation", "images per SGD step")
    momentum: float = option(0.0, "optimisation", "SGD momentum")
    flips: str = option("none", "optimisation", "random flips of the training images and their "
                        "masks, drawn anew each epoch: none (Božič's), horizontal, or both "
                        "(horizontal and vertical)", FLIPS)
    seed: int = option(0, "optimisation", "seed of the initialisation and sampling order (and "
                       "of the split, unless split_seed is set)")
    split_seed: int | None = option(None, "data", "seed of the split: which images are tested, "
                                    "validated and pixel-labelled (null: the run's seed); fix it "
                                    "to vary only the training over seeds")
    device: str = option("auto", "optimisation", "auto, cpu, cuda or cuda:N")
    precision: str = option("auto", "optimisation", "autocast precision (auto: fp32, with TF32 "
                            "on GPUs of compute capability 8.0+)", PRECISIONS)
    deterministic: bool = option(False, "optimisation", "repeatable GPU kernels: cuDNN "
                                 "deterministic and not autotuned, deterministic algorithms, a "
                                 "fixed cuBLAS workspace (slower)")
    channels_last: bool = option(False, "optimisation", "channels_last memory format")
    atrous_gradient: str = option("auto", "optimisation", "weight gradient of the dilation-2 "
                                  "convolutions on a CPU: space_to_batch (faster with AVX2), "
                                  "dilated (oneDNN's own, faster with AVX-512); auto: by the CPU",
                                  ATROUS_GRADIENTS)
    compile: bool = option(False, "optimisation", "torch.compile the network")
    num_workers: int | None = option(None, "optimisation", "data-loading processes (null: up to "
                                     "4 on a GPU, 0 on a CPU)")
    validate_every: int = option(5, "optimisation", "epochs between validations")
    patience: int | None = option(None, "optimisation", "end the run early when the validation "
                                  "AP has not improved for this many validations in the second "
                                  "half of the epochs (null: off)")
    estimate: bool = option(True, "optimisation", "time a few steps first and print the run's "
                            "expected duration (they do not change its result)")
    time_budget: float | None = option(None, "optimisation", "fit the run into this time on "
                                       "this machine with a smaller input and fewer epochs: 90s, "
                                       "20m, 1.5h or seconds (null: no budget)",
                                       parse=parse_duration)
    tie_break: str | None = option(None, "optimisation", "which of several validations with the "
                                   "best AP is kept: first, or loss (the lowest validation log "
                                   "loss); null: the recipe's", TIE_BREAKS)
    # outputs
    out_dir: str = option("runs/run", "outputs", "run directory")
    n_saved_maps: int = option(8, "outputs", "test segmentation maps kept for Figure 9")
    notes: dict[str, Any] = field(default_factory=dict,
                                  metadata={"group": "outputs", "help": "free-form tags"})

    def __post_init__(self) -> None:
        self.check_types()
        self.data_root, self.splits_root = data_path(self.data_root), data_path(self.splits_root)
        unset = [name for name in DERIVED_FIELDS if getattr(self, name) is None]
        if any(name in RECIPE_FIELDS for name in unset):
            published = self.recipe == "published"
            values = recipe(self.dataset if published else "severstal", self.supervision,
                            self.n_all)
            for name in unset:
                if name in RECIPE_FIELDS:
                    setattr(self, name, values[name])
            if "beta" in unset and "epochs" not in unset and isinstance(self.epochs, int):
                # Given epochs: the balance still ends where the recipe's schedule ends.
                self.beta = beta_for_epochs(self.epochs, values["epochs"], values["beta"])
        super().__post_init__()  # the architecture's own defaults, after the recipe's
        # Which fields were derived, so that a changed dataset, mode or architecture derives
        # them afresh (replace, from_args) instead of keeping values meant for the old settings.
        self._derived = frozenset(unset)
        self.validate()

    # ---- derived values -------------------------------------------------------------------
    @property
    def supervision(self) -> str:
        """WS, MS or FS, from how many positives carry pixel labels."""
        return supervision_mode(self.n_all, self.n_seg)

    @property
    def effective_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    def check_types(self) -> None:
        """Every field holds its annotated type (an int where a float is asked for becomes one);
        a wrong type names the field instead of failing later in the loader or the loop."""
        for name, annotation in self.field_types().items():
            value = getattr(self, name)
            if value is None and _allows_none(annotation):
                continue
            base = _strip_optional(annotation)
            if base is float and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, float(value))
            elif not _has_type(value, base):
                raise ConfigError(f"{name}={value!r} must be {_type_name(annotation)}")

    def validate_choices(self) -> None:
        for f in fields(self):
            allowed, value = f.metadata.get("choices"), getattr(self, f.name)
            unset_recipe_field = value is None and f.name in RECIPE_FIELDS
            if allowed and value not in allowed and not unset_recipe_field:
                raise ConfigError(f"{f.name}={value!r} is not one of {', '.join(allowed)}")

    def validate(self) -> None:
        """Every value in its range, so a bad one is refused before a run writes anything
        (a negative learning rate trains, a NaN one fails only after an epoch)."""
        self.validate_choices()
        for name, base in self.field_types().items():
            value = getattr(self, name)
            if _strip_optional(base) is float and value is not None and not math.isfinite(value):
                raise ConfigError(f"{name}={value} must be a finite number")
        for name, (within, allowed) in _RANGES.items():
            value = getattr(self, name)
            if value is not None and not within(value):
                raise ConfigError(f"{name}={value} must be {allowed}")
        if self.n_seg is not None and self.n_all is not None and self.n_seg > self.n_all:
            raise ConfigError(f"n_seg={self.n_seg} cannot exceed n_all={self.n_all}")
        if self.splits == "bozic" and self.split_csv:
            raise ConfigError(f"split_csv={self.split_csv} and splits=bozic both choose the "
                              "split; drop one of them")

    # ---- (de)serialisation ------------------------------------------------------------------
    def model_config(self) -> ModelConfig:
        """The run's architecture switches alone (a run holds them flat, under the same names),
        which build its network and which its checkpoint keeps."""
        return ModelConfig(**{f.name: getattr(self, f.name) for f in fields(ModelConfig)})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown run-configuration keys: {', '.join(unknown)}")
        types = cls.field_types()
        parsers = {f.name: f.metadata.get("parse") for f in fields(cls)}
        coerced = {}
        for name, value in values.items():
            try:
                coerced[name] = _coerce(types[name], value)
            except ValueError:
                if not (parsers[name] and isinstance(value, str)):
                    raise ConfigError(
                        f"{name}={value!r} must be {_type_name(types[name])}") from None
                try:
                    coerced[name] = parsers[name](value)
                except ConfigError as err:
                    raise ConfigError(f"{name}: {err}") from None
        return cls(**coerced)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> RunConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"run configuration {path} does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must hold a mapping of run-configuration keys")
        values.update(overrides)
        try:
            return cls.from_dict(values)
        except ValueError as err:
            raise ConfigError(f"{path}: {err}") from None

    def unresolved(self) -> dict[str, Any]:
        """The fields as given: those the recipe or the architecture filled in are None again."""
        values = self.to_dict()
        values.update(dict.fromkeys(self._derived))
        return values

    def differences(self, saved: dict[str, Any], ignore: tuple[str, ...] = UNCOMPARED_FIELDS
                    ) -> dict[str, tuple[Any, Any]]:
        """Where a saved run's configuration differs from this one: field -> (saved, here).
        Fields the saved one lacks (added to segdec later), fields this one leaves to derive
        from the data (None; the saved run holds what it derived) and, with a time budget, the
        fields it chooses are not compared; any other None is a setting (n_seg None: every
        mask) and is."""
        if self.time_budget is not None:
            ignore = (*ignore, *BUDGET_FIELDS)
        from_data = DATA_DERIVED_FIELDS + (SPLIT_DERIVED_FIELDS if self.split_csv else ())
        return {name: (saved[name], wanted) for name, wanted in self.to_dict().items()
                if name in saved and name not in ignore
                and not (wanted is None and name in from_data) and saved[name] != wanted}

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes``; fields the recipe filled are derived again from the result
        (``dataclasses.replace`` would keep, say, FS's learning rate for a WS copy)."""
        return type(self)(**{**self.unresolved(), **changes})

    def save(self, path: str | Path) -> Path:
        return write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    # ---- command line -------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser,
                      groups: tuple[str, ...] = OPTION_GROUPS) -> None:
        """One ``--field-name`` option per field of ``groups``, with its type, choices, default
        and help; booleans as ``--name/--no-name``; numbers and lists parsed as YAML."""
        defaults, types = cls(), cls.field_types()
        sections = {name: parser.add_argument_group(f"{name} (run configuration)")
                    for name in groups}
        for f in fields(cls):
            if f.metadata["group"] not in sections:
                continue
            base, default = _strip_optional(types[f.name]), getattr(defaults, f.name)
            shown = (f"the dataset's recipe (Severstal: {default})" if f.name in RECIPE_FIELDS
                     else "null" if default is None else str(default).lower()
                     if isinstance(default, bool) else default)
            options: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS,
                                       "help": f"{f.metadata['help']} (default: {shown})"}
            if base is bool:
                options["action"] = argparse.BooleanOptionalAction
            else:
                options["metavar"] = ("DURATION" if f.metadata.get("parse") is parse_duration
                                      else _METAVARS.get(base, "VALUE"))
                if f.metadata.get("choices"):
                    options["choices"] = f.metadata["choices"]
                    options["metavar"] = "{" + ",".join(f.metadata["choices"]) + "}"
            sections[f.metadata["group"]].add_argument(
                "--" + f.name.replace("_", "-"), *OPTION_ALIASES.get(f.name, ()), **options)

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
        """The options given on the command line over ``base`` (a saved run's configuration);
        without a base, unset recipe fields come from the dataset's recipe."""
        types = cls.field_types()
        # Text fields take the option as typed (--out-dir 2024 is a folder, not a number).
        overrides = {k: v if _strip_optional(types[k]) is str or not isinstance(v, str)
                     else yaml.safe_load(v) for k, v in vars(args).items() if k in types}
        values = base.unresolved() if base else {}
        values.update(overrides)
        return cls.from_dict(values)


def _coerce(annotation: Any, value: Any) -> Any:
    """Accept YAML/papermill scalars ("none", 3.0 for an int, a single int for a list)."""
    if isinstance(value, str) and value.lower() in ("none", "null", "~", "") and _allows_none(
        annotation
    ):
        return None
    if value is None:
        return None
    base = _strip_optional(annotation)
    if base is bool and isinstance(value, str):
        if value.lower() in ("true", "yes", "1", "on"):
            return True
        if value.lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(f"cannot read {value!r} as a boolean")
    if base is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if base is int and isinstance(value, str):
        return int(value)
    if base is float and isinstance(value, int | str) and not isinstance(value, bool):
        return float(value)
    if base is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # YAML reads out_dir: 2024 as a number
    if typing.get_origin(base) is list and not isinstance(value, list):
        return [value]
    return value


def _has_type(value: Any, base: Any) -> bool:
    if base is bool:
        return isinstance(value, bool)
    if base in (int, float):
        return isinstance(value, base) and not isinstance(value, bool)
    if typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        return isinstance(value, list) and all(_has_type(v, item) for v in value)
    if typing.get_origin(base) is dict:
        return isinstance(value, dict)
    return isinstance(value, base)


def _type_name(annotation: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text",
             list[int]: "a list of whole numbers", dict[str, Any]: "a mapping"}
    base = _strip_optional(annotation)
    name = names.get(base, str(base))
    return f"{name} or null" if _allows_none(annotation) else name


def _allows_none(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation
