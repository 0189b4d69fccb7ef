"""Finite scalar quantization (Mentzer et al., 2023).

Why FSQ rather than a learned VQ codebook: each latent channel is bounded and rounded to
a few levels, so the codebook is the implicit grid of all level combinations. There is no
codebook to collapse, so no dead-code restarts, no codebook or commitment loss, and no
EMA bookkeeping; on small data, where VQ codebooks die fastest, usage stays high.
Usage metrics are still reported so that a user can see it.
"""
import math

import torch
from torch import nn


class FSQ(nn.Module):
    def __init__(self, levels: list[int]):
        super().__init__()
        self.levels = list(levels)
        levels_t = torch.tensor(self.levels, dtype=torch.int64)
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1], dtype=torch.int64), 0)
        self.register_buffer("_levels", levels_t, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        levels = self._levels.to(z.dtype)
        half_l = (levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., dim) -> (quantized in [-1, 1] with straight-through gradients, indices (...))."""
        bounded = self._bound(z.float())
        rounded = bounded + (bounded.round() - bounded).detach()
        half_width = (self._levels // 2).to(rounded.dtype)
        indices = ((rounded.round() + half_width).long() * self._basis).sum(-1)
        return (rounded / half_width).to(z.dtype), indices

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        digits = (indices[..., None] // self._basis) % self._levels
        half_width = self._levels // 2
        return (digits - half_width).float() / half_width.float()

    def usage(self, indices: torch.Tensor) -> dict[str, float]:
        """Perplexity and fraction of codes never used in `indices` (a batch or a pool)."""
        counts = torch.bincount(indices.flatten(), minlength=self.codebook_size).float()
        probs = counts / counts.sum()
        entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
        return {"perplexity": entropy.exp().item(), "dead_fraction": (counts == 0).float().mean().item()}
