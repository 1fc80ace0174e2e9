"""segdec.model: the network's contract, checked once for every variant (attention x atrous)."""

import pytest
import torch
from torch import nn

from segdec.model import (
    AtrousConv2d,
    FeatureNorm,
    ModelConfig,
    ReleasedNorm,
    SegDecNet,
    SqueezeExcite,
    atrous_weight_gradient,
    build_model,
    count_parameters,
    probabilities,
    space_to_batch,
    use_space_to_batch,
)
from segdec.teaching.receptive_field import field_extent, input_gradient

VARIANTS = [(False, False), (True, False), (False, True), (True, True)]  # (attention, atrous)


@pytest.fixture(params=VARIANTS, ids=lambda v: f"attention={v[0]},atrous={v[1]}")
def variant(request):
    return request.param


def test_forward_contract(variant):
    torch.manual_seed(0)
    model = build_model(attention=variant[0], atrous=variant[1])
    decision, seg = model(torch.rand(2, 1, 64, 96))
    assert decision.shape == (2,)
    assert seg.shape == (2, 1, 8, 12)
    assert torch.isfinite(decision).all() and torch.isfinite(seg).all()


def test_smallest_input_single_image(variant):
    """At 64x64 the decision subnetwork ends on a 1x1 map; one image alone must still pass."""
    model = build_model(attention=variant[0], atrous=variant[1])
    for mode in (model.train, model.eval):
        mode()
        decision, seg = model(torch.rand(1, 1, 64, 64))
        assert decision.shape == (1,) and seg.shape == (1, 1, 8, 8)


def test_colour_input_and_size_check(variant):
    model = build_model(attention=variant[0], atrous=variant[1], in_channels=3)
    assert model(torch.rand(1, 3, 64, 72))[1].shape == (1, 1, 8, 9)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 3, 70, 72))
    with pytest.raises(ValueError, match="at least 64"):
        model(torch.rand(1, 3, 32, 72))


