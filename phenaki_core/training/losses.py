"""The training losses of Phenaki, as plain functions the trainers call."""
import math

import torch
import torch.nn.functional as F


def cosine_mask_ratio(u: torch.Tensor) -> torch.Tensor:
    """MaskGIT's schedule: u ~ U(0, 1) -> fraction of tokens masked, cos(pi/2 * u)."""
    return torch.cos(math.pi / 2 * u)


def random_mask(tokens: torch.Tensor, is_image: torch.Tensor, prefix_frames: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Which tokens to mask: (B, T', g, g) bool.

    A ratio from the cosine schedule per sample, over the positions the sample is scored
    on: an image's first frame only; a continuation's frames after its frozen prefix.
    At least one position is always masked.
    """
    b, t, h, w = tokens.shape
    frame = torch.arange(t, device=tokens.device)[None, :, None, None]
    scored = torch.ones_like(tokens, dtype=torch.bool)
    scored &= ~(is_image[:, None, None, None] & (frame > 0))
    if prefix_frames is not None:
        scored &= frame >= prefix_frames[:, None, None, None]
    n_scored = scored.flatten(1).sum(1)
    u = torch.rand(b, generator=generator, device=tokens.device)
    n_mask = (cosine_mask_ratio(u) * n_scored).ceil().clamp(min=1).long()
    noise = torch.rand(tokens.shape, generator=generator, device=tokens.device).masked_fill(~scored, 2.0)
    ranks = noise.flatten(1).argsort(1).argsort(1).view_as(tokens)
    return ranks < n_mask[:, None, None, None]


def masked_token_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                      object_weight: float = 1.0, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy on the masked positions only: `logits` (N, K) at the N True positions
    of `mask` (the transformer's `logits_at=mask`), `targets` and `mask` (B, T', g, g).

    With object_weight > 1, tokens that differ from their latent frame's most common token
    count more: on flat backgrounds nine tokens in ten are the background's one code,
    learned in a few hundred steps, and would otherwise drown the object's few tokens,
    which are what a prompt is about.

    `sample_weight` (B,) scales each sample's positions: an image is scored on its first
    frame alone, a sixth of a clip's positions, so what only images teach (outlines) gets
    a sliver of the gradient unless its images count for more."""
    ce = F.cross_entropy(logits.float(), targets[mask], reduction="none")
    weights = masked_token_weights(targets, mask, object_weight, sample_weight)
    return (ce * weights).sum() / weights.sum()


def masked_token_weights(targets: torch.Tensor, mask: torch.Tensor, object_weight: float = 1.0,
                         sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """The weight of each masked position in `masked_token_loss`, (N,): their sum says how
    much a batch counts when losses of batches shaped apart are averaged together."""
    weights = torch.ones_like(targets, dtype=torch.float)
    if object_weight != 1.0:
        weights = weights + (object_weight - 1.0) * object_tokens(targets).float()
    if sample_weight is not None:
        weights = weights * sample_weight.float()[:, None, None, None]
    return weights[mask]


def object_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """(B, T', g, g) -> bool: tokens other than their latent frame's most common one."""
    return tokens != tokens.flatten(2).mode(-1).values[:, :, None, None]


def prepare_masked_batch(tokens, is_image, mask_id, prefix_frames=None, generator=None):
    """Inputs and loss mask for one MaskGIT step. An image's later frames are all masked:
    an image is a video whose first frame alone is known to the loss."""
    mask = random_mask(tokens, is_image, prefix_frames, generator)
    inputs = tokens.masked_fill(mask, mask_id)
    frame = torch.arange(tokens.shape[1], device=tokens.device)[None, :, None, None]
    inputs = inputs.masked_fill(is_image[:, None, None, None] & (frame > 0), mask_id)
    return inputs, mask


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, object_weight: float = 1.0) -> torch.Tensor:
    """L2, with the object and a 2-pixel ring around it weighted up:
    on flat backgrounds almost all pixels are easy, and the object is what the checker
    reads. The ring matters: weighting the object alone makes a miss inside the edge cost
    more than a miss outside it, so the decoder learns to bleed colour outward, and
    bloated squares with soft corners read as circles."""
    err = (recon.float() - target.float()) ** 2
    if object_weight == 1.0:
        return err.mean()
    weights = 1.0 + (object_weight - 1.0) * object_region(target)
    return (err * weights).sum() / (weights.sum() * err.shape[1])


def object_region(target: torch.Tensor) -> torch.Tensor:
    """1 on what differs from the frame's border colour and on 2 pixels around it, else 0:
    (B, 1, T, H, W) for videos, (B, 1, H, W) for frames."""
    border = torch.cat([target[..., 0, :], target[..., -1, :], target[..., :, 0], target[..., :, -1]], dim=-1)
    background = border.median(dim=-1).values[..., None, None]
    is_object = ((target - background).abs().sum(1, keepdim=True) > 0.1).float()
    if is_object.dim() == 5:
        return F.max_pool3d(is_object, (1, 5, 5), stride=1, padding=(0, 2, 2))
    return F.max_pool2d(is_object, 5, stride=1, padding=2)


def motion_loss(moved: torch.Tensor, target: torch.Tensor, object_weight: float = 1.0) -> torch.Tensor:
    """The motion head's first frame moved to each later frame, alone, against that frame:
    at full size and pooled 4x and 8x. A sharp image gives a flow that is off by more than
    a pixel or two no gradient; a pooled one still tells it which way the object went."""
    later = target[:, :, 1:].float()
    pooled = [(F.avg_pool3d(moved, (1, k, k)), F.avg_pool3d(later, (1, k, k))) for k in (4, 8)]
    return sum(reconstruction_loss(m, t, object_weight) for m, t in [(moved, later), *pooled]) / 3


def drawn_share(weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How much of the object in the later frames the head drew itself rather than moved from
    the first frame (0 to 1): `weight` (B, 1, T-1, H, W) is the motion head's. On flat
    background the two agree, so only the object's pixels count."""
    region = object_region(target.float())[:, :, 1:]
    return ((1 - weight) * region).sum() / region.sum().clamp(min=1)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def generator_adv_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()
