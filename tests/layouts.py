"""Small datasets and run directories in every on-disk layout segdec reads (the anomalib habit):
one helper, so each reader is tested against the real layout rather than a hand-built fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from segdec.config import RunConfig
from segdec.data.rle import rle_encode

SHAPE = (40, 24)  # (H, W)


def image(path: Path, shape=SHAPE, value=100, colour=False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*shape, 3) if colour else shape, value, np.uint8)).save(path)
    return path


def camera_image(path: Path, shape=SHAPE, low=300, high=4095) -> Path:
    """A 16-bit grey PNG or TIFF (PIL mode I;16), as a 12-bit camera writes them: ``low``
    everywhere but row 1 (halfway to ``high``) and the last pixel (``high``)."""
    pixels = np.full(shape, low, np.uint16)
    pixels[1], pixels[-1, -1] = (low + high) // 2, high
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


DEFECT = (slice(10, 20), slice(5, 10))  # the defect region of ``mask``: 50 of 960 pixels


def mask(path: Path, shape=SHAPE, defect=True, colour=False, background="black") -> Path:
    """A mask with the ``DEFECT`` region; ``background`` "transparent" (RGBA, white but fully
    transparent) or "white-palette" (palette index 0 white, the defect index 1 black)."""
    pixels = np.zeros((*shape, 3) if colour else shape, np.uint8)
    if defect:
        pixels[DEFECT] = (0, 200, 0) if colour else 255
    picture = Image.fromarray(pixels)
    if background == "transparent":
        rgba = np.zeros((*shape, 4), np.uint8)
        rgba[...] = (255, 255, 255, 0)
        if defect:
            rgba[DEFECT] = (200, 0, 0, 255)
        picture = Image.fromarray(rgba)
    elif background == "white-palette":
        picture = Image.fromarray((pixels.reshape(*shape, -1).any(-1)).astype(np.uint8))
        picture.putpalette([255, 255, 255, 0, 0, 0])  # makes it a palette image
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path


# Severstal's train.csv: (image, class) -> the defect's rows and columns. "scan_2.jpg" has an
# underscore, as the older format's ImageId_ClassId key must be split at its last one.
SEVERSTAL_DEFECTS = {("a.jpg", 1): (slice(10, 20), slice(5, 10)),
                     ("a.jpg", 3): (slice(30, 35), slice(0, 24)),
                     ("scan_2.jpg", 2): (slice(0, 4), slice(20, 24))}


def severstal_mask(name: str, classes: tuple[int, ...] = (1, 2, 3, 4)) -> np.ndarray:
    """The union of ``name``'s ``SEVERSTAL_DEFECTS`` of ``classes``, as a boolean [H, W] mask."""
    pixels = np.zeros(SHAPE, bool)
    for (image_name, class_id), where in SEVERSTAL_DEFECTS.items():
        if image_name == name and class_id in classes:
            pixels[where] = True
    return pixels


def _severstal_csv(legacy: bool) -> str:
    """The current ``ImageId,ClassId,EncodedPixels`` (a row per defect) or the older
    ``ImageId_ClassId,EncodedPixels`` (four rows per image, empty pixels for absent classes)."""
    def rle(name, class_id):
        return rle_encode(severstal_mask(name, (class_id,)))

    if not legacy:
        return "ImageId,ClassId,EncodedPixels\n" + "".join(
            f"{name},{class_id},{rle(name, class_id)}\n" for name, class_id in SEVERSTAL_DEFECTS)
    return "ImageId_ClassId,EncodedPixels\n" + "".join(
        f"{name}_{class_id},{rle(name, class_id)}\n"
        for name in ("a.jpg", "scan_2.jpg", "c.jpg") for class_id in (1, 2, 3, 4))


