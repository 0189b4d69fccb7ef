"""Transformer blocks shared by C-ViViT and the MaskGIT transformer.

Pre-norm blocks. Attention goes through `scaled_dot_product_attention` (flash on CUDA),
except on CPU on sequences short enough for three plain ops to be faster (below).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

# On CPU, three plain ops (plain_attention) beat PyTorch's kernels up to these lengths
# (bench/bench_kernels.py). In bf16, as in training under autocast, forward and backward:
# 1.5-3x its unfused path and 3.4-7x the fused kernel on the tokenizer's 6 and 64 tokens,
# 2.6x the fused kernel on the transformer's 384. In fp32 (sampling) the two are level at
# 384 tokens. Past 512 the fused kernel always takes over: it never holds the quadratic scores.
PLAIN_ATTENTION_TOKENS_FP32 = 128
PLAIN_ATTENTION_TOKENS_BF16 = 512  # and fp16


class Attention(nn.Module):
    """Multi-head attention; `context` makes it cross-attention."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, context=None, mask=None, causal=False):
        b, n, d = x.shape
        context = x if context is None else context
        q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.to_kv(context).view(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        if mask is not None:  # (b, m) key padding -> broadcast over heads and queries
            mask = mask[:, None, None, :]
        limit = PLAIN_ATTENTION_TOKENS_FP32 if q.dtype == torch.float32 else PLAIN_ATTENTION_TOKENS_BF16
        if q.device.type == "cpu" and max(n, k.shape[-2]) <= limit:
            out = plain_attention(q, k, v, mask, causal)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.to_out(out.transpose(1, 2).reshape(b, n, d))


def plain_attention(q, k, v, mask, causal):
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    if causal:
        n, m = scores.shape[-2:]
        scores = scores.masked_fill(torch.ones(n, m, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1).to(v.dtype) @ v


class FeedForward(nn.Sequential):
    # Exact GELU: on CPU its kernels run 1.7-3x faster, forward and backward, than the
    # tanh form's (bench/bench_kernels.py), which the shipped weights trained with; the two
    # differ by at most 5e-4, under bf16's resolution.
    def __init__(self, dim: int, mult: int = 4):
        super().__init__(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))


class Block(nn.Module):
    """Self-attention (optionally causal), optional cross-attention, feed-forward."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.cross = None
        if context_dim is not None:
            self.norm_cross = nn.LayerNorm(dim)
            self.cross = Attention(dim, heads, context_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, context=None, context_mask=None):
        x = x + self.attn(self.norm1(x), causal=self.causal)
        if self.cross is not None:
            x = x + self.cross(self.norm_cross(x), context, context_mask)
        return x + self.ff(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, context_dim: int | None = None, causal: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(Block(dim, heads, context_dim, causal) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, context=None, context_mask=None):
        for layer in self.layers:
            x = layer(x, context, context_mask)
        return self.norm(x)


def sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed sinusoidal embedding: defined for any position, so any video length works."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / half)
    angles = positions.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
