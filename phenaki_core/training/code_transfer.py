"""Carry a trained transformer over to a retrained tokenizer's codes.

Retraining the tokenizer's encoder moves its latents across FSQ's rounding boundaries, so
the same clip gets other codes (on Shapes World, a tokenizer trained further kept only a
fifth of its codes) and a transformer trained on the old codes reads noise. Its text,
layout and motion knowledge is still good; only the code tables are wrong. Both
tokenizers tokenize the same clips, and each new code's embedding and output row become
the average of the old codes found at its positions, weighted by how often.

The new tokenizer may cut time differently (two-frame tubelets to one-frame ones): a new
latent frame is then matched with the old latent frame that holds the same video frame,
and the transformer's time positions are carried over the same way.
"""
import torch

from ..models import CViViT, MaskGitTransformer
from .batches import Batch, on_device


def matching_latent_frames(old: CViViT, new: CViViT, latent_frames: int) -> torch.LongTensor:
    """For each of `new`'s latent frames, the index of `old`'s latent frame holding its last video frame."""
    last = [new.num_frames(t + 1) - 1 for t in range(latent_frames)]
    return torch.tensor([0 if f == 0 else 1 + (f - 1) // old.config.temporal_patch_size for f in last])


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
                new_tokens, old_tokens = new.tokenize(frames), old.tokenize(frames)
                old_tokens = old_tokens[:, matching_latent_frames(old, new, new_tokens.shape[1])]
                pairs = new_tokens.flatten() * k + old_tokens.flatten()
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


@torch.no_grad()
def transfer_time_positions(model: MaskGitTransformer, source: MaskGitTransformer, old: CViViT, new: CViViT):
    """Give each of `model`'s latent frames the time position `source` had for the same video frame."""
    model.pos_t.copy_(source.pos_t[matching_latent_frames(old, new, model.config.latent_frames)])
