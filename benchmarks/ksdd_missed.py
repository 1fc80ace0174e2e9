"""Which KolektorSDD cracks a trained network misses, and whether it still finds the ones it
does find when the test image is flipped or shifted (issue 33's diagnosis of the missed cracks).

    python benchmarks/ksdd_missed.py RUN [RUN ...] > figures/ksdd/diagnosis/missed_cracks.md

Each RUN is a KolektorSDD run directory that still holds ``checkpoints/best.pt`` (a batch's
``runs/``, not the image-free records). Its test fold is scored again, whole, with the input
image changed at test time only: flipped left-right, flipped up-down, turned by 180 degrees,
or rolled sideways by a quarter of its width. A network that has learnt cracks scores a flipped
crack as a crack; one that has learnt where and in which direction the training cracks lie does
not. Prints, per run, the fold's AP under each change and the score of every positive test
image, with each defect's extent, slope and contrast measured from its image and mask.
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
from segdec.data.images import image_shape, load_image
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
    shapes = [defect_shape(load_image(s.image, 1), s.mask(image_shape(s.image))) if s.label
              else {} for s in test.samples]
    return table.join(pd.DataFrame(shapes)), ap


def main(runs: list[str]) -> None:
    torch.set_num_threads(1)
    for run in map(Path, runs):
        table, ap = scores(run)
        print(f"## {run}\n")
        print("Fold AP (%) with every test image changed: " + "; ".join(
            f"{name} {100 * value:.1f}" for name, value in ap.items()) + ".\n")
        positives = table[table["label"] == 1].sort_values("as is")
        shown = positives[["image", "extent", "slope", "right_edge", "contrast", *CHANGES]]
        print(shown.to_markdown(index=False, floatfmt=".2f") + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
