"""segdec.export: ONNX export; onnxruntime must give PyTorch's outputs at any batch size, grey
or colour."""

import numpy as np
import pytest
import torch
from PIL import Image

from segdec.checkpoint import load_checkpoint, model_from_checkpoint
from segdec.cli import main
from segdec.data.synthetic import synthesize
from segdec.demo import demo_config
from segdec.predict import ImageFiles, Scorer, predict_images
from segdec.train import train

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_onnx_matches_pytorch_for_batches_of_1_and_3(tiny_run, tmp_path):
    checkpoint = tiny_run / "checkpoints" / "best.pt"
    path = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(path)]) == 0
    state = load_checkpoint(checkpoint)
    metadata = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert metadata["input_size"] == "128x64" and metadata["in_channels"] == "1"
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


@pytest.mark.slow
def test_colour_images_train_predict_and_export(tmp_path):
    """in_channels=3 end to end: a one-epoch run on colour images whose channels differ, predict
    on them, and the ONNX export, which on predict's reading of the images reproduces the run's
    evaluated segmentation maps. After one epoch the decision is still 0.5 +- 1e-6: the maps,
    kept off 0 by a small learning rate, are what shows a difference of input."""
    root = synthesize(tmp_path / "data", 12, 12, seed=1, shape=(64, 64))
    for path in (root / "train_images").iterdir():
        grey = np.asarray(Image.open(path).convert("L"))
        Image.fromarray(np.stack([grey, 255 - grey, grey // 2], axis=-1)).save(path, quality=95)
    config = demo_config(tmp_path, data_root=str(root), in_channels=3, epochs=1,
                         learning_rate=1e-4, n_test=8, n_val=4, n_saved_maps=8,
                         out_dir=str(tmp_path / "run"))
    train(config, progress=False)
    checkpoint = tmp_path / "run" / "checkpoints" / "best.pt"
    state = load_checkpoint(checkpoint)
    assert state["model_config"]["in_channels"] == 3 and state["input_size"] == [64, 64]

    scores, skipped = predict_images(checkpoint, root / "train_images", tmp_path / "predict",
                                     device="cpu", progress=False)
    assert skipped.empty and len(scores) == 24
    path = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(path)]) == 0
    assert {p.key: p.value for p in onnx.load(path).metadata_props}["in_channels"] == "3"
    saved = np.load(tmp_path / "run" / "segmentation_maps.npz")
    assert len(saved["names"]) == 8
    files = ImageFiles([root / "train_images" / name for name in saved["names"]], (64, 64), 3)
    images = torch.stack([files[i].pixels for i in range(len(files))])
    assert not torch.equal(images[:, 0], images[:, 1])  # colour, not grey in three channels
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_scores, onnx_maps = session.run(None, {"image": images.numpy()})
    np.testing.assert_allclose(onnx_maps[:, 0], saved["seg_maps"], atol=1e-4)
    by_name = scores.set_index(scores.image.str.rsplit("/", n=1).str[1]).score
    np.testing.assert_allclose(onnx_scores, by_name[saved["names"]], atol=1e-4)


def test_an_onnx_path_that_is_a_folder_is_refused_at_once(tiny_run, tmp_path, capsys,
                                                           monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("the export started before the path was checked")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    assert main(["export", "--checkpoint", str(tiny_run / "checkpoints" / "best.pt"),
                 "--onnx", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"segdec export: error: {tmp_path} is a folder; give the "
                                       f"ONNX file's name, such as {tmp_path / 'model.onnx'}\n")


def test_the_onnx_metadata_records_the_runs_bit_depth(tiny_run):
    """The metadata stated the per-image rule, by which ONNX users would brighten a 12-bit run's
    dark images 4x; it now gives the run's one depth and how to scale by it."""
    from segdec.data.images import HIGH_DEPTH_RULE
    from segdec.export import onnx_metadata

    state = load_checkpoint(tiny_run / "checkpoints" / "best.pt")
    metadata = onnx_metadata({**state, "bit_depth": 12})
    assert metadata["bit_depth"] == "12"
    assert metadata["bit_depth_scaling"] == ("grey images deeper than 8 bits: round(value * 255 / "
                                             "4095), every image alike, before the "
                                             "preprocessing's / 255")
    older = onnx_metadata({k: v for k, v in state.items() if k != "bit_depth"})
    assert older["bit_depth"] == HIGH_DEPTH_RULE and older["bit_depth_scaling"] == ""
