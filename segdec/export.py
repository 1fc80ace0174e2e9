"""ONNX export of a checkpoint, for inference outside Python and PyTorch.

The ONNX model takes ``image``: float32 [batch, C, H, W], pixels / 255, each image stretched
(bilinear) to the checkpoint's input size H x W, C = 1 (grey) or 3 (RGB); the batch size is free.
Grey images deeper than 8 bits (16-bit PNG or TIFF) must first be brought to 0-255 by the run's
bit depth B (metadata ``bit_depth``), as segdec reads them: value * 255 / (2**B - 1), rounded,
every image by the same B (an image by its own maximum would come out brighter than it is).
It returns ``score`` [batch] (defect probability) and ``seg_map`` [batch, 1, H/8, W/8] (defect
probability per cell). The metadata (``onnx.load(path).metadata_props``) records the input size
(``input_size``, W x H as everywhere in segdec), channels, preprocessing, bit depth (and
``bit_depth_scaling``, the formula), validation threshold and segdec version.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from segdec.checkpoint import load_checkpoint, model_from_checkpoint
from segdec.data.images import HIGH_DEPTH_RULE
from segdec.errors import ConfigError, MissingExtraError
from segdec.io import atomic_path
from segdec.outputs import writable_folder
from segdec.predict import Scorer


def onnx_metadata(state: dict) -> dict[str, str]:
    height, width = state["input_size"]
    depth = state.get("bit_depth")  # None: older than bit_depth, each image by its own depth
    return {
        "segdec_version": str(state.get("segdec_version", "")),
        "input_size": f"{width}x{height}",  # W x H, as everywhere else
        "in_channels": str(state["model_config"]["in_channels"]),
        "preprocessing": json.dumps(state.get("preprocessing")),
        "bit_depth": HIGH_DEPTH_RULE if depth is None else str(depth),
        "bit_depth_scaling": "" if depth is None else (
            f"grey images deeper than 8 bits: round(value * 255 / {2**depth - 1}), every image "
            "alike, before the preprocessing's / 255"),
        "threshold": str(state.get("threshold", "")),
    }


def export_onnx(checkpoint: str | Path, onnx_path: str | Path) -> Path:
    """Write the checkpoint's network as ONNX (dynamic batch size) to ``onnx_path``, atomically."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx.export imports it)
    except ImportError:
        raise MissingExtraError("ONNX export needs onnx: pip install 'segdec[export]'") from None
    onnx_path = Path(onnx_path)
    # Checked first: the export itself takes seconds before it would reach the path.
    if onnx_path.is_dir():
        raise ConfigError(f"{onnx_path} is a folder; give the ONNX file's name, such as "
                          f"{onnx_path / 'model.onnx'}")
    writable_folder(onnx_path.parent)
    state = load_checkpoint(checkpoint)
    scorer = Scorer(model_from_checkpoint(state)).eval()
    height, width = state["input_size"]
    example = torch.rand(2, state["model_config"]["in_channels"], height, width)
    with atomic_path(onnx_path) as tmp:
        program = torch.onnx.export(
            scorer, (example,), dynamo=True, verbose=False, input_names=["image"],
            output_names=["score", "seg_map"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
        model = program.model_proto
        onnx.helper.set_model_props(model, onnx_metadata(state))
        onnx.checker.check_model(model)
        onnx.save(model, tmp)
    return onnx_path
