"""segdec.memory: the activation estimate matches a training step and refuses runs too large
before anything is written."""

import pytest
import torch

from segdec.config import RunConfig
from segdec.errors import ConfigError
from segdec.train import train
from tests.helpers import one_epoch


def test_a_run_too_large_for_memory_is_refused_before_it_writes(tiny_severstal, tmp_path):
    run = tmp_path / "run"
    config = one_epoch(tiny_severstal, run, input_height=16384, input_width=16384,
                       precision="fp32")
    # 16384 * 16384 pixels * 10 images * 1613 bytes
    with pytest.raises(ConfigError, match="16384x16384 with batch_size=10 needs at least 4032.5 "
                                          "GiB for activations, more than the"):
        train(config, progress=False)
    assert not run.exists()


def test_the_memory_estimate_is_what_a_training_step_keeps(tiny_severstal):
    """The bytes-per-pixel constant against a fresh count on the network as it is today."""
    from segdec.memory import training_bytes
    from segdec.model import ModelConfig, SegDecNet

    config = RunConfig(input_height=128, input_width=192, batch_size=2)
    kept = {}

    def count(tensor):
        kept[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    model = SegDecNet(ModelConfig())
    with torch.autograd.graph.saved_tensors_hooks(count, lambda tensor: tensor):
        decision, seg = model(torch.rand(2, 1, 128, 192))
    (decision.sum() + seg.sum()).backward()
    assert training_bytes(config, False) == pytest.approx(sum(kept.values()), rel=0.1)
