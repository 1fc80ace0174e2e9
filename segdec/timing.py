"""Run-time arithmetic: durations as people read and type them, the estimate printed before a
run's first epoch (what its parts take, from a few timed steps), the progress of a run and of a
batch, and ``timing.json`` (estimated against actual seconds, to check the estimate).

Only arithmetic and the clock: the run configuration imports this module (to read durations), so
it imports nothing of the network or the data; ``segdec.train`` times the steps it estimates from.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from segdec.errors import ConfigError
from segdec.io import write_json

if TYPE_CHECKING:  # only to annotate RunEstimate.of_run
    import numpy as np

    from segdec.config import RunConfig
    from segdec.data.prepare import RunData

DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
ESTIMATE_STEPS = 3  # timed after one warm-up step; their median is the step time


def median_seconds_of(work: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """The median time of ``repeats`` calls after ``warmup`` untimed ones (allocation, caches,
    compilation and worker start-up belong to the first call, not to every step)."""
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def steps_per_epoch(labels: np.ndarray, batch_size: int) -> int:
    """Training steps per epoch: every positive and as many negatives (the training loop's
    draw), in batches."""
    positives = int(labels.sum())
    return math.ceil((positives + min(positives, len(labels) - positives)) / batch_size)


def validations(start_epoch: int, epochs: int, validate_every: int) -> int:
    """How many of epochs ``start_epoch..epochs-1`` validate (every ``validate_every``-th and
    the last), as the training loop does."""
    return sum((e + 1) % validate_every == 0 or e + 1 == epochs
               for e in range(start_epoch, epochs))


def duration(seconds: float) -> str:
    """Seconds as a person reads them: 0.1 s, 40 s, 12 min, 3.2 h (under a second with its
    digits: a budget of 0.1 s is not one of "0 s")."""
    if seconds < 1:
        return f"{seconds:.2g} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def parse_duration(text: str) -> float:
    """Seconds from a duration as a person types it: ``90s``, ``20m``, ``1.5h`` or seconds."""
    match = re.fullmatch(r"\s*(\d+\.?\d*|\.\d+)\s*([smh]?)\s*", text.lower())
    if not match:
        raise ConfigError(f"{text!r} is not a duration: give a number with s, m or h (90s, "
                          "20m, 1.5h) or a number of seconds")
    return float(match[1]) * DURATION_UNITS[match[2]]


@dataclass(frozen=True)
class RunEstimate:
    """The parts of a run's expected duration, from a few timed steps and one timed batch."""

    epochs: int  # still to train (all of them, or those a resumed run has left)
    steps: int  # per epoch
    step_s: float
    validations: int
    validate_every: int
    val_images: int
    test_images: int
    image_s: float  # scoring one image (validation and test)

    @classmethod
    def of_run(cls, config: RunConfig, data: RunData, start_epoch: int, step_s: float,
               image_s: float) -> RunEstimate:
        """The epochs a run has left from ``start_epoch``, at a measured step and per-image
        scoring time."""
        return cls(epochs=config.epochs - start_epoch,
                   steps=steps_per_epoch(data.train.labels(), config.batch_size), step_s=step_s,
                   validations=validations(start_epoch, config.epochs, config.validate_every),
                   validate_every=config.validate_every, val_images=len(data.val),
                   test_images=len(data.test), image_s=image_s)

    @property
    def train_s(self) -> float:
        return self.epochs * self.steps * self.step_s

    @property
    def validation_s(self) -> float:
        return self.validations * self.val_images * self.image_s

    @property
    def test_s(self) -> float:
        return self.test_images * self.image_s

    @property
    def total_s(self) -> float:
        return self.train_s + self.validation_s + self.test_s

    def parts(self) -> dict:
        return {**asdict(self), "train_s": self.train_s, "validation_s": self.validation_s,
                "test_s": self.test_s}

    def line(self, machine: str) -> str:
        """What the run will take here and what would change it. Halving the input area is
        assumed, not measured, to halve the time (convolutions cost in proportion to pixels)."""
        return (f"estimate: {self.epochs} epochs x {self.steps} steps ≈ {duration(self.train_s)} "
                f"on this machine ({machine}); validation every {self.validate_every} "
                f"epoch{'s' if self.validate_every != 1 else ''} ≈ "
                f"{duration(self.validation_s)}; test ≈ {duration(self.test_s)}; in all ≈ "
                f"{duration(self.total_s)}. At half the input area ≈ "
                f"{duration(self.total_s / 2)}, assuming time scales with pixels (an assumption); "
                "fewer epochs or patience shorten it in proportion")


def run_progress(epoch_seconds: Sequence[float], epochs: int) -> str:
    """The whole run so far: elapsed time and the remaining epochs at the mean measured epoch
    time (which includes the validations in their proportion)."""
    done = len(epoch_seconds)
    elapsed = sum(epoch_seconds)
    left = (epochs - done) * elapsed / max(done, 1)
    return f"run: {done}/{epochs} epochs, {duration(elapsed)} elapsed, ≈ {duration(left)} left"


def batch_progress(elapsed: float, run_seconds: Sequence[float], remaining: int,
                   workers: int) -> str:
    """A batch so far: elapsed time and the runs remaining at the median run time so far,
    ``workers`` of them at a time."""
    if not run_seconds or remaining == 0:
        return f"batch: {duration(elapsed)} elapsed"
    left = remaining * statistics.median(run_seconds) / workers
    return (f"batch: {duration(elapsed)} elapsed, ≈ {duration(left)} left for {remaining} "
            f"run{'s' if remaining != 1 else ''} ({workers} at a time)")


def record_estimate(run_dir: Path, start_epoch: int, estimate: RunEstimate | None,
                    estimate_s: float, budget: dict | None = None) -> None:
    """``timing.json``: one entry per stretch of the run (a resumed run appends one), its
    estimate now, the time budget's plan where one was given, and its actual seconds when it
    ends (``record_actual``)."""
    path = run_dir / "timing.json"
    stretches = json.loads(path.read_text()) if start_epoch > 0 and path.is_file() else []
    write_json(path, [*stretches, {
        "from_epoch": start_epoch,
        "estimated_s": estimate.total_s if estimate else None,
        "parts": estimate.parts() if estimate else None,
        "estimate_took_s": estimate_s, **({"budget": budget} if budget else {}),
        "actual_s": None}])


def record_actual(run_dir: Path, actual_s: float, stopped: dict | None) -> None:
    """The stretch's actual seconds (training, validations and test) and, for a run that
    ended early, where and why."""
    path = run_dir / "timing.json"
    stretches = json.loads(path.read_text())
    stretches[-1].update(actual_s=actual_s, **({"stopped": stopped} if stopped else {}))
    write_json(path, stretches)
