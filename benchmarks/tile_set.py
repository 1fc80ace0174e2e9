"""A larger real set for issue 24's time budget: every image of a masked set cut into bands.

    python benchmarks/tile_set.py ../shared/data/ksdd data/ksdd_tiles --bands 3

The issue's target is a set of about 1,000 images, and the real sets at hand are smaller
(KolektorSDD 399, DAGM Class1 142). Cutting each KolektorSDD image (about 500x1260) across its
length into 3 bands of about 500x420 gives 1,197 real images, a band defective where its part of
the mask is. The bands keep their item's folder (``kos01/Part0_b1.png`` with
``Part0_b1_label.png`` beside it), so the folder format still keeps an item's images in one
split and no band is tested beside its neighbour trained. Any set the folder format reads with
masks can be cut; images without a mask are refused, as their bands' labels would be guesses.
The bands are written to ``OUT.partial`` and renamed to ``OUT`` at the end, so an interrupted
run leaves no half-written set that looks finished; an existing ``OUT`` is never touched.
"""
import argparse
import itertools
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from segdec.data.folder import read_folder
from segdec.data.images import load_image, load_mask


def band_rows(height: int, bands: int) -> list[tuple[int, int]]:
    """Row ranges of ``bands`` bands as equal as whole rows allow, covering every row once."""
    edges = [height * k // bands for k in range(bands + 1)]
    return list(itertools.pairwise(edges))


def cut(source: Path, out: Path, bands: int) -> dict[str, int]:
    """Write every image of ``source`` as ``bands`` bands under ``out``; counts of what was
    written."""
    samples = read_folder(source)
    unmasked = [s.name for s in samples if s.mask_path is None]
    if unmasked:
        sys.exit(f"{source}: {len(unmasked)} image(s) without a mask (first {unmasked[0]}); a "
                 "band's label cannot be told without one: cut a set whose images all have masks")
    if out.exists():
        sys.exit(f"{out} exists; remove it or choose another folder (it is never overwritten)")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    counts = {"images": 0, "defective": 0}
    for sample in samples:
        pixels = load_image(sample.image)
        mask = load_mask(sample.mask_path, pixels.shape[:2])
        stem = Path(sample.name).with_suffix("")
        for band, (top, bottom) in enumerate(band_rows(pixels.shape[0], bands)):
            target = partial / f"{stem}_b{band}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[top:bottom]).save(target)
            Image.fromarray(mask[top:bottom] * np.uint8(255)).save(
                target.with_name(f"{target.stem}_label.png"))
            counts["images"] += 1
            counts["defective"] += int(mask[top:bottom].any())
    partial.rename(out)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="a masked set the folder format reads")
    parser.add_argument("out", type=Path, help="the new set's folder (must not exist)")
    parser.add_argument("--bands", type=int, default=3, help="bands per image (default 3)")
    args = parser.parse_args(argv)
    if args.bands < 1:
        parser.error("--bands must be at least 1")
    counts = cut(args.source, args.out, args.bands)
    print(f"{args.out}: {counts['images']} images, {counts['defective']} defective, "
          f"from {args.source} in {args.bands} bands")


if __name__ == "__main__":
    main()
