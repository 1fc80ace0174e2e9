"""The segmentation-based decision network of Bi et al. (2022), PAPER.md Table 2, in one file.

Two subnetworks trained end to end: a segmentation subnetwork (11 convs, output at 1/8 resolution)
and a decision subnetwork that reads its 1024 features and its segmentation map. The paper's two
architectural changes are switches: ``atrous`` (3x3 dilated kernels with the original receptive
field) and ``attention`` (squeeze-and-excitation after the 64-channel convs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """The switches that fix the architecture; saved in every checkpoint to rebuild the model."""

    in_channels: int = 1
    attention: bool = True
    atrous: bool = True
    attention_on_large_conv: bool = False
    norm: str = "instance"
    se_reduction: int = 16
    gradient_adjustment: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def kernel(effective: int, atrous: bool) -> tuple[int, int]:
    """(kernel size, dilation) with the given effective size: K' = K + (K - 1)(D - 1), K = 3."""
    if not atrous:
        return effective, 1
    return 3, (effective - 1) // 2


class FeatureNorm(nn.Module):
    """Per-sample, per-channel normalisation over H and W with learnable scale and bias.

    Batch statistics would tie an image's features to its batch-mates; the reference uses this
    instance-style normalisation so that a single image gives the same output at any batch size.
    """

    def __init__(self, channels: int, kind: str = "instance") -> None:
        super().__init__()
        if kind == "instance":
            self.norm = nn.GroupNorm(channels, channels, eps=1e-5)
        elif kind == "batch":
            self.norm = nn.BatchNorm2d(channels)
        else:
            raise ValueError(f"unknown normalisation {kind!r}; use 'instance' or 'batch'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.norm, nn.GroupNorm) and x.shape[-2] * x.shape[-1] == 1:
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
            nn.Conv2d(in_ch, out_ch, size, padding=dilation * (size - 1) // 2, dilation=dilation,
                      bias=False),
            FeatureNorm(out_ch, norm),
            nn.ReLU(inplace=True),
        ]
        if se_reduction is not None:
            layers.append(SqueezeExcite(out_ch, se_reduction))
        super().__init__(*layers)


class SegDecNet(nn.Module):
    """``forward(x) -> (decision_logit [B], seg_logit [B, 1, H/8, W/8])``; H, W multiples of 8."""

    output_stride = 8
    min_size = 64  # the decision subnetwork pools three more times after the 1/8 map

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        se = cfg.se_reduction if cfg.attention else None

        def block(i: int, o: int, k: int = 5, attend: bool = False) -> ConvBlock:
            return ConvBlock(i, o, k, cfg.atrous, cfg.norm, se if attend else None)

        self.segmentation = nn.Sequential(
            block(cfg.in_channels, 32), block(32, 32), nn.MaxPool2d(2),
            block(32, 64, attend=True), block(64, 64, attend=True), block(64, 64, attend=True),
            nn.MaxPool2d(2),
            *[block(64, 64, attend=True) for _ in range(4)],
            nn.MaxPool2d(2),
            block(64, 1024, k=15, attend=cfg.attention_on_large_conv),
        )
        self.seg_head = nn.Conv2d(1024, 1, 1, bias=False)
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
        if x.shape[-2] % 8 or x.shape[-1] % 8 or min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"input height and width must be multiples of 8 and at least {self.min_size}, "
                f"got {tuple(x.shape)}"
            )
        features = self.segmentation(x)
        return features, self.seg_head(features)

    def forward_head(self, features: torch.Tensor, seg_logit: torch.Tensor) -> torch.Tensor:
        """The decision subnetwork: one logit per image that it holds a defect."""
        if self.config.gradient_adjustment:
            # Božič et al.: the decision loss must not pull the segmentation features around.
            features, seg_logit = features.detach(), seg_logit.detach()
        volume = self.decision(torch.cat([features, seg_logit], dim=1))
        pooled = torch.cat(
            [
                volume.amax(dim=(2, 3)),
                volume.mean(dim=(2, 3)),
                seg_logit.amax(dim=(2, 3)),
                seg_logit.mean(dim=(2, 3)),
            ],
            dim=1,
        )
        return self.classifier(pooled).squeeze(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, seg_logit = self.forward_features(x)
        return self.forward_head(features, seg_logit), seg_logit


def build_model(
    attention: bool = True,
    atrous: bool = True,
    in_channels: int = 1,
    **options,
) -> SegDecNet:
    """The paper's network (defaults) or the original Božič network (``False, False``)."""
    return SegDecNet(ModelConfig(in_channels=in_channels, attention=attention, atrous=atrous,
                                 **options))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
