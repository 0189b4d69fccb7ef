"""Carry a trained transformer over to a retrained tokenizer's codes.

Retraining the tokenizer's encoder moves its latents across FSQ's rounding boundaries, so
the same clip gets other codes (on Shapes World, a tokenizer trained further kept only a
fifth of its codes) and a transformer trained on the old codes reads noise. Its text,
layout and motion knowledge is still good; only the code tables are wrong. Both
tokenizers tokenize the same clips, and each new code's embedding and output row become
the average of the old codes found at its positions, weighted by how often.
"""
import torch

from ..models import CViViT, MaskGitTransformer
from .batches import Batch, on_device


@torch.no_grad()
def code_cooccurrence(old: CViViT, new: CViViT, batches: list[Batch]) -> torch.Tensor:
    """(K, K) counts: [new code, old code] at the same position of the same clip."""
    k = new.codebook_size
    if old.codebook_size != k or old.grid != new.grid:
        raise ValueError("code transfer needs tokenizers with the same codebook size and token grid")
    counts = torch.zeros(k * k, dtype=torch.float64)
    for b in batches:
        for frames in (b.videos, b.images):
            if len(frames):
                frames = on_device(frames, next(new.parameters()).device)
                pairs = new.tokenize(frames).flatten() * k + old.tokenize(frames).flatten()
                counts += torch.bincount(pairs.cpu(), minlength=k * k).double()
    return counts.view(k, k)


@torch.no_grad()
def transfer_codes(model: MaskGitTransformer, counts: torch.Tensor) -> int:
    """Rewrite `model`'s token embeddings and output layer for the new codes, in place;
    return how many new codes never occurred (they keep their old rows)."""
    k = model.config.codebook_size
    seen = counts.sum(1) > 0
    mix = torch.where(seen[:, None], counts / counts.sum(1, keepdim=True).clamp(min=1), torch.eye(k, dtype=counts.dtype))
    mix = mix.to(model.to_logits.weight)
    model.token_emb.weight[:k] = mix @ model.token_emb.weight[:k]  # the mask id's row stays
    model.to_logits.weight.copy_(mix @ model.to_logits.weight)
    model.to_logits.bias.copy_(mix @ model.to_logits.bias)
    return int((~seen).sum())
