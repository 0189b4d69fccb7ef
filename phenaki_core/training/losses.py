"""The training losses of Phenaki, as plain functions the trainers call."""
import functools

import torch
import torch.nn.functional as F


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
    """Inputs and loss mask for one MaskGIT step, by the scheduler's own masking, so the
    cosine schedule that sampling follows is written once (`MaskGitScheduler.mask_tokens`):
    a cosine share of each sample's scored positions, an image's later frames all masked
    (an image is a video whose first frame alone is known to the loss)."""
    return _masker(mask_id).mask_tokens(tokens, is_image, prefix_frames, generator)


@functools.lru_cache(maxsize=8)
def _masker(mask_id: int):
    from ..schedulers import MaskGitScheduler

    return MaskGitScheduler(mask_token_id=int(mask_id))


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
