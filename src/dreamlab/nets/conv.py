"""DreamerV3's image encoder and decoder (the official 2024 code; docs/dreamerv3.md: Encoder and decoder).

Images travel as uint8 [..., H, W, C] (channels last) and become floats only here, on the device.
Convolutions run on channels-last memory, so the channel RMSNorm after each one is a norm over the
last axis of a contiguous view.

Encoder: x/255 - 0.5, then per stage Conv 5x5 stride 1 ('same') -> 2x2 max-pool -> RMSNorm over
channels -> SiLU, channels depth * (2, 3, 4, 4): 64x64 ends at 4x4. Decoder: deter through a
block-diagonal projection (each of 8 blocks yields 4x4xC/8, concatenated on channels) plus stoch
through Linear -> RMSNorm -> SiLU -> Linear, summed, RMSNorm -> SiLU; then per stage nearest 2x
upsample -> Conv 5x5 -> RMSNorm -> SiLU, and a last upsample -> Conv 5x5 -> sigmoid.

`sampling="stride"` (agent.cnn_sampling) is the 2023 paper's variant: each stage a 4x4 convolution
of stride 2 (encoder) or a 4x4 transposed convolution of stride 2 (decoder) instead of a 5x5
convolution at the full resolution beside a pool or an upsample. Same shapes and channels, about
6x fewer FLOPs, as each convolution runs at the smaller of its two resolutions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dreamlab.nets.layers import TRUNC_CORRECTION, BlockLinear, RMSNorm, dense, init_linear

MULTS = (2, 3, 4, 4)


SAMPLING = ("pool", "stride")


def init_conv(conv: nn.Conv2d | nn.ConvTranspose2d, outscale: float = 1.0) -> nn.Conv2d | nn.ConvTranspose2d:
    fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    if isinstance(conv, nn.ConvTranspose2d):  # each output sums over the kernel taps its stride leaves
        fan_in //= conv.stride[0] * conv.stride[1]
    std = TRUNC_CORRECTION * math.sqrt(1.0 / fan_in) * outscale
    with torch.no_grad():
        nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


def resample_conv(c_in: int, c_out: int, mode: str, sampling: str, bias: bool = False) -> nn.Module:
    """The convolution of a stage that halves (mode "down") or doubles ("up") the resolution:
    sampling "pool", a 5x5 convolution at the larger resolution (the pool or upsample is the stage's);
    "stride", a 4x4 convolution (transposed for "up") of stride 2 that resamples by itself."""
    if sampling not in SAMPLING:
        raise ValueError(f"cnn sampling {sampling!r}: expected one of {SAMPLING}")
    if sampling == "pool":
        return init_conv(nn.Conv2d(c_in, c_out, 5, padding=2, bias=bias))
    if mode == "down":
        return init_conv(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=bias))
    return init_conv(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias))


class ConvStage(nn.Module):
    """NCHW (channels-last memory) -> conv 5x5 -> [max-pool 2 | or upsample 2 first] -> RMSNorm(C) -> SiLU;
    with sampling "stride" the conv resamples itself (4x4, stride 2)."""

    def __init__(self, c_in: int, c_out: int, mode: str, sampling: str = "pool"):
        super().__init__()
        self.conv = resample_conv(c_in, c_out, mode, sampling)
        self.norm = RMSNorm(c_out)
        self.mode = mode
        self.pooled = sampling == "pool"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "up" and self.pooled:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv(x)
        if self.mode == "down" and self.pooled:
            x = F.max_pool2d(x, 2)
        return F.silu(self.norm(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)


def image_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    """Height and width (both multiples of 16: 4 stages of 2x2 pooling) of a square size or an (H, W) pair."""
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if height % 16 or width % 16:
        raise ValueError(f"image size {height}x{width}: height and width must be multiples of 16 "
                         "(4 stages of 2x2 pooling)")
    return height, width


class ImageEncoder(nn.Module):
    def __init__(self, channels: int, size: int | tuple[int, int], depth: int, sampling: str = "pool"):
        super().__init__()
        height, width = image_hw(size)
        widths = [channels] + [depth * m for m in MULTS]
        self.stages = nn.Sequential(*[ConvStage(a, b, "down", sampling)
                                      for a, b in zip(widths[:-1], widths[1:], strict=True)])
        self.out_dim = (height // 16) * (width // 16) * widths[-1]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 [..., H, W, C] -> features [..., out_dim]."""
        lead = image.shape[:-3]
        x = image.reshape(-1, *image.shape[-3:]).float() / 255.0 - 0.5
        x = self.stages(x.permute(0, 3, 1, 2))  # NHWC data seen as NCHW: channels-last memory
        return x.permute(0, 2, 3, 1).reshape(*lead, self.out_dim)


class ImageDecoder(nn.Module):
    def __init__(self, deter: int, groups: int, classes: int, units: int, channels: int,
                 size: int | tuple[int, int], depth: int, blocks: int = 8, sampling: str = "pool"):
        super().__init__()
        height, width = image_hw(size)
        self.base, self.width = (height // 16, width // 16), depth * MULTS[-1]
        self.blocks = blocks
        area = self.base[0] * self.base[1] * self.width
        if self.width % blocks or deter % blocks:
            raise ValueError(f"decoder width {self.width} and deter {deter} must divide into {blocks} blocks")
        self.from_deter = BlockLinear(deter, area, blocks)
        self.from_stoch = nn.Sequential(dense(groups * classes, 2 * units),
                                        init_linear(nn.Linear(2 * units, area)))
        self.norm = RMSNorm(self.width)
        widths = [depth * m for m in reversed(MULTS)]  # 4, 4, 3, 2 x depth
        self.stages = nn.Sequential(*[ConvStage(a, b, "up", sampling)
                                      for a, b in zip(widths[:-1], widths[1:], strict=True)])
        self.out = resample_conv(widths[-1], channels, "up", sampling, bias=True)
        self.pooled = sampling == "pool"

    def forward(self, deter: torch.Tensor, stoch: torch.Tensor) -> torch.Tensor:
        """deter [..., D], one-hot stoch [..., G*K] -> image in [0, 1], [..., H, W, C]."""
        lead = deter.shape[:-1]
        (bh, bw), w = self.base, self.width
        spatial = self.from_deter(deter.reshape(-1, deter.shape[-1]))  # [N, blocks * (bh*bw*w/blocks)]
        spatial = spatial.view(-1, self.blocks, bh, bw, w // self.blocks).permute(0, 2, 3, 1, 4).reshape(-1, bh, bw, w)
        spatial = spatial + self.from_stoch(stoch.reshape(-1, stoch.shape[-1])).view(-1, bh, bw, w)
        x = F.silu(self.norm(spatial)).permute(0, 3, 1, 2)
        x = self.stages(x)
        x = self.out(F.interpolate(x, scale_factor=2, mode="nearest") if self.pooled else x)
        image = torch.sigmoid(x.permute(0, 2, 3, 1))
        return image.reshape(*lead, *image.shape[1:])
