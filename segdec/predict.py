"""Run a trained model on new images: scores, decisions, masks and overlays.

Every image is read by content (grey or colour, as the model was trained; deeper than 8 bits
scaled to 0-255 by the run's bit depth, which the checkpoint records, as in training), stretched
to the checkpoint's input size exactly as in training, and scored in batches. Its 1/8
segmentation map is interpolated back to the image's own resolution, so masks and overlays line
up with the file the engineer opened.
An unreadable file is reported and listed in ``skipped.csv``; the others go on.

``OUT/scores.csv``: ``image, score, decision`` (decision 1 = defective, ``score >= threshold``).
``OUT/masks/NAME.png``: the segmentation map thresholded at ``mask_threshold`` (0 or 255); it is
independent of the decision, so it can show a weak spot on an image judged clean.
``OUT/overlays/NAME.png``: the image with the map as a red tint, framed red (defective) or green,
with the score written in the corner.
Predict records what it writes in ``OUT/.segdec-predict.json`` (``segdec.outputs``) and holds
``OUT``'s lock while it writes. An ``OUT`` that already holds its results is refused unless
``overwrite``, which removes first the files that manifest lists and nothing else: an ``OUT`` whose
``masks/`` (or any other of these names) holds files predict did not write, such as a dataset's
ground-truth masks, is refused whatever the options.
"""

from __future__ import annotations

import glob
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from segdec.checkpoint import load_checkpoint, model_from_checkpoint, scoring_runtime
from segdec.data.dataset import image_tensor
from segdec.data.images import load_image, resize
from segdec.data.severstal import IMAGE_SUFFIXES
from segdec.errors import CheckpointError, ConfigError, DataError, OutputExistsError
from segdec.io import atomic_write
from segdec.messages import above_progress_bars
from segdec.model import SegDecNet, probabilities
from segdec.outputs import (
    FolderLock,
    files_under,
    record,
    recorded,
    remove_recorded,
)

DEFECT_COLOUR, CLEAN_COLOUR, TINT = (230, 30, 30), (40, 190, 70), np.array([255.0, 0.0, 0.0])
# The names predict writes in its output folder; --overwrite replaces only what its manifest
# lists of them.
OUTPUTS = ("scores.csv", "skipped.csv", "masks", "overlays")
DRAWN = ("masks", "overlays")  # one PNG per readable image in each

logger = logging.getLogger(__name__)  # segdec.messages shows its notes on standard error


