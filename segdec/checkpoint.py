"""Checkpoints: what they hold, how they are written atomically and read safely
(``weights_only``), and the network they rebuild."""

from __future__ import annotations

import dataclasses
import errno
import math
import pickle
from pathlib import Path
from typing import Any

import torch

from segdec import __version__
from segdec.config import RUNTIME_FIELDS, UNCOMPARED_FIELDS, RunConfig
from segdec.data.dataset import PREPROCESSING
from segdec.errors import CheckpointError
from segdec.io import atomic_write
from segdec.model import ModelConfig, SegDecNet
from segdec.runtime import Runtime, resolve_device, scoring_precision

CHECKPOINT_FORMAT = 1
_MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}


def save_checkpoint(path: Path, model: SegDecNet, config: RunConfig, **extra) -> None:
    """Plain tensors and Python values only, so ``torch.load(weights_only=True)`` reads it."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "segdec_version": __version__,
        "model_config": model.config.to_dict(),
        "input_size": [config.input_height, config.input_width],
        "preprocessing": PREPROCESSING,
        "bit_depth": config.bit_depth,  # grey images deeper than 8 bits: value * 255 / (2**b - 1)
        "run_config": config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    try:
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    except RuntimeError as err:
        # torch's zip writer reports a failed write (a full disk, mostly) as "enforce fail at
        # inline_container.cc" rather than as the OSError it is; the earlier file is intact.
        if "inline_container" not in str(err) and "PytorchStreamWriter" not in str(err):
            raise
        raise OSError(errno.EIO, "torch could not finish writing this checkpoint",
                      str(path)) from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint; give a checkpoint file, "
                              "such as RUN/checkpoints/best.pt")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # "Unsupported operand": bytes that are no pickle at all (text, an image, an ONNX file).
        if "Weights only load failed" not in str(err) or "Unsupported operand" in str(err):
            raise _unreadable(path, err) from None
        # torch's own text suggests weights_only=False, which would run the file's code.
        raise CheckpointError(
            f"{path} was refused: it holds objects other than tensors and plain values, which a "
            "segdec checkpoint never does. Do not load it unless you trust where it came from"
        ) from None
    except Exception as err:  # noqa: BLE001  (parsing any file: a KeyError is as likely as EOF)
        raise _unreadable(path, err) from None
    version = state.get("format") if isinstance(state, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path} is not a segdec checkpoint; give a run's "
                              "checkpoints/best.pt or last.pt")
    missing = [key for key in ("model", "model_config", "input_size") if key not in state]
    if missing:
        raise CheckpointError(f"{path} is a segdec checkpoint without {', '.join(missing)}; it "
                              "cannot rebuild the network. Use the run's best.pt or last.pt")
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, newer than this segdec reads "
            f"({CHECKPOINT_FORMAT}); upgrade segdec"
        )
    # Checkpoints written before seg_to_decision existed fed the decision subnetwork logits.
    for config in (state["model_config"], state.get("run_config")):
        if isinstance(config, dict):
            config.setdefault("seg_to_decision", "logit")
    # Checkpoints written before bit_depth existed read each image at the depth its own largest
    # value implies: bit depth 8 for the 8-bit data they were trained on, so those runs resume;
    # a deeper run's scaling cannot be continued, and resuming it is refused as a changed one.
    # Their state keeps no bit_depth, so predict reads images as they were trained on.
    if isinstance(state.get("run_config"), dict):
        state["run_config"].setdefault("bit_depth", 8)
    # Format-1 checkpoints written before this key existed used today's preprocessing.
    if state.get("preprocessing", PREPROCESSING) != PREPROCESSING:
        raise CheckpointError(
            f"{path} was trained on images prepared as {state['preprocessing']}, but this segdec "
            f"prepares them as {PREPROCESSING}; use the segdec version that trained it"
        )
    _check_values(path, state)
    _check_network(path, state)
    return state


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    return CheckpointError(
        f"{path} cannot be read as a checkpoint ({type(err).__name__}): it is truncated, empty or "
        "not a segdec checkpoint. Use another copy, or last.pt/best.pt of the run")


def checkpoint_precision(state: dict) -> str:
    """The resolved precision a checkpoint's network was trained and validated in ("fp32",
    "tf32", "bf16", "fp16"); checkpoints written before it was recorded count as fp32."""
    return state.get("precision", "fp32")


def scoring_runtime(state: dict, device: str | torch.device = "auto") -> Runtime:
    """The runtime a checkpoint's network is scored in on ``device``: its training precision
    where the device has it, else fp32, and never "auto" resolved afresh, which could differ
    between the training device and this one; deterministic as its run was."""
    device = resolve_device(device) if isinstance(device, str) else device
    run = state.get("run_config") or {}
    return Runtime(device, scoring_precision(checkpoint_precision(state), device),
                   bool(run.get("deterministic", False)))


def check_belongs_to_run(state: dict, config: RunConfig, path: Path) -> None:
    """A checkpoint evaluated for a run must hold that run's network at its input size; another
    run's best.pt would score well enough to pass unnoticed into its metrics.json."""
    trained = {**state["model_config"], "input_size": list(state["input_size"])}
    run = {**config.model_config().to_dict(),
           "input_size": [config.input_height, config.input_width]}
    if state.get("bit_depth") is not None:  # older checkpoints say nothing of it
        trained["bit_depth"], run["bit_depth"] = state["bit_depth"], config.bit_depth
    # A field the configuration left to derive says nothing of what was trained: a config.yaml
    # older than seg_to_decision derives today's default, its checkpoint reads as "logit".
    differing = {name: (trained.get(name), run[name]) for name in run
                 if name not in config._derived and trained.get(name) != run[name]}
    # The same network trained with other data, seed or recipe is another run's model too.
    if not differing and isinstance(state.get("run_config"), dict):
        differing = config.differences(state["run_config"],
                                       ignore=UNCOMPARED_FIELDS + RUNTIME_FIELDS)
    if differing:
        details = ", ".join(f"{name} {theirs!r} (the run: {ours!r})"
                            for name, (theirs, ours) in differing.items())
        raise CheckpointError(f"{path} is not this run's network: it has {details}; evaluate "
                              "it in the run directory that trained it")