def test_single_image_independent_of_batch(variant):
    """Per-sample normalisation: an image's outputs do not depend on its batch-mates."""
    torch.manual_seed(0)
    model = build_model(attention=variant[0], atrous=variant[1]).eval()
    batch = torch.rand(3, 1, 64, 80)
    together = model(batch)[0]
    alone = torch.stack([model(batch[i : i + 1])[0][0] for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-3, atol=1e-4)


def test_gradient_adjustment_keeps_decision_loss_out_of_segmentation():
    model = build_model()
    decision, _ = model(torch.rand(2, 1, 64, 64))
    decision.sum().backward()
    assert all(p.grad is None for p in model.segmentation.parameters())
    assert model.classifier.weight.grad is not None
    model = build_model(gradient_adjustment=False)
    model(torch.rand(2, 1, 64, 64))[0].sum().backward()
    assert model.segmentation[0][0].weight.grad.abs().sum() > 0


def test_decision_reads_segmentation_probabilities_unless_released():
    """The described network's pooled segmentation values are the map's sigmoid (the released
    one's are its normalised logits); the same weights give the same segmentation either way."""
    assert build_model("bozic-released").config.seg_to_decision == "logit"
    torch.manual_seed(0)
    logit = build_model(seg_to_decision="logit").eval()
    probability = build_model().eval()  # the described network's default
    probability.load_state_dict(logit.state_dict())
    images = torch.rand(2, 1, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features, seg = logit.forward_features(images)
        read = probability.decision_inputs(features, seg)
        torch.testing.assert_close(read[:, 64], torch.sigmoid(seg).amax(dim=(1, 2, 3)))
        torch.testing.assert_close(read[:, 65], torch.sigmoid(seg).mean(dim=(1, 2, 3)))
        torch.testing.assert_close(logit.decision_inputs(features, seg)[:, 65],
                                   seg.mean(dim=(1, 2, 3)))
        torch.testing.assert_close(probability(images)[1], seg)
    with pytest.raises(ValueError, match="seg_to_decision"):
        build_model(seg_to_decision="sigmoid")


# (attention, atrous, architecture) -> parameters, decision logits of two images, mean of the
# first map and three of its values: seed 0, the input below. A change of any kernel, channel
# count, initialisation or layer order fails here (the segmentation_models_pytorch habit).
GOLDEN = {
    (False, False, "described"): (15_662_875, [0.04397, -0.00989], -0.74973,
                                  [-1.26785, -1.39115, -1.68459]),
    (True, False, "described"): (15_666_935, [1.85502, 1.85976], 0.27388,
                                 [0.02571, -0.24997, 0.02773]),
    (False, True, "described"): (922_779, [-0.55095, -0.46104], 0.31896,
                                 [0.28549, -0.21948, 0.35239]),
    (True, True, "described"): (926_839, [0.49797, 0.52842], -0.41741,
                                [0.36646, -0.47764, 0.52504]),
    (False, False, "released"): (15_637_212, [0.66905, 0.6437], 0.0,
                                 [0.04136, 0.82752, 0.39717]),
}


@pytest.mark.parametrize("key", GOLDEN, ids=lambda k: "-".join(map(str, k)))
def test_golden_outputs_and_exact_parameter_counts(key):
    attention, atrous, architecture = key
    parameters, decisions, seg_mean, seg_values = GOLDEN[key]
    torch.manual_seed(0)
    network = "bozic-released" if architecture == "released" else "bozic"
    model = build_model(network, attention=attention, atrous=atrous).eval()
    assert count_parameters(model) == parameters
    images = torch.rand(2, 1, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        decision, seg = model(images)
    # oneDNN picks other kernels on AVX-512 than on AVX2 (both seen on this project's 2-core
    # machines): sums in another order move these values by up to 8e-5, far less than any change
    # of architecture or initialisation does.
    close = {"rtol": 1e-3, "atol": 2e-4}
    torch.testing.assert_close(decision, torch.tensor(decisions), **close)
    torch.testing.assert_close(seg.mean(), torch.tensor(seg_mean), **close)
    torch.testing.assert_close(seg[0, 0, 3, :3], torch.tensor(seg_values), **close)


def test_attention_places_se_after_the_seven_64_channel_convs():
    def se_channels(model):
        return [m.fc2.out_channels for m in model.modules() if isinstance(m, SqueezeExcite)]

    assert se_channels(build_model(attention=True)) == [64] * 7
    assert se_channels(build_model(attention=True, attention_on_large_conv=True)) == [64] * 7 + [
        1024
    ]
    assert se_channels(build_model(attention=False)) == []


def test_atrous_kernels_keep_the_receptive_field():
    """Measured: the input gradient of the centre unit of the 1/8 map is non-zero on exactly the
    216 x 216 pixels that ``layer_table`` computes, for the dense and the atrous network."""
    image = torch.rand(1, 1, 384, 384)
    for atrous in (False, True):
        torch.manual_seed(0)
        model = build_model(attention=False, atrous=atrous)
        assert field_extent(input_gradient(model, image)) == (88, 303, 88, 303)


def test_batch_norm_option():
    model = build_model(norm="batch")
    assert any(isinstance(m.norm, nn.BatchNorm2d) for m in model.modules()
               if isinstance(m, FeatureNorm))
    with pytest.raises(ValueError, match="normalisation"):
        build_model(norm="layer")


@pytest.mark.parametrize("shape", [(2, 5, 24, 40), (1, 3, 17, 30), (1, 1, 9, 9)])
def test_atrous_convolution_equals_the_plain_dilated_one(shape):
    """Forward, input and weight gradients of the space-to-batch path, on even and odd sizes."""
    torch.manual_seed(0)
    fast = AtrousConv2d(shape[1], 7, 3, padding=2, dilation=2, bias=False).double()
    fast.space_to_batch_gradient = True  # on whichever CPU (auto takes it only with AVX2)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(shape[0], 7, *shape[2:], dtype=torch.float64)
    out = fast(x)
    out.backward(grad)
    x_ref = x.detach().clone().requires_grad_()
    weight_ref = fast.weight.detach().clone().requires_grad_()
    ref = torch.nn.functional.conv2d(x_ref, weight_ref, padding=2, dilation=2)
    ref.backward(grad)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast.weight.grad, weight_ref.grad, rtol=0, atol=1e-12)


def test_atrous_convolution_trains_under_bf16_autocast():
    """bf16 on a CPU (the "auto" precision where AMX is present) takes oneDNN's own path, with
    the plain dilated convolution's weight gradient; the space-to-batch path would fail."""
    torch.manual_seed(0)
    fast = AtrousConv2d(4, 6, 3, padding=2, dilation=2, bias=False)
    fast.space_to_batch_gradient = True
    plain = torch.nn.Conv2d(4, 6, 3, padding=2, dilation=2, bias=False)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(1, 4, 16, 24)
    for conv in (fast, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = conv(x)
        assert out.dtype == torch.bfloat16
        out.float().square().sum().backward()
    assert torch.equal(fast.weight.grad, plain.weight.grad)


def test_runs_record_which_atrous_weight_gradient_they_trained_with():
    model = use_space_to_batch(build_model(), True)
    assert atrous_weight_gradient(model, "cpu", autocast=False) == "space_to_batch"
    assert atrous_weight_gradient(model, "cpu", autocast=True) == "dilated"
    assert atrous_weight_gradient(model, "cuda", autocast=False) == "dilated"
    assert atrous_weight_gradient(use_space_to_batch(model, False), "cpu", False) == "dilated"
    assert atrous_weight_gradient(build_model(atrous=False), "cpu", False) == "none"


def test_space_to_batch_interleaves_and_zero_pads():
    x = torch.arange(15.0).view(1, 1, 3, 5)
    parts = space_to_batch(x, 2)
    assert parts.shape == (4, 1, 2, 3)
    assert parts[0, 0].tolist() == [[0, 2, 4], [10, 12, 14]]  # even rows, even columns
    assert parts[1, 0].tolist() == [[1, 3, 0], [11, 13, 0]]  # even rows, odd columns, padded
    assert parts[3, 0].tolist() == [[6, 8, 0], [0, 0, 0]]  # odd rows, odd columns


def test_network_gradients_equal_with_and_without_the_fast_path():
    """The whole paper network: the same gradients as with plain nn.Conv2d (in float64, so that
    only a real difference, not float32 summation order, can fail it)."""

    def gradients(fast: bool):
        torch.manual_seed(0)
        model = use_space_to_batch(build_model().double(), fast)
        images = torch.rand(2, 1, 64, 80, generator=torch.Generator().manual_seed(1))
        decision, seg = model(images.double())
        (decision.sum() + seg.sum()).backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    fast, plain = gradients(True), gradients(False)
    assert len(fast) == len(plain)
    for a, b in zip(fast, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_probabilities_are_the_fp32_sigmoid_of_the_logits_under_autocast_too():
    """The one logits-to-scores step of evaluation, predict, export and the notebooks."""
    torch.manual_seed(0)
    model, images = build_model().eval(), torch.rand(2, 1, 64, 96)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        decision, seg = model(images)
        score, seg_probability = probabilities(model, images)
    assert decision.dtype == torch.bfloat16 and score.dtype == torch.float32
    torch.testing.assert_close(score, torch.sigmoid(decision.float()), rtol=0, atol=0)
    torch.testing.assert_close(seg_probability, torch.sigmoid(seg.float()), rtol=0, atol=0)
    assert seg_probability.shape == (2, 1, 8, 12)


# Each name's network: its parameter count (as in GOLDEN) and the switches it is built with.
NAMED = {
    "paper": (926_839, (True, True, "described", "probability")),
    "bozic": (15_662_875, (False, False, "described", "probability")),
    "bozic-released": (15_637_212, (False, False, "released", "logit")),
}


@pytest.mark.parametrize("name", NAMED)
def test_build_model_builds_each_named_network(name):
    parameters, switches = NAMED[name]
    config = build_model(name).config
    assert count_parameters(build_model(name)) == parameters
    assert (config.attention, config.atrous, config.architecture,
            config.seg_to_decision) == switches


def test_build_model_switches_are_keywords_that_override_the_named_network():
    config = build_model("bozic", atrous=True, in_channels=3).config
    assert (config.attention, config.atrous, config.in_channels) == (False, True, 3)
    assert count_parameters(build_model("paper", attention=False)) == 922_779
    with pytest.raises(TypeError):
        build_model("paper", False)  # a positional switch
    with pytest.raises(TypeError, match="architecture"):
        build_model("bozic", architecture="released")  # the name fixes the architecture


@pytest.mark.parametrize("name", ["Bozic", "original", True, False])
def test_build_model_refuses_an_unknown_name_and_lists_the_names(name):
    """A truthy string once built the paper's network whatever it said."""
    with pytest.raises(ValueError, match=f"unknown network {name!r}; use one of paper, bozic, "
                                         "bozic-released"):
        build_model(name)


def test_released_architecture_differs_from_the_described_one_as_paper_md_says():
    described = build_model("bozic")
    released = build_model("bozic-released")
    # One 32-channel 5x5 conv (and its norm) fewer; one scale for the normalised segmentation map.
    assert count_parameters(described) - count_parameters(released) == 32 * 32 * 25 + 64 - 1
    assert isinstance(released.seg_norm, ReleasedNorm) and released.seg_norm.bias is None
    x = torch.randn(2, 3, 4, 5) * 4 + 2
    norm = ReleasedNorm(3)
    expected = (x - x.mean((2, 3), keepdim=True)) / (x.std((2, 3), keepdim=True) + 1e-3).sqrt()
    torch.testing.assert_close(norm(x), expected)
    decision, seg = released(torch.rand(2, 1, 64, 64))
    assert decision.shape == (2,) and seg.shape == (2, 1, 8, 8)
    # The map the loss sees is normalised per image: mean 0, and std^2 / (std + 1e-3) as variance.
    assert seg.mean((2, 3)).abs().max() < 1e-5
    with pytest.raises(ValueError, match="architecture"):
        SegDecNet(ModelConfig(architecture="as-drawn"))


def test_a_collapsed_map_scale_of_the_released_network_is_named():
    """Božič's released network scales its normalised map by a learnt factor; near 0 the map is
    flat and the run cannot learn (two KolektorSDD seeds did that): the warning says so, and a
    healthy or negative scale, or another network, gives none."""
    from segdec.model import flat_map_warning

    released = build_model("bozic-released")
    assert flat_map_warning(released) is None  # starts at 1
    with torch.no_grad():
        released.seg_norm.weight.fill_(-0.2)  # flipped, as trained runs leave it: fine
    assert flat_map_warning(released) is None
    with torch.no_grad():
        released.seg_norm.weight.fill_(0.0097)
    assert flat_map_warning(released).startswith(
        "the learnt scale of the segmentation map's normalisation collapsed to 0.0097")
    assert flat_map_warning(build_model("paper")) is None