def write_layout(layout: str, root: Path) -> dict[str, tuple[int, bool]]:
    """Write ``layout`` (a folder layout, or a published dataset's own: ksdd, ksdd2, dagm) under
    ``root``; return sample name -> (label, has a mask)."""
    expected: dict[str, tuple[int, bool]] = {}
    if layout == "mvtec":
        for i in range(3):
            image(root / "train" / "good" / f"{i:03d}.png")
            expected[f"train/good/{i:03d}.png"] = (0, False)
        image(root / "test" / "good" / "000.png")
        expected["test/good/000.png"] = (0, False)
        for kind in ("crack", "scratch"):
            for i in range(2):
                image(root / "test" / kind / f"{i:03d}.png")
                mask(root / "ground_truth" / kind / f"{i:03d}_mask.png")
                expected[f"test/{kind}/{i:03d}.png"] = (1, True)
    elif layout == "class-folders":
        for i in range(3):
            image(root / "good" / f"g{i}.jpg")
            expected[f"good/g{i}.jpg"] = (0, False)
        image(root / "crack" / "c0.png")
        mask(root / "masks" / "crack" / "c0.png")
        image(root / "crack" / "nested" / "c1.png")  # a defect type may have subfolders
        image(root / "dent" / "d0.png")
        expected.update({"crack/c0.png": (1, True), "crack/nested/c1.png": (1, False),
                         "dent/d0.png": (1, False)})
    elif layout == "masks-beside":
        for item, suffix in (("item1", "_mask"), ("item2", "_GT"), ("a/b/item3", "_label")):
            image(root / item / "p0.png")
            mask(root / item / f"p0{suffix}.png")
            image(root / item / "p1.jpg")
            mask(root / item / f"p1{suffix}.bmp", defect=False)
            image(root / item / "p2.png")  # no mask: clean
            expected.update({f"{item}/p0.png": (1, True), f"{item}/p1.jpg": (0, True),
                             f"{item}/p2.png": (0, False)})
        image(root / "dagm" / "0001.PNG")  # DAGM: masks in a Label/ folder beside the images
        mask(root / "dagm" / "Label" / "0001_label.PNG")
        image(root / "dagm" / "0002.PNG")
        expected.update({"dagm/0001.PNG": (1, True), "dagm/0002.PNG": (0, False)})
    elif layout == "images-masks":
        for name in ("a.png", "b.jpg", "c.png", "d.png"):
            image(root / "images" / name)
        mask(root / "masks" / "a.png")
        mask(root / "masks" / "b.png", defect=False)
        (root / "labels.csv").write_text("image,label\nc.png,1\nd.png,0\n")
        expected = {"a.png": (1, True), "b.jpg": (0, True), "c.png": (1, False),
                    "d.png": (0, False)}
    elif layout in ("severstal", "severstal-legacy"):
        for name in ("a.jpg", "scan_2.jpg", "c.jpg"):
            image(root / "train_images" / name)
        (root / "train.csv").write_text(_severstal_csv(layout == "severstal-legacy"))
        expected = {"a.jpg": (1, True), "scan_2.jpg": (1, True), "c.jpg": (0, False)}
    elif layout == "ksdd":  # KolektorSDD: every image has a .bmp mask, all zero when clean
        for item, part in ((1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)):
            name = f"kos{item:02d}/Part{part}"
            image(root / f"{name}.jpg")
            mask(root / f"{name}_label.bmp", defect=(item, part) in ((1, 0), (3, 1)))
            expected[f"{name}.jpg"] = (int((item, part) in ((1, 0), (3, 1))), True)
    elif layout == "ksdd2":  # KolektorSDD2: colour images and colour ground truth
        for name in ("train/10000", "train/10001", "train/10002", "test/20000", "test/20001"):
            image(root / f"{name}.png", colour=True)
            mask(root / f"{name}_GT.png", defect=name.endswith(("0", "2")), colour=True)
            expected[f"{name}.png"] = (int(name.endswith(("0", "2"))), True)
    elif layout == "dagm":  # DAGM 2007 Class1: Label/Labels.txt lists every image, CRLF endings
        for split, ids, defective in (("Train", (1, 2, 3), 2), ("Test", (4, 5, 6), 4)):
            folder, rows = root / "Class1" / split, [str(len(ids))]
            for i in ids:
                image(folder / f"{i:04d}.PNG")
                label = f"{i:04d}_label.PNG" if i == defective else "0"
                if i == defective:
                    mask(folder / "Label" / label)
                rows.append(f"{i:04d}\t{int(i == defective)}\t{i:04d}.PNG\t0\t{label}")
                expected[f"{split}/{i:04d}.PNG"] = (int(i == defective), i == defective)
            (folder / "Label" / "Labels.txt").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    else:
        raise ValueError(f"unknown layout {layout}")
    return expected


def fake_run(root, name, n_all, l_p, ap, attention=True, atrous=True, balance="decay",
             tags=None, finished=True, **config):
    """A run directory as train() leaves it, with chosen metrics and three saved maps."""
    run_dir = root / name
    RunConfig(n_all=n_all, n_seg=l_p, attention=attention, atrous=atrous, balance=balance,
              notes=tags or {}, out_dir=str(run_dir), **config).save(run_dir / "config.yaml")
    train = [(f"p{i}", "train", 1, i < l_p) for i in range(n_all)] + [("n0", "train", 0, True)]
    pd.DataFrame(train + [("t0", "test", 1, True)],
                 columns=["image", "subset", "label", "has_pixel_label"]).to_csv(
        run_dir / "split.csv", index=False)
    if finished:
        metrics = {"ap": ap, "auc": ap - 0.01, "f_measure": 0.9, "threshold": 0.5, "fp": 3,
                   "fn": 4, "n_test": 20}
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    rng = np.random.default_rng(0)
    np.savez(run_dir / "segmentation_maps.npz", names=np.array(["a.jpg", "b.jpg", "c.jpg"]),
             images=rng.integers(0, 255, (3, 64, 128), dtype=np.uint8),
             masks=np.zeros((3, 64, 128), np.uint8), seg_maps=rng.random((3, 8, 16)),
             scores=np.array([0.9, 0.8, 0.1]), labels=np.array([1, 1, 0]))
    return run_dir