class Scorer(nn.Module):
    """The network with probabilities as outputs: what ``predict`` runs and ONNX exports."""

    def __init__(self, model: SegDecNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float [B, C, H, W] in [0, 1] -> (defect probability [B], seg map [B, 1, H/8, W/8])."""
        return probabilities(self.model, images)


def find_images(spec: str | Path, out: Path | None = None) -> list[Path]:
    """The image files of a folder (by suffix), or every file a glob pattern matches; broken
    symbolic links too, which are then reported as unreadable rather than passed over. Predict's
    own masks and overlays in ``out``, which a recursive glob can match, are left out."""
    folder = Path(spec)
    if folder.is_dir():
        paths = sorted(p for p in folder.iterdir()
                       if _file_or_broken_link(p) and p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        paths = sorted(Path(p) for p in glob.glob(str(spec), recursive=True)
                       if _file_or_broken_link(Path(p)))
    own = [p for p in paths if out is not None and _drawn_by_predict(p, out)]
    if own:
        paths = [p for p in paths if p not in own]
        logger.info("note: %s matches %d files of predict's own results in %s and %s; they are "
                    "left out", spec, len(own), out / "masks", out / "overlays")
    if not paths:
        raise DataError(f"{spec} holds or matches no image files"
                        + (" besides predict's own results" if own else "")
                        + "; give a folder of images or a quoted glob such as 'images/**/*.png'")
    clashes = [stem for stem, n in Counter(p.stem for p in paths).items() if n > 1]
    if clashes:
        same = [str(p) for p in paths if p.stem == clashes[0]]
        raise DataError(f"{' and '.join(same)} would write the same mask name {clashes[0]}.png; "
                        "predict them in separate runs")
    return paths


def _file_or_broken_link(path: Path) -> bool:
    return path.is_file() or (path.is_symlink() and not path.exists())


def _drawn_by_predict(path: Path, out: Path) -> bool:
    """Whether ``path`` lies in ``out/masks`` or ``out/overlays``."""
    resolved = path.absolute()
    return any(resolved.is_relative_to((out / name).absolute()) for name in DRAWN)


def decision_threshold(state: dict, choice: str | float, checkpoint: str | Path) -> float:
    """``"best"``: the F-maximising threshold found on the validation split; else a number."""
    if choice == "best":
        if "threshold" not in state:
            raise CheckpointError(f"{checkpoint} holds no validation threshold (only best.pt "
                                  "does); use RUN/checkpoints/best.pt or pass --threshold VALUE")
        return float(state["threshold"])
    return probability("threshold", choice)


def probability(name: str, value: str | float) -> float:
    """``value`` as a number in [0, 1]: scores and segmentation maps are probabilities."""
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(
            f"{name} {value!r} is not a number; give a probability in [0, 1]") from None
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{name} {number} must lie in [0, 1] (scores and maps are probabilities)")
    return number


def previous_outputs(out: Path, overwrite: bool) -> list[str]:
    """The files of an earlier prediction in ``out``, which ``overwrite`` lets predict remove;
    refused unless ``overwrite``, since new scores beside an older run's masks and overlays would
    describe two runs as one. Files under predict's names that its manifest does not list were
    not written by predict (a dataset's ground-truth masks/), and are never replaced."""
    present = files_under(out, OUTPUTS)
    own = recorded(out, "predict")
    foreign = [name for name in present if name not in own]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise OutputExistsError(
            f"{out} holds {', '.join(foreign[:3])}{more}, which segdec predict did not write "
            "(ground-truth masks of a dataset, say); predict never replaces such files: choose "
            "another --out for the results")
    if present and not overwrite:
        names = [name for name in OUTPUTS if (out / name).exists()]
        raise OutputExistsError(
            f"{out} already holds the results of a prediction ({', '.join(names)}); replace "
            "them with --overwrite (overwrite=True in Python) or choose another folder")
    return present if overwrite else []


@dataclass
class LoadedImage:
    index: int
    native: np.ndarray | None  # uint8 [H, W(, 3)] as read; None when unreadable
    pixels: torch.Tensor | None  # the network's input [C, H, W]
    error: str | None = None


class ImageFiles(Dataset):
    """Images prepared as in training; a failure becomes a record, so a batch survives it."""

    def __init__(self, paths: list[Path], size: tuple[int, int], channels: int,
                 bit_depth: int | None = None) -> None:
        self.paths, self.size, self.channels, self.bit_depth = paths, size, channels, bit_depth

    @classmethod
    def for_checkpoint(cls, paths: list[Path], state: dict) -> ImageFiles:
        """``paths`` read as the checkpoint's network was trained on: its input size, channels
        and bit depth (checkpoints older than bit_depth: each image by its own)."""
        return cls(paths, tuple(state["input_size"]), state["model_config"]["in_channels"],
                   state.get("bit_depth"))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> LoadedImage:
        try:
            native = load_image(self.paths[index], self.channels, self.bit_depth)
        except DataError as err:
            return LoadedImage(index, None, None, str(err))
        return LoadedImage(index, native, image_tensor(resize(native, self.size)))


def overlay(image: np.ndarray, seg_map: np.ndarray, score: float, defective: bool) -> Image.Image:
    """The image with the segmentation probability as a red tint and a decision-coloured frame."""
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    alpha = 0.6 * seg_map[..., None]
    blended = rgb.astype(np.float32) * (1.0 - alpha) + TINT * alpha
    picture = Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8))
    colour = DEFECT_COLOUR if defective else CLEAN_COLOUR
    frame = max(2, min(image.shape[:2]) // 64)
    draw = ImageDraw.Draw(picture)
    draw.rectangle([0, 0, picture.width - 1, picture.height - 1], outline=colour, width=frame)
    draw.text((frame + 2, frame + 2), f"{score:.3f}", fill=colour)
    return picture


def _save_png(picture: Image.Image, path: Path) -> None:
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


@torch.inference_mode()
def predict_images(
    checkpoint: str | Path,
    images: str | Path,
    out: str | Path,
    threshold: str | float = "best",
    batch_size: int = 8,
    device: str = "auto",
    mask_threshold: float = 0.5,
    num_workers: int = 0,
    progress: bool = True,
    overwrite: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every image of ``images`` (folder or glob) into ``out``; return (scores, skipped).
    With ``overwrite``, the outputs of an earlier prediction in ``out`` are removed first."""
    out = Path(out)
    mask_threshold = probability("mask threshold", mask_threshold)
    with FolderLock(out, "predict"), above_progress_bars():
        return _predict_locked(checkpoint, images, out, threshold, batch_size, device,
                               mask_threshold, num_workers, progress, overwrite)


def _predict_locked(checkpoint: str | Path, images: str | Path, out: Path,
                    threshold: str | float, batch_size: int, device: str, mask_threshold: float,
                    num_workers: int, progress: bool, overwrite: bool
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``predict_images`` in ``out``, whose lock this process holds."""
    replaced = previous_outputs(out, overwrite)
    state = load_checkpoint(checkpoint)
    cut = decision_threshold(state, threshold, checkpoint)
    paths = find_images(images, out)
    remove_recorded(out, "predict", replaced)
    record(out, "predict", ["scores.csv", "skipped.csv", *(
        f"{folder}/{path.stem}.png" for folder in DRAWN for path in paths)])
    runtime = scoring_runtime(state, device)
    runtime.apply()
    torch_device, dtype = runtime.device, runtime.autocast_dtype
    scorer = Scorer(model_from_checkpoint(state, torch_device))
    files = ImageFiles.for_checkpoint(paths, state)
    if state.get("bit_depth") is None:
        logger.info("note: %s predates bit_depth, so each grey image deeper than 8 bits is scaled "
                    "by the depth its own largest value implies, as in its training", checkpoint)
    batches = DataLoader(files, batch_size=batch_size, num_workers=num_workers, collate_fn=list)
    rows, skipped = [], []
    bar = tqdm(total=len(paths), unit="img", desc="predict", disable=not progress)

    def score_and_draw(readable: list[LoadedImage]) -> None:
        pixels = torch.stack([item.pixels for item in readable]).to(torch_device)
        with torch.autocast(torch_device.type, dtype=dtype, enabled=dtype is not None):
            scores, seg_maps = scorer(pixels)
        for item, score, seg_map in zip(readable, scores.tolist(), seg_maps, strict=True):
            path, defective = paths[item.index], score >= cut
            native = F.interpolate(seg_map[None], size=item.native.shape[:2], mode="bilinear",
                                   align_corners=False)[0, 0].clamp(0, 1).cpu().numpy()
            mask = ((native >= mask_threshold) * 255).astype(np.uint8)
            _save_png(Image.fromarray(mask), out / "masks" / f"{path.stem}.png")
            _save_png(overlay(item.native, native, score, defective),
                      out / "overlays" / f"{path.stem}.png")
            rows.append({"image": str(path), "score": score, "decision": int(defective)})

    for batch in batches:
        for item in batch:
            if item.error is not None:
                skipped.append({"image": str(paths[item.index]), "error": item.error})
                logger.info("segdec predict: skipped %s", item.error)
        readable = [item for item in batch if item.error is None]
        if readable:
            score_and_draw(readable)
        bar.update(len(batch))
    bar.close()
    table = pd.DataFrame(rows, columns=["image", "score", "decision"])
    skipped_table = pd.DataFrame(skipped, columns=["image", "error"])
    atomic_write(out / "scores.csv", lambda tmp: table.to_csv(tmp, index=False))
    atomic_write(out / "skipped.csv", lambda tmp: skipped_table.to_csv(tmp, index=False))
    return table, skipped_table
