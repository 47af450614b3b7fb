"""ResNetV2 (BiT) as the hybrid ViT's backbone: weight-standardized convs, GroupNorm, TF 'SAME' padding.

Paper: Big Transfer (BiT) https://arxiv.org/abs/1912.11370; the non-pre-activation bottleneck and the
input-size-based 'SAME' padding are those of the R50+ViT-B/16 hybrid (https://arxiv.org/abs/2010.11929).
Only what the hybrids use is here: the 7x7 stem, non-pre-activation bottlenecks, no final norm and
no head. Parameter names are timm's (`stem.conv`, `stages.0.blocks.0.conv1`, ...). `create_backbone`
gives the stem alone (keys `conv`, `norm`) when there are no stages, as timm's
`create_resnetv2_stem` does for the R+ViT-Ti/S16 hybrid.

Numbers that matter for parity: weight standardization uses the biased variance with eps 1e-8 (timm's
hybrid and transformers' BiT both), GroupNorm 32 groups eps 1e-5, stride on the 3x3 conv, 'SAME'
padding puts the odd pixel at the bottom/right, the stem max-pool pads with -inf.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ResNetV2", "Stem", "create_backbone", "StdConv2dSame", "GroupNormAct", "pad_same"]


def _same_pad_amount(size: int, kernel: int, stride: int) -> int:
    """Total TF 'SAME' padding along one axis: the output is ceil(size / stride)."""
    return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad (B, C, H, W) for TF 'SAME' with a square kernel: half before, the odd pixel after."""
    ph = _same_pad_amount(x.shape[-2], kernel, stride)
    pw = _same_pad_amount(x.shape[-1], kernel, stride)
    if ph or pw:
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], value=value)
    return x


class StdConv2dSame(nn.Conv2d):
    """Conv2d (no bias) whose weight is standardized per output channel on every call, with 'SAME'
    padding: static symmetric padding when stride 1 (odd kernel), input-size based otherwise."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, eps: float = 1e-8):
        self.dynamic_pad = stride > 1
        padding = 0 if self.dynamic_pad else (kernel_size - 1) // 2
        super().__init__(in_chs, out_chs, kernel_size, stride=stride, padding=padding, bias=False)
        self.eps = eps

    def standardized_weight(self) -> torch.Tensor:
        # (w - mean) / sqrt(var + eps) over each output channel's fan-in, biased variance
        w = self.weight.reshape(1, self.out_channels, -1)
        return F.batch_norm(w, None, None, training=True, momentum=0.0, eps=self.eps).reshape_as(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic_pad:
            x = pad_same(x, self.kernel_size[0], self.stride[0])
        return F.conv2d(x, self.standardized_weight(), None, self.stride, self.padding)


class GroupNormAct(nn.GroupNorm):
    """GroupNorm (32 groups) followed by ReLU unless act=False."""

    def __init__(self, num_channels: int, num_groups: int = 32, eps: float = 1e-5, act: bool = True):
        super().__init__(num_groups, num_channels, eps=eps)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        return F.relu(x, inplace=True) if self.act else x


class DownsampleConv(nn.Module):
    """Projection shortcut: 1x1 strided std-conv then GroupNorm (no activation)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, conv_eps: float):
        super().__init__()
        self.conv = StdConv2dSame(in_chs, out_chs, 1, stride=stride, eps=conv_eps)
        self.norm = GroupNormAct(out_chs, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class Bottleneck(nn.Module):
    """Non-pre-activation bottleneck (v1.5: stride on the 3x3): relu(norm3(conv3(...)) + shortcut)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, conv_eps: float = 1e-8,
                 downsample: bool = False):
        super().__init__()
        mid = out_chs // 4
        self.downsample = DownsampleConv(in_chs, out_chs, stride, conv_eps) if downsample else None
        self.conv1 = StdConv2dSame(in_chs, mid, 1, eps=conv_eps)
        self.norm1 = GroupNormAct(mid)
        self.conv2 = StdConv2dSame(mid, mid, 3, stride=stride, eps=conv_eps)
        self.norm2 = GroupNormAct(mid)
        self.conv3 = StdConv2dSame(mid, out_chs, 1, eps=conv_eps)
        self.norm3 = GroupNormAct(out_chs, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.norm1(self.conv1(x))
        x = self.norm2(self.conv2(x))
        x = self.norm3(self.conv3(x))
        return F.relu(x + shortcut, inplace=True)


class ResNetStage(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int, depth: int, conv_eps: float):
        super().__init__()
        self.blocks = nn.Sequential(*[
            Bottleneck(in_chs if i == 0 else out_chs, out_chs, stride if i == 0 else 1, conv_eps, downsample=i == 0)
            for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class _Strided(nn.Module):
    """A feature backbone whose output size follows from its `strides` ('SAME': ceil at each)."""
    strides: list[int]

    def feature_size(self, img_size: int) -> int:
        """Spatial size of the output map for a square `img_size` input."""
        for s in self.strides:
            img_size = math.ceil(img_size / s)
        return img_size


class Stem(_Strided):
    """7x7/2 std-conv -> GroupNorm+ReLU -> 3x3/2 max-pool, all 'SAME' padded (stride 4)."""

    def __init__(self, in_chs: int = 3, out_chs: int = 64, conv_eps: float = 1e-8):
        super().__init__()
        self.conv = StdConv2dSame(in_chs, out_chs, 7, stride=2, eps=conv_eps)
        self.norm = GroupNormAct(out_chs)
        self.strides = [2, 2]
        self.num_features = out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        return F.max_pool2d(pad_same(x, 3, 2, value=float("-inf")), 3, 2)


class ResNetV2(_Strided):
    """Feature backbone: (B, 3, H, W) -> (B, channels[len(layers)-1], ceil(H/r), ceil(W/r)),
    r = 4 * 2**(len(layers)-1) (16 for the three-stage R50 of the R50+ViT-B/16, 32 with four stages)."""

    def __init__(self, layers=(3, 4, 9), channels=(256, 512, 1024, 2048), in_chans: int = 3,
                 stem_chs: int = 64, conv_eps: float = 1e-8):
        super().__init__()
        if not layers:
            raise ValueError("ResNetV2 needs at least one stage (layers=()); use create_backbone for a stem only")
        self.stem = Stem(in_chans, stem_chs, conv_eps)
        self.strides = self.stem.strides + [1 if i == 0 else 2 for i in range(len(layers))]   # every stride
        prev = stem_chs
        stages = []
        # channels names four stages; a backbone of fewer (the R50+ViT-B/16's three) takes the first ones
        for i, (depth, chs) in enumerate(zip(layers, channels, strict=False)):
            stages.append(ResNetStage(prev, chs, 1 if i == 0 else 2, depth, conv_eps))
            prev = chs
        self.stages = nn.Sequential(*stages)
        self.num_features = prev
        self.reduction = math.prod(self.strides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


def create_backbone(layers=(3, 4, 9), channels=(256, 512, 1024, 2048), in_chans: int = 3,
                    stem_chs: int = 64) -> ResNetV2 | Stem:
    """The hybrid's backbone: a ResNetV2 of `layers` stages, or the stem alone when `layers` is empty."""
    if len(layers) > len(channels):
        raise ValueError(f"backbone layers={tuple(layers)} has more stages than channels={tuple(channels)}")
    return ResNetV2(layers, channels, in_chans, stem_chs) if layers else Stem(in_chans, stem_chs)
