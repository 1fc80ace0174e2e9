"""Image- and pixel-level metrics, pinned on cases worked out by hand."""

import numpy as np
import pytest

from segdec.evaluate import image_metrics, pixel_metrics


def test_image_metrics_by_hand():
    # Scores in order: 0.9 (defect), 0.8 (clean), 0.3 (defect), 0.1 (clean).
    metrics = image_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.3, 0.1]))
    assert metrics["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert metrics["auc"] == pytest.approx(0.75)
    assert metrics["f_measure"] == pytest.approx(0.8) and metrics["threshold"] == 0.3
    assert (metrics["fp"], metrics["fn"]) == (1, 0)


def two_defect_mask() -> np.ndarray:
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[2, 3] = mask[12, 5] = 1  # one pixel in cell (0, 0), one in cell (1, 0) of the 8x8 grid
    return mask


def test_pixel_metrics_at_one_eighth_by_hand():
    """Cells 0.9 (defect), 0.8, 0.3 (defect), 0.1: the image example above, on cells."""
    prob = np.array([[0.9, 0.8], [0.3, 0.1]], dtype=np.float32)
    metrics = pixel_metrics([prob], [two_defect_mask()])
    assert metrics["pixel_ap_1_8"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert metrics["pixel_f_1_8"] == pytest.approx(0.8)
    assert metrics["pixel_iou_1_8"] == pytest.approx(2 / 3)  # 3 cells called, 2 of them right


def test_pixel_metrics_of_an_uninformative_map_are_the_prevalence():
    metrics = pixel_metrics([np.full((2, 2), 0.5, np.float32)], [two_defect_mask()])
    assert metrics["pixel_ap"] == pytest.approx(2 / 256)
    assert metrics["pixel_ap_1_8"] == pytest.approx(2 / 4)
    assert metrics["pixel_iou"] == pytest.approx(2 / 256)


def test_pixel_metrics_pool_images_and_need_defects():
    prob = np.array([[0.9, 0.1], [0.9, 0.1]], dtype=np.float32)
    pooled = pixel_metrics([prob, prob], [two_defect_mask(), two_defect_mask()])
    assert pooled["pixel_ap_1_8"] == 1.0 and pooled["pixel_iou_1_8"] == 1.0
    assert pixel_metrics([], []) == {}
    assert pixel_metrics([prob], [np.zeros((16, 16), np.uint8)]) == {}
