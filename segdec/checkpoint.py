"""Checkpoints: what they hold, how they are written atomically and read safely
(``weights_only``), and the network they rebuild."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import torch

from segdec import __version__
from segdec.config import RunConfig
from segdec.data.dataset import PREPROCESSING
from segdec.io import atomic_write
from segdec.model import ModelConfig, SegDecNet
from segdec.runtime import scoring_precision, use_precision

CHECKPOINT_FORMAT = 1


def model_config(config: RunConfig) -> ModelConfig:
    """The architecture switches of a run (RunConfig holds them flat, under the same names)."""
    return ModelConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(ModelConfig)})


def save_checkpoint(path: Path, model: SegDecNet, config: RunConfig, **extra) -> None:
    """Plain tensors and Python values only, so ``torch.load(weights_only=True)`` reads it."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "segdec_version": __version__,
        "model_config": model.config.to_dict(),
        "input_size": [config.input_height, config.input_width],
        "preprocessing": PREPROCESSING,
        "run_config": config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own text suggests weights_only=False, which would run the file's code.
        raise ValueError(
            f"{path} was refused: it holds objects other than tensors and plain values, which a "
            "segdec checkpoint never does. Do not load it unless you trust where it came from"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(
            f"{path} cannot be read as a checkpoint ({type(err).__name__}): it is truncated, "
            "empty or not a segdec checkpoint. Use another copy, or last.pt/best.pt of the run"
        ) from None
    version = state.get("format") if isinstance(state, dict) else None
    if version is None:
        raise ValueError(f"{path} is not a segdec checkpoint")
    missing = sorted({"model", "model_config"} - set(state))
    if missing:
        raise ValueError(f"{path} is a segdec checkpoint without {', '.join(missing)}; it cannot "
                         "rebuild the network. Use the run's best.pt or last.pt")
    if version > CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} has checkpoint format {version}, newer than this segdec reads "
            f"({CHECKPOINT_FORMAT}); upgrade segdec"
        )
    # Checkpoints written before seg_to_decision existed fed the decision subnetwork logits.
    for config in (state["model_config"], state.get("run_config")):
        if isinstance(config, dict):
            config.setdefault("seg_to_decision", "logit")
    # Format-1 checkpoints written before this key existed used today's preprocessing.
    if state.get("preprocessing", PREPROCESSING) != PREPROCESSING:
        raise ValueError(
            f"{path} was trained on images prepared as {state['preprocessing']}, but this segdec "
            f"prepares them as {PREPROCESSING}; use the segdec version that trained it"
        )
    return state


def checkpoint_precision(state: dict) -> str:
    """The resolved precision a checkpoint's network was trained and validated in ("fp32",
    "tf32", "bf16", "fp16"); checkpoints written before it was recorded count as fp32."""
    return state.get("precision", "fp32")


def scoring_dtype(state: dict, device: torch.device) -> torch.dtype | None:
    """The autocast dtype a checkpoint's network is scored in on ``device`` (TF32 switched to
    match): its training precision where the device has it, else fp32, and never "auto"
    resolved afresh, which could differ between the training device and this one."""
    return use_precision(scoring_precision(checkpoint_precision(state), device), device)


def best_checkpoint(run_dir: str | Path) -> Path:
    """``best.pt`` of a run, or ``last.pt`` when no validation has happened yet."""
    checkpoints = Path(run_dir) / "checkpoints"
    best = checkpoints / "best.pt"
    return best if best.exists() else checkpoints / "last.pt"


def model_from_checkpoint(state: dict, device: torch.device | str = "cpu") -> SegDecNet:
    model = SegDecNet(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval()