def check_trained_split(state: dict, digest: str, path: Path, split_path: Path) -> None:
    """A run is tested on the split it trained on: a split.csv replaced since (by ``segdec
    split``, by hand) could put training images in its test set. Checkpoints older than
    ``split_digest`` say nothing of their split."""
    trained = state.get("split_digest")
    if trained is not None and trained != digest:
        raise CheckpointError(
            f"{split_path} is not the split that {path} trained on (it was changed or replaced "
            "since): its test set could hold training images, so the run is not evaluated on "
            "it; restore the run's own split.csv")


def last_checkpoint(run_dir: str | Path) -> Path:
    """``last.pt`` of a run: the state a resumption continues from."""
    return Path(run_dir) / "checkpoints" / "last.pt"


def best_checkpoint(run_dir: str | Path) -> Path:
    """``best.pt`` of a run, or ``last.pt`` when no validation has happened yet."""
    best = Path(run_dir) / "checkpoints" / "best.pt"
    return best if best.exists() else last_checkpoint(run_dir)


def model_from_checkpoint(state: dict, device: torch.device | str = "cpu") -> SegDecNet:
    model = SegDecNet(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def _check_values(path: Path, state: dict) -> None:
    """The values predict and export use as they stand are ones a run writes: an edited or
    damaged size, bit depth or threshold would otherwise scale, resize or decide silently wrong
    (a threshold of nan calls every image clean)."""
    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
            value)

    size, depth, threshold = state["input_size"], state.get("bit_depth"), state.get("threshold")
    problems = []
    if not (isinstance(size, list | tuple) and len(size) == 2
            and all(isinstance(v, int) and v > 0 and v % 8 == 0 for v in size)):
        problems.append(f"input_size {size!r} (a run writes [height, width], multiples of 8)")
    if depth is not None and not (isinstance(depth, int) and 8 <= depth <= 16):
        problems.append(f"bit_depth {depth!r} (a run writes 8 to 16)")
    if threshold is not None and not (number(threshold) and 0 <= threshold <= 1):
        problems.append(f"threshold {threshold!r} (a run writes a probability, 0 to 1)")
    if problems:
        raise CheckpointError(f"{path} holds {'; '.join(problems)}: it is damaged or was edited. "
                              "Use the run's best.pt or last.pt")


def _check_network(path: Path, state: dict) -> None:
    """The network the checkpoint describes can be built and its weights fit it, so that a
    malformed file is named here and not by a TypeError or ``load_state_dict``'s RuntimeError."""
    described = state["model_config"]
    unknown = sorted(set(described) - _MODEL_FIELDS) if isinstance(described, dict) else []
    if not isinstance(described, dict) or unknown:
        what = ", ".join(unknown) or repr(described)
        raise CheckpointError(f"{path} describes its network with {what}, which this segdec "
                              "does not know; use the segdec version that wrote it")
    try:
        expected = SegDecNet(ModelConfig(**described)).state_dict()
    except (ValueError, TypeError) as err:  # TypeError: a value of the wrong type
        raise CheckpointError(f"{path} describes a network this segdec cannot build: "
                              f"{err}") from None
    weights = state["model"] if isinstance(state["model"], dict) else {}
    for problem, names in (
        ("lacks the weights", [k for k in expected if k not in weights]),
        ("holds unknown weights", [k for k in weights if k not in expected]),
        ("holds weights of the wrong shape", [k for k in expected if k in weights and getattr(
            weights[k], "shape", None) != expected[k].shape]),
    ):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            raise CheckpointError(f"{path} {problem} {', '.join(names[:3])}{more}; it is damaged "
                                  "or not from this network. Use the run's best.pt or last.pt")
