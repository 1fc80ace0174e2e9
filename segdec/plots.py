"""Every figure's look and how it is written: one style (line colours, colour maps, font, colour
bar) that every figure of the package is drawn in, and one saver that writes figures atomically."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ParamSpec, TypeVar

from matplotlib import cycler, rcParams
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from segdec.io import atomic_write

# Lines, bars and points, in order: seaborn's "colorblind" palette, which stays distinguishable
# with the common colour-vision deficiencies.
LINE_COLOURS = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4",
                "#949494", "#ece133", "#56b4e9")
# Colour maps by what an image shows.
IMAGE = "gray"  # the input images, as the network reads them
MAP = "magma"  # values from 0 up: defect probabilities, |gradients|, feature maps
OVERLAY = "autumn"  # a predicted map drawn over its image
WEIGHTS = "viridis"  # SE channel weights in [0, 1]
DIFFERENCE = "coolwarm"  # signed differences, centred on 0
TAPS = "Blues"  # on/off grids: where kernels read
TRUE_DEFECT = "cyan"  # the outline of a ground-truth mask
# Whose images a figure shows, and on which terms, said in the figure itself (docs/datasets.md).
IMAGE_CREDITS = {
    "ksdd": "Images: KolektorSDD (Tabernik et al., 2019; ViCoS, University of Ljubljana, and "
            "Kolektor), CC BY-NC-SA 4.0: attribution, non-commercial, share-alike",
    "severstal": "Images: Severstal: Steel Defect Detection (Kaggle), under the competition's "
                 "terms",
}
STYLE = {"axes.prop_cycle": cycler(color=LINE_COLOURS), "font.size": 10}
DPI = 120  # of every PNG
FORMATS = ("png", "pdf")  # a report figure; run directories and the teaching notebook keep PNGs

P = ParamSpec("P")
R = TypeVar("R")


def styled(draw: Callable[P, R]) -> Callable[P, R]:
    """``draw`` run inside ``STYLE``, so the figure it makes has the common look whatever the
    caller's matplotlib settings (a notebook kernel's included).

    Only the style's own settings are put back afterwards, not all of them as ``rc_context``
    does: the first pyplot figure of a kernel loads the inline backend, which turns interactive
    mode on, and undoing that would leave every later figure of the notebook undisplayed.
    """

    @functools.wraps(draw)
    def draw_styled(*args: P.args, **kwargs: P.kwargs) -> R:
        theirs = {key: rcParams[key] for key in STYLE}
        rcParams.update(STYLE)
        try:
            return draw(*args, **kwargs)
        finally:
            rcParams.update(theirs)

    return draw_styled


def colourbar(figure: Figure, shown: ScalarMappable, axes, label: str = "",
              shrink: float = 0.8, ticks: dict[float, str] | None = None) -> None:
    """One colour bar beside ``axes`` (an axis or an array of them) for the images that share the
    scale of ``shown``: one bar for a row of maps rather than one each. ``ticks`` (value ->
    label) names the scale where it is relative, such as each panel's own maximum."""
    bar = figure.colorbar(shown, ax=axes, shrink=shrink, label=label)
    if ticks:
        bar.set_ticks(list(ticks), labels=list(ticks.values()))


def credit_images(figure: Figure, dataset: str) -> Figure:
    """A footer naming the dataset whose images ``figure`` shows and its licence, where the
    dataset has one (``IMAGE_CREDITS``); a figure of synthetic or one's own images has none."""
    if dataset in IMAGE_CREDITS:
        figure.supxlabel(IMAGE_CREDITS[dataset], fontsize="x-small", color="dimgray")
    return figure


def save_figure(figure: Figure, out_dir: str | Path, name: str,
                formats: Iterable[str] = FORMATS) -> list[Path]:
    """``name.png`` (``DPI``) and the other ``formats`` in ``out_dir``, each written whole or not
    at all (``segdec.io.atomic_write``)."""
    paths = []
    for suffix in formats:
        # No creation date in a PDF: re-rendering the same records gives the same bytes.
        options = {"metadata": {"CreationDate": None}} if suffix == "pdf" else {"dpi": DPI}
        path = Path(out_dir) / f"{name}.{suffix}"
        atomic_write(path, lambda tmp, o=options, s=suffix: figure.savefig(
            tmp, format=s, bbox_inches="tight", **o))
        paths.append(path)
    return paths


def save_figures(figures: dict[str, Figure], out_dir: str | Path | None,
                 formats: Iterable[str] = FORMATS) -> list[Path]:
    """Every figure under its name (``save_figure``); nothing when ``out_dir`` is None."""
    if out_dir is None:
        return []
    return [path for name, figure in figures.items()
            for path in save_figure(figure, out_dir, name, formats)]


def show_saved(figure: Figure, paths: Iterable[Path], longest_side: int = 1600) -> None:
    """Show a saved figure once in a notebook: its PNG, as written, scaled down to at most
    ``longest_side`` pixels so that a tall figure does not add megabytes to the notebook each
    time it is rendered (the file keeps ``DPI``). The figure is closed first: one left open is
    drawn again by the inline backend at the end of the cell, and one made outside pyplot may
    render as its text repr only."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image as Shown
    from IPython.display import display
    from PIL import Image

    plt.close(figure)
    with Image.open(next(p for p in paths if Path(p).suffix == ".png")) as picture:
        picture.thumbnail((longest_side, longest_side), Image.Resampling.LANCZOS)
        page = io.BytesIO()
        picture.save(page, format="png", optimize=True)
    display(Shown(data=page.getvalue(), format="png"))
