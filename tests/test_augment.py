"""segdec.augment: flips drawn from the seed and the epoch, the image and its targets together."""

from __future__ import annotations

import pytest
import torch

from segdec.augment import flips_for_epoch


def _batch(n=6):
    image = torch.arange(n * 2 * 3, dtype=torch.float32).reshape(n, 1, 2, 3)
    return {"image": image, "seg_target": image.clone(), "seg_weight": image.clone(),
            "label": torch.ones(n)}


def test_flips_follow_the_seed_and_epoch_and_move_image_and_targets_together():
    assert flips_for_epoch("none", 0, 0) is None
    batch = _batch()
    flipped = flips_for_epoch("horizontal", 0, 3)(batch)
    again = flips_for_epoch("horizontal", 0, 3)(batch)  # a resumed run draws the same flips
    assert torch.equal(flipped["image"], again["image"])
    sideways = [bool(torch.equal(flipped["image"][i], batch["image"][i].flip(-1)))
                for i in range(6)]
    assert sideways == [False, False, True, True, True, False]
    for key in ("seg_target", "seg_weight"):
        assert torch.equal(flipped[key], flipped["image"])
    assert torch.equal(batch["image"], _batch()["image"])  # the loader's batch is left as it was
    other = flips_for_epoch("horizontal", 0, 4)(batch)
    assert not torch.equal(other["image"], flipped["image"])
    both = flips_for_epoch("both", 0, 3)(batch)["image"]
    assert any(torch.equal(both[i], batch["image"][i].flip(-2)) for i in range(6))
    with pytest.raises(ValueError, match="flips='diagonal' is not one of none, horizontal, both"):
        flips_for_epoch("diagonal", 0, 0)
