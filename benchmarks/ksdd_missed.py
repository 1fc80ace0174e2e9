"""Which KolektorSDD cracks a trained network misses, and whether it still finds the ones it
does find when the test image is flipped or shifted (issue 33's diagnosis of the missed cracks).

    python benchmarks/ksdd_missed.py RUN [RUN ...] > figures/ksdd/diagnosis/missed/missed_cracks.md

Each RUN is a KolektorSDD run directory that still holds ``checkpoints/best.pt`` (a batch's
``runs/``, not the image-free records). Its test fold is scored again, whole, with the input
image changed at test time only: flipped left-right, flipped up-down, turned by 180 degrees,
or rolled sideways by a quarter of its width. A network that has learnt cracks scores a flipped
crack as a crack; one that has learnt where and in which direction the training cracks lie does
not. Prints, per run, the fold's AP under each change and the score of every positive test
image, with each defect's extent, slope and contrast measured from its image and mask.

Two more measurements per positive test image, as it is:
- ``seg on defect`` and ``seg elsewhere``: the peak of the segmentation map over the defect's
  1/8 cells (and their neighbours, which its soft target reaches) and over the rest. A crack
  that the segmentation does not answer (both near 0) cannot reach the decision, which reads
  the segmentation's features.
- ``levelled`` and ``tilted +-30``: the score with the image rotated about the point where the
  crack leaves the image's right edge, so that the crack's fitted line is horizontal, or 30
  degrees steeper either way, while it still ends at that edge (the border reflected). This
  tests the crack's direction apart from its place.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from segdec.checkpoint import best_checkpoint, load_checkpoint, model_from_checkpoint
from segdec.config import RunConfig
from segdec.data.dataset import image_tensor
from segdec.data.images import image_shape, load_image, resize
from segdec.data.prepare import prepare_data
from segdec.metrics import image_metrics
from segdec.model import probabilities

CHANGES = {
    "as is": lambda image: image,
    "flipped left-right": lambda image: image[:, ::-1],
    "flipped up-down": lambda image: image[::-1],
    "turned 180": lambda image: image[::-1, ::-1],
    "rolled by W/4": lambda image: np.roll(image, image.shape[1] // 4, axis=1),
}


def defect_shape(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The defect's horizontal extent (share of the width), its slope (rows per column of a line
    fitted through its pixels), whether it touches the right edge, and its contrast (how much
    darker it is than a 12-pixel ring around it, in standard deviations of the ring), from the
    native image and mask."""
    rows, columns = np.nonzero(mask)
    slope = np.polyfit(columns, rows, 1)[0] if np.ptp(columns) > 5 else np.nan
    ring = ndimage.binary_dilation(mask, iterations=15) & ~ndimage.binary_dilation(mask,
                                                                                  iterations=3)
    pixels = image.astype(float)
    return {"extent": (np.ptp(columns) + 1) / mask.shape[1], "slope": slope,
            "right_edge": bool(columns.max() >= mask.shape[1] - 2),
            "contrast": (pixels[ring].mean() - pixels[mask > 0].mean()) / pixels[ring].std()}


def rotated_about(image: np.ndarray, centre: tuple[float, float], degrees: float) -> np.ndarray:
    """``image`` turned by ``degrees`` (positive: the crack's right end stays, its slope
    increases) about ``centre`` = (row, column), the border filled by reflection."""
    turn = np.deg2rad(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    offset = np.asarray(centre) - rotation @ np.asarray(centre)
    return ndimage.affine_transform(image.astype(np.float32), rotation, offset=offset,
                                    order=1, mode="reflect").round().astype(image.dtype)


def crack_rotations(mask: np.ndarray) -> dict[str, tuple[tuple[float, float], float]]:
    """Per rotation of ``ROTATIONS``: the centre (where the crack ends at the right) and angle."""
    rows, columns = np.nonzero(mask)
    right = columns >= columns.max() - 2
    centre = (float(rows[right].mean()), float(columns.max()))
    level = -np.rad2deg(np.arctan(np.polyfit(columns, rows, 1)[0]))
    return {"levelled": (centre, level), "tilted +30": (centre, 30.0),
            "tilted -30": (centre, -30.0)}


ROTATIONS = ["levelled", "tilted +30", "tilted -30"]


def segmentation_peaks(seg: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The segmentation map's peak over the defect's 1/8 cells with their neighbours (the reach
    of the soft 17x17 target, which a trained map follows) and over the other cells."""
    rows, columns = seg.shape
    cells = mask.reshape(rows, mask.shape[0] // rows, columns, mask.shape[1] // columns)
    on_defect = ndimage.binary_dilation(cells.max(axis=(1, 3)) > 0, np.ones((3, 3)))
    return {"seg on defect": float(seg[on_defect].max()),
            "seg elsewhere": float(seg[~on_defect].max())}


def positive_scores(model, test, index: int) -> dict[str, float]:
    """One positive test image's segmentation peaks as it is, and its score under each rotation
    about its crack's right end."""
    sample, options = test.samples[index], test.options
    with torch.inference_mode():
        _, seg = probabilities(model, image_tensor(test.input_image(index))[None])
        measured = segmentation_peaks(seg[0, 0].numpy(), test.input_mask(index))
        native = load_image(sample.image, options.channels, options.bit_depth)
        for name, (centre, degrees) in crack_rotations(sample.mask(native.shape[:2])).items():
            turned = resize(rotated_about(native, centre, degrees), options.size)
            measured[name] = float(probabilities(model, image_tensor(turned)[None])[0])
    return measured


def scores(run_dir: Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every test image's score under each change, and the fold's AP under each."""
    config = RunConfig.from_file(run_dir / "config.yaml")
    _, data = prepare_data(config, run_dir / "split.csv")
    model = model_from_checkpoint(load_checkpoint(best_checkpoint(run_dir)))
    test = data.test
    table = pd.DataFrame({"image": [s.name for s in test.samples], "label": test.labels()})
    with torch.inference_mode():
        for name, change in CHANGES.items():
            batch = torch.stack([image_tensor(np.ascontiguousarray(change(test.input_image(i))))
                                 for i in range(len(test))])
            table[name] = probabilities(model, batch)[0].numpy()
    ap = {name: image_metrics(table["label"].to_numpy(), table[name].to_numpy())["ap"]
          for name in CHANGES}
    shapes = [defect_shape(load_image(s.image, 1), s.mask(image_shape(s.image)))
              | positive_scores(model, test, i) if s.label else {}
              for i, s in enumerate(test.samples)]
    return table.join(pd.DataFrame(shapes)), ap


def main(runs: list[str]) -> None:
    torch.set_num_threads(1)
    for run in map(Path, runs):
        table, ap = scores(run)
        print(f"## {run}\n")
        print("Fold AP (%) with every test image changed: " + "; ".join(
            f"{name} {100 * value:.1f}" for name, value in ap.items()) + ".\n")
        positives = table[table["label"] == 1].sort_values("as is")
        shown = positives[["image", "extent", "slope", "right_edge", "contrast", *CHANGES,
                           *ROTATIONS, "seg on defect", "seg elsewhere"]]
        print(shown.to_markdown(index=False, floatfmt=".2f") + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
