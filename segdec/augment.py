"""Training-time flips of the images and their targets, drawn anew each epoch from the run's seed
and the epoch alone, so that a resumed run repeats the flips of the uninterrupted one.

Božič trains without augmentation. Every KolektorSDD crack reaches the image's right edge, so a
network can learn where cracks lie instead of what they look like; flipping left-right takes that
cue away (``benchmarks/ksdd_missed.py`` measures what a network learnt).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

FLIPS = ("none", "horizontal", "both")
Batch = dict[str, torch.Tensor]
# The tensors of a batch that are images of the scene, flipped together (the 1/8 target and its
# weights follow the image to within one cell: their pooling grid is not symmetric).
FLIPPED = ("image", "seg_target", "seg_weight")


def flips_for_epoch(kind: str, seed: int, epoch: int) -> Callable[[Batch], Batch] | None:
    """What to do to each training batch of ``epoch``: None for ``none``; else flip each image
    left-right with probability 1/2 (and, for ``both``, up-down with probability 1/2)."""
    if kind == "none":
        return None
    if kind not in FLIPS:
        raise ValueError(f"flips={kind!r} is not one of {', '.join(FLIPS)}")
    draws = np.random.default_rng([seed, epoch])

    def flip(batch: Batch) -> Batch:
        n = len(batch["image"])
        sideways = draws.random(n) < 0.5
        upside = draws.random(n) < 0.5 if kind == "both" else np.zeros(n, bool)
        flipped = dict(batch)
        for key in FLIPPED:
            tensor = batch[key].clone()
            for i in np.flatnonzero(sideways):
                tensor[i] = tensor[i].flip(-1)
            for i in np.flatnonzero(upside):
                tensor[i] = tensor[i].flip(-2)
            flipped[key] = tensor
        return flipped

    return flip
