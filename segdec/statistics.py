"""Paired statistics for comparing two settings run on the same folds and seeds: the mean
difference with its 95 % t interval, the sign test, and the verdict they support together.

Pure functions of numbers (numpy and scipy), so that every report and claim uses one rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Both tests must agree at this level before a difference counts as separated from noise: the
# interval must exclude zero and the pairs' signs must not be a coin's (sign test).
ALPHA = 0.05
HELPS, HURTS, NOT_SEPARATED = "helps", "hurts", "not separated"


def sign_test(differences: Sequence[float]) -> float:
    """Two-sided sign test of the non-zero paired differences (1.0 when all tie)."""
    values = np.asarray(differences, dtype=float)
    wins, losses = int((values > 0).sum()), int((values < 0).sum())
    return float(stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0


def t_interval(differences: Sequence[float], level: float = 1 - ALPHA) -> tuple[float, float]:
    """The ``level`` t interval of the mean paired difference ((nan, nan) below two pairs)."""
    values = np.asarray(differences, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    mean, sem = values.mean(), values.std(ddof=1) / math.sqrt(len(values))
    if sem == 0:
        return float(mean), float(mean)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * sem
    return float(mean - half), float(mean + half)


@dataclass(frozen=True)
class Paired:
    """What paired differences (first minus second) say."""

    pairs: int
    mean: float
    low: float
    high: float
    wins: int
    losses: int
    ties: int
    sign_p: float

    @property
    def verdict(self) -> str:
        """``helps`` or ``hurts`` where the interval excludes zero and the sign test agrees
        (p < ALPHA), else ``not separated``."""
        if self.sign_p < ALPHA and self.low > 0:
            return HELPS
        if self.sign_p < ALPHA and self.high < 0:
            return HURTS
        return NOT_SEPARATED

    @property
    def can_separate(self) -> bool:
        """Whether this many non-tied pairs could reach p < ALPHA at all (6 at least)."""
        n = self.wins + self.losses
        return n > 0 and 2 * 0.5**n < ALPHA


def paired(differences: Sequence[float]) -> Paired:
    values = np.asarray(differences, dtype=float)
    low, high = t_interval(values)
    return Paired(pairs=len(values), mean=float(values.mean()) if len(values) else math.nan,
                  low=low, high=high, wins=int((values > 0).sum()),
                  losses=int((values < 0).sum()), ties=int((values == 0).sum()),
                  sign_p=sign_test(values))
