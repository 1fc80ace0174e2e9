"""The segmentation-based decision network of Bi et al. (2022), docs/paper.md Table 2, in one file.

Two subnetworks trained end to end: a segmentation subnetwork (11 convs, output at 1/8 resolution)
and a decision subnetwork that reads its 1024 features and its segmentation map. The paper's two
architectural changes are switches: ``atrous`` (3x3 dilated kernels with the original receptive
field) and ``attention`` (squeeze-and-excitation after the 64-channel convs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from segdec.options import option

ARCHITECTURES = ("described", "released")  # Table 2 as described, or Božič's released network
# What the decision subnetwork reads of the segmentation map: the raw logits, or their sigmoid.
SEG_TO_DECISION = ("logit", "probability")


@dataclass
class ModelConfig:
    """The switches that fix the architecture; saved in every checkpoint to rebuild the model.
    ``RunConfig`` extends it, so these fields (and their help) are written only here."""

    in_channels: int = option(1, "model", "1 (grey) or 3 (colour)")
    attention: bool = option(True, "model", "squeeze-and-excitation after the 64-channel convs")
    atrous: bool = option(True, "model", "3x3 dilated kernels instead of 5x5 and 15x15")
    attention_on_large_conv: bool = option(False, "model", "SE after conv 10 too")
    norm: str = option("instance", "model", "feature normalisation", ("instance", "batch"))
    se_reduction: int = option(16, "model", "SE reduction ratio")
    # Božič et al. keep it on in every run; for one's own images the folder recipe turns it off:
    # the image labels then train the map too, which lifted the real sets measured
    # (figures/own_images/README.md).
    gradient_adjustment: bool | None = option(None, "model", "keep the decision loss out of the "
                                              "segmentation subnetwork (null: the recipe's)")
    # "described": Table 2 as the papers describe it; "released": Božič's published network
    # (one conv in block 1, a normalised segmentation map, sqrt(std + 1e-3) in the norm).
    architecture: str = option("described", "model", "Table 2 as described, or Božič's "
                               "released network", ARCHITECTURES)
    # The papers say "the segmentation map" without saying which. Raw BCE logits on clean surface
    # fall without bound, and the classifier, reading their global mean, then diverges (MS on
    # KSDD: figures/ksdd/diagnosis measures both); probabilities stay in [0, 1]. Božič's released
    # network bounds them its own way, by normalising the map.
    seg_to_decision: str | None = option(None, "model", "what the decision subnetwork reads of "
                                         "the segmentation map (null: the architecture's own, "
                                         "probability as described, logit as released)",
                                         SEG_TO_DECISION)

    def __post_init__(self) -> None:
        if self.gradient_adjustment is None:
            self.gradient_adjustment = True
        if self.seg_to_decision is None:
            self.seg_to_decision = "logit" if self.architecture == "released" else "probability"

    def to_dict(self) -> dict:
        return asdict(self)


# Dilations whose weight gradient is computed on the interleaved sub-images (space-to-batch):
# dilation 2, whose dilated weight-gradient kernel oneDNN runs slowly with AVX2 kernels; for conv
# 10's dilation 7 at 1/8 resolution oneDNN's own is already fast and the shuffle costs more
# (benchmarks/README.md, "The atrous weight gradient follows the CPU").
SPACE_TO_BATCH_DILATIONS = (2,)


def space_to_batch(x: torch.Tensor, dilation: int) -> torch.Tensor:
    """[B, C, H, W] -> [B*d*d, C, ceil(H/d), ceil(W/d)]: the d x d interleaved sub-images.

    A 3x3 convolution with dilation d and padding d equals a dense 3x3 convolution with padding 1
    on each sub-image (the classic atrous trick). Zero padding up to a multiple of d is exact,
    since the dilated convolution reads zeros there too.
    """
    batch, channels, height, width = x.shape
    pad_h, pad_w = -height % dilation, -width % dilation
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    rows, cols = (height + pad_h) // dilation, (width + pad_w) // dilation
    x = x.reshape(batch, channels, rows, dilation, cols, dilation)
    return x.permute(0, 3, 5, 1, 2, 4).reshape(batch * dilation**2, channels, rows, cols)


class _AtrousConvolution(torch.autograd.Function):
    """A dilated 3x3 convolution whose weight gradient is taken on the space-to-batch sub-images.

    Forward and input gradient are oneDNN's dilated kernels (fast); only the weight gradient,
    which oneDNN computes slowly for small dilated kernels on large maps, takes the dense route.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.dilation = dilation
        return F.conv2d(x, weight, padding=dilation, dilation=dilation)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        d = ctx.dilation
        grad = grad.contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], [d, d], [d, d], False, [0, 0], 1,
                [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            grad_w = torch.ops.aten.convolution_backward(
                space_to_batch(grad, d), space_to_batch(x, d), weight, None, [1, 1], [1, 1],
                [1, 1], False, [0, 0], 1, [False, True, False])[1]
        return grad_x, grad_w, None


class AtrousConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict) with a faster weight gradient for the 3x3
    dilation-2 kernels; outputs and gradients equal the plain dilated convolution's."""

    # Off by default, so that the network depends on torch alone; training switches it on where
    # the CPU gains from it (segdec.runtime.Runtime.space_to_batch, via use_space_to_batch).
    space_to_batch_gradient = False

    def uses_space_to_batch(self, device_type: str, autocast: bool) -> bool:
        """Whether training takes the space-to-batch weight gradient: a CPU without autocast (under
        it the dense weight gradient would mix the saved fp32 input with a bf16 gradient), a
        bias-free 3x3 kernel with a dilation in SPACE_TO_BATCH_DILATIONS, padded to keep size."""
        d = self.dilation[0]
        return (self.space_to_batch_gradient and self.weight.requires_grad and self.bias is None
                and self.kernel_size == (3, 3) and d in SPACE_TO_BATCH_DILATIONS
                and self.padding == (d, d) and self.stride == (1, 1) and self.groups == 1
                and device_type == "cpu" and not autocast)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.uses_space_to_batch(
                x.device.type, torch.is_autocast_enabled("cpu")):
            return _AtrousConvolution.apply(x, self.weight, self.dilation[0])
        return super().forward(x)


