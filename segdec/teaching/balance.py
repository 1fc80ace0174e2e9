"""What the loss balance does over training: each schedule's two weights per epoch, and the epoch a
run's decision starts to learn."""

from __future__ import annotations

import math

import pandas as pd

from segdec.loss import loss_weights


def balance_schedules(epochs: int, beta: float) -> pd.DataFrame:
    """``w_seg`` and ``w_dec`` of every balance schedule per epoch, in long form."""
    rows = [
        {"epoch": epoch, "balance": balance, "w_seg": w_seg, "w_dec": w_dec}
        for balance in ("decay", "linear", "constant")
        for epoch in range(epochs)
        for w_seg, w_dec in [loss_weights(balance, epoch, epochs, beta)]
    ]
    return pd.DataFrame(rows)


def decision_learning_epoch(history: pd.DataFrame) -> int | None:
    """The first epoch whose mean decision loss is below half of ln 2 (chance), or None."""
    below = history.loc[history["loss_dec"] < math.log(2) / 2, "epoch"]
    return int(below.iloc[0]) if len(below) else None
