"""The common figure style and the one figure saver (segdec.plots), and that every figure of the
package is drawn in that style."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib import cycler
from matplotlib import pyplot as plt
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from PIL import Image

from segdec import figures
from segdec.gallery import error_gallery
from segdec.plots import LINE_COLOURS, OVERLAY, TRUE_DEFECT, save_figure, save_figures, styled
from segdec.runs import collect_runs
from segdec.teaching.balance import balance_schedules
from segdec.teaching.figures import plot_balance_schedules, plot_loss_curves
from tests.layouts import fake_run


def filled_figure() -> Figure:
    """A 2 x 1 inch figure filled by an image: no text whose size depends on the fonts."""
    figure = Figure(figsize=(2, 1))
    axis = figure.add_axes((0, 0, 1, 1))
    axis.imshow(np.zeros((1, 2)))
    axis.set_axis_off()
    return figure


def test_save_figure_writes_a_png_at_120_dpi_and_a_pdf_that_re_renders_to_the_same_bytes(
        tmp_path):
    figure = filled_figure()
    png, pdf = save_figure(figure, tmp_path / "out", "a")
    assert (png, pdf) == (tmp_path / "out" / "a.png", tmp_path / "out" / "a.pdf")
    with Image.open(png) as saved:
        assert saved.format == "PNG" and saved.info["dpi"] == pytest.approx((120, 120), abs=0.02)
        assert saved.size == (264, 144)  # (2 x 1 inches + 0.1 inch padding around) x 120 dpi
    first = pdf.read_bytes()
    save_figure(figure, tmp_path / "out", "a")
    assert pdf.read_bytes() == first  # no creation date
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.pdf", "a.png"]
    assert save_figure(figure, tmp_path / "png", "b", formats=("png",)) == [
        tmp_path / "png" / "b.png"]


def test_save_figures_saves_each_under_its_name_or_nothing_without_a_folder(tmp_path):
    figures = {"a": filled_figure(), "b": filled_figure()}
    assert save_figures(figures, None) == []
    assert save_figures(figures, tmp_path, formats=("png",)) == [tmp_path / "a.png",
                                                                 tmp_path / "b.png"]


def test_a_figure_that_fails_to_save_leaves_the_saved_one_whole(tmp_path):
    """The teaching notebook's figures were written in place: a save that failed half-way left
    half a PNG where the last good one was."""
    (saved,) = save_figures({"a": filled_figure()}, tmp_path, formats=("png",))
    before = saved.read_bytes()
    failing = filled_figure()

    def write_half_then_fail(target, **_options):
        with open(target, "wb") as handle:
            handle.write(before[:100])
        raise OSError("disk full")

    failing.savefig = write_half_then_fail
    with pytest.raises(OSError, match="disk full"):
        save_figures({"a": failing}, tmp_path, formats=("png",))
    assert saved.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def line_colours(axis) -> list[str]:
    return [to_hex(line.get_color()) for line in axis.get_lines()]


def test_every_figure_is_drawn_in_the_common_style_whatever_the_callers_settings(tmp_path):
    """Under a caller's own colour cycle (a notebook's, say) the figures still take the common
    colours, and the caller's settings are left as they were."""
    theirs = cycler(color=["#000000"])
    with matplotlib.rc_context({"axes.prop_cycle": theirs}):
        balance = plot_balance_schedules(balance_schedules(10, 0.036))
        # after Table 4's two grey curves: decay, linear and constant in the first colours
        assert line_colours(balance.axes[0])[2:] == list(LINE_COLOURS[:3])
        history = pd.DataFrame({"epoch": [0, 1], "loss_seg": [1.0, 0.5], "loss_dec": [0.7, 0.2],
                                "w_seg": [1.0, 0.9]})
        curves = plot_loss_curves({"decay": history, "linear": history})
        # each run's curve, then its dotted line at the epoch its decision learns
        assert line_colours(curves.axes[0]) == [LINE_COLOURS[0]] * 2 + [LINE_COLOURS[1]] * 2
        for root, seed, ap in (("s0", 0, 0.99), ("s1", 1, 0.97)):
            fake_run(tmp_path / root, "fs", 8, 8, ap, seed=seed)
            fake_run(tmp_path / root, "fs-baseline", 8, 8, 0.9, attention=False, atrous=False,
                     balance="linear", seed=seed)
        bars = figures.figure8(collect_runs(tmp_path), compare_with_paper=False)
        mask = np.zeros((16, 32))
        mask[4:12, 8:24] = 1
        entry = {"image": np.zeros((16, 32)), "mask": mask, "name": "x",
                 "seg_map": np.ones((2, 4)), "score": 0.9, "kind": "false positive"}
        gallery = error_gallery([entry], 0.5)
        assert matplotlib.rcParams["axes.prop_cycle"] == theirs
    axis = bars.axes[0]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["8-8"]
    assert [t.get_text() for t in axis.get_legend().get_texts()] == [
        "this project: A+T+W", "this project: Božič's network (none)"]
    # one bar per source, the mean over the two seeds, side by side in the first two colours
    assert [(round(b.get_x(), 3), b.get_height(), to_hex(b.get_facecolor())) for b in
            axis.patches] == [(-0.4, pytest.approx(0.98), LINE_COLOURS[0]),
                              (0.0, pytest.approx(0.9), LINE_COLOURS[1])]
    overlay, truth = gallery.axes[0].get_images()[1], gallery.axes[0].collections[0]
    assert overlay.get_cmap().name == OVERLAY
    assert to_hex(truth.get_edgecolor()[0]) == to_hex(TRUE_DEFECT)
    for figure in (balance, curves, bars):
        plt.close(figure)


def test_the_style_leaves_settings_that_drawing_changed_as_drawing_left_them():
    """A kernel's first pyplot figure loads the inline backend, which turns interactive mode on;
    restoring every setting after the first styled figure turned it off again, and the notebook
    showed none of its later figures."""

    @styled
    def draw_the_first_figure():
        matplotlib.interactive(True)  # what loading the inline backend does
        return matplotlib.rcParams["font.size"]

    before = matplotlib.is_interactive()
    matplotlib.interactive(False)
    try:
        with matplotlib.rc_context({"font.size": 7}):
            assert draw_the_first_figure() == 10  # the style's, while drawing
            assert matplotlib.rcParams["font.size"] == 7  # the caller's again
            assert matplotlib.is_interactive()
    finally:
        matplotlib.interactive(before)


def test_a_saved_figure_is_shown_once_scaled_to_the_page(tmp_path, monkeypatch):
    import IPython.display

    from segdec import plots

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    figure = plt.figure(figsize=(4, 20), dpi=100)
    paths = plots.save_figure(figure, tmp_path, "tall")
    plots.show_saved(figure, paths, longest_side=500)
    assert not plt.fignum_exists(figure.number)  # closed: the inline backend cannot draw it again
    (image,) = shown
    with Image.open(paths[0]) as written, Image.open(io.BytesIO(image.data)) as page:
        assert written.size[1] > 500 and page.size[1] == 500