def atrous_weight_gradient(model: nn.Module, device_type: str, autocast: bool) -> str:
    """How training on this device computes the dilation-2 weight gradients of ``model``:
    "space_to_batch", "dilated" (oneDNN's or cuDNN's own kernel), or "none" (no atrous kernel)."""
    atrous = [m for m in model.modules()
              if isinstance(m, AtrousConv2d) and m.dilation[0] in SPACE_TO_BATCH_DILATIONS]
    if not atrous:
        return "none"
    if any(m.uses_space_to_batch(device_type, autocast) for m in atrous):
        return "space_to_batch"
    return "dilated"


def use_space_to_batch(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch the fast weight gradient of every atrous convolution of ``model`` (for benchmarks
    and tests that compare it with the plain dilated convolution)."""
    for module in model.modules():
        if isinstance(module, AtrousConv2d):
            module.space_to_batch_gradient = enabled
    return model


def kernel(effective: int, atrous: bool) -> tuple[int, int]:
    """(kernel size, dilation) with the given effective size: K' = K + (K - 1)(D - 1), K = 3."""
    if not atrous:
        return effective, 1
    return 3, (effective - 1) // 2


class ReleasedNorm(nn.Module):
    """The normalisation of Božič's released code: ``(x - mean) / sqrt(std + 1e-3)`` per sample and
    channel over H and W (unbiased std), then a learnable scale and, optionally, a bias."""

    def __init__(self, channels: int, bias: bool = True, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True)
        x = (x - mean) / (std + self.eps).sqrt() * self.weight.view(1, -1, 1, 1)
        return x if self.bias is None else x + self.bias.view(1, -1, 1, 1)


NORMS = ("instance", "batch", "released")


class FeatureNorm(nn.Module):
    """Per-sample, per-channel normalisation over H and W with learnable scale and bias.

    Batch statistics would tie an image's features to its batch-mates; the reference uses this
    instance-style normalisation so that a single image gives the same output at any batch size.
    ``"released"`` is the variant of Božič's published code (``ReleasedNorm``).
    """

    def __init__(self, channels: int, kind: str = "instance") -> None:
        super().__init__()
        if kind == "instance":
            self.norm = nn.GroupNorm(channels, channels, eps=1e-5)
        elif kind == "batch":
            self.norm = nn.BatchNorm2d(channels)
        elif kind == "released":
            self.norm = ReleasedNorm(channels)
        else:
            raise ValueError(f"unknown normalisation {kind!r}; use one of {', '.join(NORMS)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(self.norm, nn.BatchNorm2d) and x.shape[-2] * x.shape[-1] == 1:
            # One value per channel (a 64x64 input's last decision map) normalises to zero,
            # which GroupNorm refuses to compute: only the learnt bias remains.
            return self.norm.bias.view(1, -1, 1, 1).repeat(x.shape[0], 1, 1, 1)
        return self.norm(x)


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al.): reweight channels by a gate computed from their means."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights in (0, 1), shape [B, C, 1, 1]; exposed for teaching notebooks."""
        squeezed = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class ConvBlock(nn.Sequential):
    """conv (no bias, "same" padding) -> feature normalisation -> ReLU [-> SE]."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        effective_kernel: int,
        atrous: bool,
        norm: str,
        se_reduction: int | None = None,
    ) -> None:
        size, dilation = kernel(effective_kernel, atrous)
        layers: list[nn.Module] = [
            AtrousConv2d(in_ch, out_ch, size, padding=dilation * (size - 1) // 2,
                         dilation=dilation, bias=False),
            FeatureNorm(out_ch, norm),
            nn.ReLU(inplace=True),
        ]
        if se_reduction is not None:
            layers.append(SqueezeExcite(out_ch, se_reduction))
        super().__init__(*layers)


# The classifier's inputs: global max and mean of the decision features and of the seg map.
DECISION_INPUTS = {
    "max of decision features": slice(0, 32),
    "mean of decision features": slice(32, 64),
    "max of segmentation map": slice(64, 65),
    "mean of segmentation map": slice(65, 66),
}


class SegDecNet(nn.Module):
    """``forward(x) -> (decision_logit [B], seg_logit [B, 1, H/8, W/8])``; H, W multiples of 8."""

    output_stride = 8  # three 2x2 pools; the targets, input sizes and receptive fields follow it
    min_size = 64  # the decision subnetwork pools three more times after the 1/8 map

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        if cfg.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {cfg.architecture!r}; use one of "
                             f"{', '.join(ARCHITECTURES)}")
        if cfg.seg_to_decision not in SEG_TO_DECISION:
            raise ValueError(f"unknown seg_to_decision {cfg.seg_to_decision!r}; use one of "
                             f"{', '.join(SEG_TO_DECISION)}")
        released = cfg.architecture == "released"
        se = cfg.se_reduction if cfg.attention else None
        norm = "released" if released else cfg.norm

        def block(i: int, o: int, k: int = 5, attend: bool = False) -> ConvBlock:
            return ConvBlock(i, o, k, cfg.atrous, norm, se if attend else None)

        # Božič's released code has one conv in block 1 (its second was left out by accident).
        first_block = [block(cfg.in_channels, 32)] + ([] if released else [block(32, 32)])
        self.segmentation = nn.Sequential(
            *first_block, nn.MaxPool2d(2),
            block(32, 64, attend=True), block(64, 64, attend=True), block(64, 64, attend=True),
            nn.MaxPool2d(2),
            *[block(64, 64, attend=True) for _ in range(4)],
            nn.MaxPool2d(2),
            block(64, 1024, k=15, attend=cfg.attention_on_large_conv),
        )
        self.seg_head = nn.Conv2d(1024, 1, 1, bias=False)
        # The released code normalises the 1-channel map (scale, no bias) before the decision
        # subnetwork and the loss see it.
        self.seg_norm = ReleasedNorm(1, bias=False) if released else nn.Identity()
        self.decision = nn.Sequential(
            nn.MaxPool2d(2, ceil_mode=True), block(1025, 8),
            nn.MaxPool2d(2, ceil_mode=True), block(8, 16),
            nn.MaxPool2d(2, ceil_mode=True), block(16, 32),
        )
        self.classifier = nn.Linear(32 + 32 + 1 + 1, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The segmentation subnetwork: (1024 features, segmentation logits), both at 1/8."""
        stride = self.output_stride
        if x.shape[-2] % stride or x.shape[-1] % stride or min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"input height and width must be multiples of {stride} and at least "
                f"{self.min_size}, "
                f"got {tuple(x.shape)}"
            )
        features = self.segmentation(x)
        return features, self.seg_norm(self.seg_head(features))

    def decision_inputs(self, features: torch.Tensor, seg_logit: torch.Tensor) -> torch.Tensor:
        """The 66 pooled values the classifier reads, in the groups of ``DECISION_INPUTS``."""
        if self.config.gradient_adjustment:
            # Božič et al.: the decision loss must not pull the segmentation features around.
            features, seg_logit = features.detach(), seg_logit.detach()
        probability = self.config.seg_to_decision == "probability"
        seg = torch.sigmoid(seg_logit) if probability else seg_logit
        volume = self.decision(torch.cat([features, seg], dim=1))
        return torch.cat(
            [
                volume.amax(dim=(2, 3)),
                volume.mean(dim=(2, 3)),
                seg.amax(dim=(2, 3)),
                seg.mean(dim=(2, 3)),
            ],
            dim=1,
        )

    def forward_head(self, features: torch.Tensor, seg_logit: torch.Tensor) -> torch.Tensor:
        """The decision subnetwork: one logit per image that it holds a defect."""
        return self.classifier(self.decision_inputs(features, seg_logit)).squeeze(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, seg_logit = self.forward_features(x)
        return self.forward_head(features, seg_logit), seg_logit


def probabilities(model: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
                  images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(defect probability [B], segmentation probabilities [B, 1, H/8, W/8]) of a SegDecNet, or of
    its compiled form: the sigmoid of its logits, taken in fp32 also under autocast, so that
    evaluation, prediction, ONNX export and the notebooks turn logits into scores alike."""
    decision, seg = model(images)
    return torch.sigmoid(decision.float()), torch.sigmoid(seg.float())


# The named networks and the switches that set them apart; every other ModelConfig field keeps
# its default unless build_model is given it.
NETWORKS = {
    "paper": {"attention": True, "atrous": True, "architecture": "described"},  # Bi et al.
    "bozic": {"attention": False, "atrous": False, "architecture": "described"},  # as described
    "bozic-released": {"attention": False, "atrous": False, "architecture": "released"},
}


def build_model(name: str = "paper", *, attention: bool | None = None,
                atrous: bool | None = None, **options) -> SegDecNet:
    """The network called ``name`` (one of ``NETWORKS``); ``attention`` and ``atrous`` switch its
    ablations (None: the network's own), ``options`` set the other ModelConfig fields. Keywords
    only, so that a switch can never be taken for a name."""
    if not isinstance(name, str) or name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; use one of {', '.join(NETWORKS)}")
    switches = {**NETWORKS[name]}
    for switch, value in (("attention", attention), ("atrous", atrous)):
        if value is not None:
            switches[switch] = value
    return SegDecNet(ModelConfig(**switches, **options))


# Below this, the learnt scale of the released network's segmentation-map normalisation leaves
# the map flat: between the runs that learnt and those that did not (figures/ksdd/README.md).
COLLAPSED_MAP_SCALE = 0.05


def flat_map_warning(model: SegDecNet) -> str | None:
    """Why a network of Božič's released architecture did not learn to segment, or None. It
    scales its normalised segmentation map by a learnt factor (starting at 1); where training
    drives that factor to about 0 (seen at lr 1.0 without momentum), the map that the loss and
    the decision see is flat and its gradient vanishes: the segmentation stops learning for good,
    and only the decision's own features are left to it."""
    if not isinstance(model.seg_norm, ReleasedNorm):
        return None
    scale = float(model.seg_norm.weight.detach().abs().max())
    if scale >= COLLAPSED_MAP_SCALE:
        return None
    return (f"the learnt scale of the segmentation map's normalisation collapsed to {scale:.4f} "
            "(it starts at 1): the map the loss and the decision see is flat, so the "
            "segmentation stopped learning and this run does not show what the network can do; "
            "train it again with another seed or a smaller learning rate")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
