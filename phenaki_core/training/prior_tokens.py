"""Tokens as the transformer draws them, for training the decoder on (`--prior`).

A decoder trained on exact codes meets other codes in use: a transformer's samples are
right on most positions and near-right on some. A decoder that has learned what such
tokens mean could draw what was meant, where a thin stroke would otherwise break (one gap
in a ring, and Shapes World's checker reads it as solid). So a random share of each
clip's tokens is masked and drawn again by the frozen transformer, in one pass at
temperature 1, and the decoder learns to draw the ground truth from them. On Shapes
World it drew sampled outlined shapes no better (docs/research-log.md, the redrawn-token decoder run): there
the sampled tokens compose the ring wrongly, not just a few of them off.
"""
import torch


@torch.no_grad()
def redraw_tokens(transformer, tokens: torch.LongTensor, text_states: torch.Tensor, text_mask: torch.Tensor,
                  max_share: float, rows: torch.Tensor, generator: torch.Generator | None = None) -> torch.LongTensor:
    """tokens (B, T', g, g) -> the same with a share U(0, max_share) of each chosen row's
    (`rows`, B bool) tokens drawn by `transformer` under its caption. An image (T' = 1) is
    sampled the way the transformer trained on images: its later frames masked."""
    b, t = tokens.shape[:2]
    mask_id = transformer.mask_token_id
    share = torch.rand(b, 1, 1, 1, generator=generator, device=tokens.device) * max_share * rows[:, None, None, None]
    redraw = torch.rand(tokens.shape, generator=generator, device=tokens.device) < share
    if not redraw.any():
        return tokens
    later = torch.full((b, transformer.config.latent_frames - t, *tokens.shape[2:]), mask_id,
                       dtype=tokens.dtype, device=tokens.device)
    inputs = torch.cat([tokens.masked_fill(redraw, mask_id), later], 1)
    at = torch.cat([redraw, torch.zeros_like(later, dtype=torch.bool)], 1)
    logits = transformer(inputs, text_states, text_mask, logits_at=at).float()
    drawn = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
    return tokens.masked_scatter(redraw, drawn)
