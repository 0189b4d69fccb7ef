"""The MaskGIT transformer of Phenaki (section 2.2).

Bidirectional self-attention over the whole token grid, positions factorized into time,
height and width; cross-attention to per-token text states in every block; logits over
the codebook only, so the mask id can never be sampled. A learned null text stands in
for a dropped prompt, which is what classifier-free guidance contrasts against.
"""
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .blocks import Transformer


class MaskGitTransformer(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        codebook_size: int = 1024,
        latent_frames: int = 6,
        grid: int = 8,
        width: int = 256,
        depth: int = 4,
        heads: int = 4,
        text_dim: int = 384,
    ):
        super().__init__()
        self.token_emb = nn.Embedding(codebook_size + 1, width)  # + the mask id
        self.pos_t = nn.Parameter(torch.randn(latent_frames, 1, 1, width) * 0.02)
        self.pos_h = nn.Parameter(torch.randn(1, grid, 1, width) * 0.02)
        self.pos_w = nn.Parameter(torch.randn(1, 1, grid, width) * 0.02)
        self.text_proj = nn.Linear(text_dim, width)
        self.null_text = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        # The pooled prompt is also added to every token: a direct path for the few words
        # that decide the whole clip, on top of the per-token cross-attention.
        self.pooled_proj = nn.Linear(width, width)
        self.transformer = Transformer(width, depth, heads, context_dim=width)
        self.to_logits = nn.Linear(width, codebook_size)

    @property
    def mask_token_id(self) -> int:
        return self.config.codebook_size

    def encode_text(self, text_states, text_mask, drop_text=None):
        """Project text states; rows in `drop_text` get the learned null text instead."""
        context = self.text_proj(text_states.to(self.dtype))
        mask = text_mask.bool()
        if drop_text is not None and drop_text.any():
            null = self.null_text.to(context.dtype).expand(context.shape[0], context.shape[1], -1)
            context = torch.where(drop_text[:, None, None], null, context)
            only_first = torch.zeros_like(mask)
            only_first[:, 0] = True
            mask = torch.where(drop_text[:, None], only_first, mask)
        weights = mask.to(context.dtype)[..., None]
        pooled = (context * weights).sum(1) / weights.sum(1).clamp(min=1)
        return context, mask, pooled

    def forward(self, tokens, text_states, text_mask, drop_text=None, logits_at=None):
        """tokens (B, T', g, g) with mask ids -> logits (B, T', g, g, codebook_size), or,
        with `logits_at` (B, T', g, g) bool, logits (N, codebook_size) at its N True
        positions in row-major order: with a large codebook the output layer costs as much
        as the rest, and only masked positions need it (in training and in sampling)."""
        b, t, h, w = tokens.shape
        if t > self.config.latent_frames:
            raise ValueError(f"at most {self.config.latent_frames} latent frames, got {t}")
        context, mask, pooled = self.encode_text(text_states, text_mask, drop_text)
        x = self.token_emb(tokens) + self.pos_t[:t] + self.pos_h[:, :h] + self.pos_w[:, :, :w]
        x = x.reshape(b, t * h * w, -1) + self.pooled_proj(pooled)[:, None]
        x = self.transformer(x, context, mask)
        if logits_at is not None:
            return self.to_logits(x[logits_at.reshape(b, -1)])
        return self.to_logits(x).reshape(b, t, h, w, -1)
