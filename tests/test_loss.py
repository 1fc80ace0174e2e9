"""segdec.loss: the loss weight schedules (Table 4), gamma, delta and pixel weights."""

import pytest
import torch

from segdec.loss import SegDecLoss, loss_weights


def test_decay_schedule_matches_table_4():
    w_seg, w_dec = loss_weights("decay", 90, 90, beta=0.01)
    assert w_seg == pytest.approx(0.99**90) == pytest.approx(0.405, abs=1e-3)
    assert w_dec == pytest.approx(1 - w_seg)
    ends = [loss_weights("decay", epochs, epochs, beta)[0]
            for beta, epochs in [(0.01, 90), (0.01, 80), (0.015, 60), (0.02, 40)]]
    assert ends == pytest.approx([0.4047, 0.4475, 0.4038, 0.4457], abs=1e-4)


def test_linear_and_constant_schedules():
    assert loss_weights("linear", 0, 50) == (1.0, 0.0)
    assert loss_weights("linear", 25, 50) == (0.5, 0.5)
    assert loss_weights("constant", 7, 50) == (1.0, 1.0)
    with pytest.raises(ValueError):
        loss_weights("cosine", 0, 10)


def _batch():
    torch.manual_seed(0)
    return dict(
        decision_logit=torch.randn(3),
        seg_logit=torch.randn(3, 1, 4, 4),
        label=torch.tensor([1.0, 1.0, 0.0]),
        seg_target=torch.rand(3, 1, 4, 4),
        seg_weight=torch.ones(3, 1, 4, 4),
    )


@pytest.mark.parametrize("kind", ["mse", "bce"])
def test_gamma_drops_segmentation_loss_of_weak_positives(kind):
    criterion = SegDecLoss(kind, delta=0.1)
    batch = _batch()
    weak = criterion(**batch, has_pixel_label=torch.tensor([False, True, True]), w_seg=1, w_dec=0)
    full = criterion(**batch, has_pixel_label=torch.tensor([True, True, True]), w_seg=1, w_dec=0)
    per_image = criterion.segmentation_per_image(batch["seg_logit"], batch["seg_target"],
                                                 batch["seg_weight"])
    assert full.total.item() == pytest.approx(per_image.sum().item(), rel=1e-6)
    assert weak.total.item() == pytest.approx(per_image[1:].sum().item(), rel=1e-6)


def test_decision_term_is_scaled_by_delta_and_weight():
    criterion = SegDecLoss("bce", delta=0.1)
    batch = _batch()
    only_dec = criterion(**batch, has_pixel_label=torch.tensor([True] * 3), w_seg=0, w_dec=0.5)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        batch["decision_logit"], batch["label"], reduction="sum")
    assert only_dec.total.item() == pytest.approx(0.05 * bce.item(), rel=1e-6)


def test_pixel_weights_scale_the_segmentation_loss():
    criterion = SegDecLoss("mse")
    batch = _batch()
    base = criterion.segmentation_per_image(batch["seg_logit"], batch["seg_target"],
                                            batch["seg_weight"])
    doubled = criterion.segmentation_per_image(batch["seg_logit"], batch["seg_target"],
                                               2 * batch["seg_weight"])
    torch.testing.assert_close(doubled, 2 * base)
