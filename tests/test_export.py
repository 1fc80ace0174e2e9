"""ONNX export: onnxruntime must give PyTorch's outputs at any batch size."""

import numpy as np
import pytest
import torch

from segdec.checkpoint import load_checkpoint, model_from_checkpoint
from segdec.cli import main
from segdec.predict import Scorer

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_onnx_matches_pytorch_for_batches_of_1_and_3(tiny_run, tmp_path):
    checkpoint = tiny_run / "checkpoints" / "best.pt"
    path = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(path)]) == 0
    state = load_checkpoint(checkpoint)
    metadata = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert metadata["input_size"] == "64x128" and metadata["in_channels"] == "1"
    assert float(metadata["threshold"]) == pytest.approx(state["threshold"])
    scorer = Scorer(model_from_checkpoint(state)).eval()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["score", "seg_map"]
    generator = torch.Generator().manual_seed(0)
    for batch in (1, 3):
        images = torch.rand(batch, 1, 64, 128, generator=generator)
        with torch.inference_mode():
            expected = [t.numpy() for t in scorer(images)]
        outputs = session.run(None, {"image": images.numpy()})
        assert [o.shape for o in outputs] == [(batch,), (batch, 1, 8, 16)]
        for got, want in zip(outputs, expected, strict=True):
            assert np.abs(got - want).max() <= 1e-4


def test_an_onnx_path_that_is_a_folder_is_refused_at_once(tiny_run, tmp_path, capsys,
                                                           monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("the export started before the path was checked")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    assert main(["export", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
                 "--onnx", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"segdec export: error: {tmp_path} is a folder; give the "
                                       f"ONNX file's name, such as {tmp_path / 'model.onnx'}\n")
