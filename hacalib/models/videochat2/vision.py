"""The UMT video encoder VideoChat2 runs: a ViT over every patch of every frame at once, written from torch blocks.

Why our own module and not transformers' `VideoMAEModel` (same block structure, tubelet 1): its attention-bias
layout has changed between releases (q/v biases in some, q/k/v biases in others, where old checkpoints then
load zero biases silently), and its position table would have to be overwritten anyway. This module keeps the
original's layout: one fused `qkv` projection without bias plus separate `q_bias` and `v_bias` (the key gets no
bias), pre-norm blocks (LayerNorm eps 1e-6), GELU MLP, and a final LayerNorm (eps 1e-12, VideoChat2's
`vision_layernorm`). docs/videochat2.md records the decision.

Positions: a fixed 1-D sine-cosine table over `position_frames * grid * grid` positions (UMT was pretrained on
4 frames of 14 x 14 patches = 784), read as (frames, grid, grid, C) and linearly interpolated along time to the
input's frame count. It is computed, never stored: not a parameter, not in any checkpoint.

May import: torch, `.configuration`.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from .configuration import VideoChat2VisionConfig


def sincos_table(num_positions: int, dim: int) -> torch.Tensor:
    """(num_positions, dim) float32: angle pos / 10000^(2*(j//2)/dim), sine on even j, cosine on odd j.

    Computed in float64 and rounded once, as the original builds it in numpy.
    """
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    angles = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.empty_like(angles)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()


def video_position_table(dim: int, grid: int, frames: int, table_frames: int = 4) -> torch.Tensor:
    """(frames * grid * grid, dim): the table built for `table_frames` frames, interpolated in time to `frames`.

    Row order is frame-major, then patch row, then patch column (the order of the patch embeddings).
    """
    table = sincos_table(table_frames * grid * grid, dim)
    if frames == table_frames:
        return table
    # (T, H, W, C) -> (H*W, C, T): F.interpolate's linear mode runs along the last axis (align_corners=False)
    per_patch = table.reshape(table_frames, grid, grid, dim).permute(1, 2, 3, 0).reshape(grid * grid, dim, table_frames)
    per_patch = F.interpolate(per_patch, size=frames, mode="linear")
    return per_patch.reshape(grid, grid, dim, frames).permute(3, 0, 1, 2).reshape(frames * grid * grid, dim)


class UMTAttention(nn.Module):
    """Multi-head self-attention with a fused bias-free qkv projection, learned q and v biases, no k bias."""

    def __init__(self, config: VideoChat2VisionConfig):
        super().__init__()
        dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head_dim), no mask: every patch sees all
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class UMTMlp(nn.Module):
    def __init__(self, config: VideoChat2VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = nn.GELU()  # exact (erf) GELU, as torch's default
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class UMTBlock(nn.Module):
    """Pre-norm transformer block (no layer scale: UMT-L's init_values is 0)."""

    def __init__(self, config: VideoChat2VisionConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = UMTAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = UMTMlp(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class UMTVisionModel(nn.Module):
    """Frames (B, T, 3, H, W) -> patch features (B, T * grid * grid, hidden), joint attention over all frames."""

    def __init__(self, config: VideoChat2VisionConfig):
        super().__init__()
        self.config = config
        p = config.patch_size
        self.patch_embedding = nn.Conv3d(config.num_channels, config.hidden_size, kernel_size=(1, p, p), stride=(1, p, p))
        self.layers = nn.ModuleList([UMTBlock(config) for _ in range(config.num_hidden_layers)])
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.post_layernorm_eps)
        self.gradient_checkpointing = False
        self._tables: dict[tuple, torch.Tensor] = {}

    def position_table(self, frames: int, grid: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The (frames * grid * grid, hidden) table, built once per (frames, grid, device, dtype)."""
        key = (frames, grid, str(device), dtype)
        if key not in self._tables:
            table = video_position_table(self.config.hidden_size, grid, frames, self.config.position_frames)
            self._tables[key] = table.to(device=device, dtype=dtype)
        return self._tables[key]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.dim() != 5:
            raise ValueError(f"expected pixel values (batch, frames, 3, H, W), got shape {tuple(pixel_values.shape)}")
        b, t, _, h, w = pixel_values.shape
        if h != w or h % self.config.patch_size:
            raise ValueError(f"frames must be square with a side divisible by {self.config.patch_size}, got {h}x{w}")
        x = self.patch_embedding(pixel_values.transpose(1, 2))  # Conv3d wants (B, C, T, H, W)
        x = x.flatten(2).transpose(1, 2)  # (B, T*grid*grid, C), frame-major
        x = x + self.position_table(t, h // self.config.patch_size, x.device, x.dtype)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
        return self.post_layernorm(x)


__all__ = ["UMTAttention", "UMTVisionModel", "sincos_table", "video_position_table"]
