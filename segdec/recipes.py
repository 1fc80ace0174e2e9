"""Each dataset's published training recipe (docs/paper.md): what a run gets for fields left unset.

Božič et al. published one recipe per dataset (their experiment scripts); Severstal's is the
paper's Table 4, whose epochs and beta depend on N_all. A recipe fills only the run-configuration
fields a user leaves at ``None``; anything given explicitly wins, and ``config.yaml`` records the
resolved values. The balance schedule is not part of a recipe: the paper's decayed balance (W) is
the default everywhere, and beta is chosen so that theta ends near 0.4 as in Table 4.
"""

from __future__ import annotations

from typing import Any

# Severstal, paper Table 4: N_all -> (epochs, beta).
SEVERSTAL_SCHEDULE = {300: (90, 0.01), 750: (80, 0.01), 1500: (60, 0.015), 3000: (40, 0.02)}
SEVERSTAL = {"learning_rate": 0.1, "delta": 0.1, "batch_size": 10, "dilate_masks": 0,
             "dt_power": 2.0, "dt_max_weight": 1.0, "tie_break": "first",
             "gradient_adjustment": True}
# Božič's per-dataset scripts: (FS/MS settings, WS settings).
PUBLISHED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ksdd": ({"epochs": 50, "batch_size": 1, "learning_rate": 1.0, "delta": 0.01,
              "dilate_masks": 7, "dt_power": 2.0, "dt_max_weight": 1.0},
             {"learning_rate": 0.01, "delta": 1.0}),
    "dagm": ({"epochs": 70, "batch_size": 1, "learning_rate": 0.05, "delta": 1.0,
              "dilate_masks": 7, "dt_power": 1.0, "dt_max_weight": 10.0}, {}),
    "ksdd2": ({"epochs": 50, "batch_size": 1, "learning_rate": 0.01, "delta": 1.0,
               "dilate_masks": 15, "dt_power": 2.0, "dt_max_weight": 3.0}, {}),
    # One's own images: Božič's KSDD recipe, measured to learn small real sets read through the
    # folder format (figures/own_images/README.md), in half its epochs and without its
    # resolution-specific mask dilation. Severstal's batch 10 at lr 0.1 takes 100x smaller
    # steps per image and does not learn a thousand images in a few epochs. A small validation
    # split often gives AP 1.0 at several validations: the one with the lowest loss is kept.
    # Gradient adjustment is off: the image labels then train the map too, which lifted every
    # real set measured (FS, MS and WS; figures/own_images/README.md and figures/ksdd/diagnosis).
    "folder": ({"epochs": 25, "batch_size": 1, "learning_rate": 1.0, "delta": 0.01,
                "dilate_masks": 0, "dt_power": 2.0, "dt_max_weight": 1.0, "tie_break": "loss",
                "gradient_adjustment": False},
               {"learning_rate": 0.01, "delta": 1.0}),
}
RECIPE_FIELDS = ("epochs", "learning_rate", "batch_size", "delta", "beta", "dilate_masks",
                 "dt_power", "dt_max_weight", "tie_break", "gradient_adjustment")
FINAL_THETA = 0.4  # where Table 4's decay schedules end, (1 - beta)^(epochs - 1)


def decay_beta(epochs: int, final_theta: float = FINAL_THETA) -> float:
    """The beta with which theta = (1 - beta)^n falls to ``final_theta`` in the last epoch."""
    return round(1.0 - final_theta ** (1.0 / max(epochs - 1, 1)), 4)


def beta_for_epochs(epochs: int, recipe_epochs: int, recipe_beta: float) -> float:
    """The beta that ends theta where the recipe's (epochs, beta) pair ends it, over
    ``epochs``: with fewer epochs and the recipe's beta the balance would barely decay, and
    the decayed balance (W) would silently be a different schedule."""
    if epochs == recipe_epochs:
        return recipe_beta
    return decay_beta(epochs, (1.0 - recipe_beta) ** (recipe_epochs - 1))


def severstal_recipe(n_all: int | None) -> dict[str, Any]:
    """Table 4's row with the nearest N_all (all positives count as the largest)."""
    nearest = min(SEVERSTAL_SCHEDULE, key=lambda n: abs(n - (n_all or max(SEVERSTAL_SCHEDULE))))
    epochs, beta = SEVERSTAL_SCHEDULE[nearest]
    return {**SEVERSTAL, "epochs": epochs, "beta": beta}


def recipe(dataset: str, supervision: str, n_all: int | None) -> dict[str, Any]:
    """Every recipe field for a dataset and supervision mode (WS, MS or FS)."""
    if dataset not in PUBLISHED:
        return severstal_recipe(n_all)
    supervised, weak = PUBLISHED[dataset]
    values = {**SEVERSTAL, **supervised, **(weak if supervision == "WS" else {})}
    return {**values, "beta": decay_beta(values["epochs"])}
