"""The order of training images: Božič's frequency-of-use sampling of negatives, and the epoch
order one persistent loader follows."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class NegativeSampler:
    """Božič's frequency-of-use sampling: negatives seen least are drawn most."""

    def __init__(self, n_negatives: int, seed: int) -> None:
        self.counts = np.zeros(n_negatives, dtype=np.int64)
        self.rng = np.random.default_rng(seed)

    def probabilities(self) -> np.ndarray:
        n = len(self.counts)
        if self.counts.max() == 0:
            return np.full(n, 1.0 / n)
        p = 1.0 - self.counts / self.counts.max()
        p = p - np.median(p) + 1.0
        p = np.maximum(p, 1e-12) ** (4.0 * math.log(max(n, 2)))
        return p / p.sum()

    def draw(self, k: int) -> np.ndarray:
        """``k`` distinct negatives (all of them when fewer exist)."""
        k = min(k, len(self.counts))
        probabilities = self.probabilities()
        nonzero = int(np.count_nonzero(probabilities))
        if nonzero < k:  # the most used ones' probabilities underflow to 0: draw uniformly
            probabilities = np.full(len(self.counts), 1.0 / len(self.counts))
        chosen = self.rng.choice(len(self.counts), size=k, replace=False, p=probabilities)
        self.counts[chosen] += 1
        return chosen

    def state_dict(self) -> dict:
        return {"counts": self.counts.tolist(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self.rng.bit_generator.state = state["rng"]


class EpochOrder(Sampler[int]):
    """The current epoch's training order, set each epoch, so that one loader serves all epochs
    and its worker processes keep their caches of decoded images."""

    def __init__(self) -> None:
        self.order: list[int] = []

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)
