"""A second decoder for a C-ViViT's tokens that draws frames `scale` times larger.

Sampling cost lives in the transformer and grows with the square of the token grid; the
decoder is cheap. So the same tokens the shipped 64-pixel model samples are drawn here at
256 pixels, by a decoder trained on Shapes World's exact 256-pixel renders of the scenes the
tokens were made from (training/train_upsampler.py), with the tokenizer's encoder and the
transformer left as they are.

The trunk mirrors C-ViViT's decoder (code -> causal temporal transformer -> spatial
transformer -> per-token pixel features and its 64-pixel head), so the shipped decoder's
weights start it. Then each frame alone goes through a small 2-D network at the token
frame's size that predicts `scale` x `scale` sub-pixels per pixel (pixel shuffle, as in
ESPCN): almost all of its work is at 64x64, and the 256-pixel frame costs only the
shuffle and one bilinear upscale of the 64-pixel drawing, which the network corrects (its
last layer starts at zero, so an untrained head draws exactly that bilinear upscale).

Causality: the temporal transformer is causal, and everything after it works on one frame
at a time, so a frame depends only on the tokens of its time step and before, as in the
shipped decoder: a prefix draws the same alone or inside a longer clip.
"""
import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .blocks import Transformer, sinusoidal
from .quantizer import FSQ


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class TokenUpsampler(ModelMixin, ConfigMixin):
    """Tokens of a C-ViViT (its config's grid, patches, tubelets and FSQ levels) -> frames
    `scale` times the tokenizer's frame size."""

    @register_to_config
    def __init__(
        self,
        image_size: int = 64,
        in_channels: int = 3,
        patch_size: int = 8,
        temporal_patch_size: int = 2,
        width: int = 128,
        heads: int = 4,
        spatial_depth: int = 2,
        temporal_depth: int = 2,
        fsq_levels: tuple[int, ...] = (8, 8, 4, 4),
        head_channels: int = 16,
        scale: int = 4,
        channels: int = 48,
        blocks: int = 2,
    ):
        super().__init__()
        p, tp, c, hc = patch_size, temporal_patch_size, in_channels, head_channels
        if image_size % p:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {p}")
        if scale < 1:
            raise ValueError(f"scale must be at least 1, got {scale}")
        self.grid = image_size // p
        self.quantizer = FSQ(list(fsq_levels))
        # The trunk: C-ViViT's decoder, same names and shapes, so its weights load as they are.
        self.from_code = nn.Linear(self.quantizer.dim, width)
        self.dec_temporal = Transformer(width, temporal_depth, heads, causal=True) if temporal_depth else None
        self.dec_spatial_pos = nn.Parameter(torch.randn(1, self.grid**2, width) * 0.02)
        self.dec_spatial = Transformer(width, spatial_depth, heads)
        self.unembed_image = nn.Linear(width, hc * p * p)
        self.unembed_tubelet = nn.Linear(width, hc * tp * p * p) if tp > 1 else None
        self.head = nn.Sequential(nn.Conv2d(hc, 2 * hc, 3, padding=1), nn.GELU(), nn.Conv2d(2 * hc, c, 3, padding=1))
        # The new part: per frame, features and the 64-pixel drawing -> scale^2 sub-pixels each.
        self.up = nn.Sequential(
            nn.Conv2d(hc + c, channels, 3, padding=1), nn.GELU(),
            *[_Residual(channels) for _ in range(blocks)],
            nn.Conv2d(channels, c * scale * scale, 3, padding=1),
        )
        nn.init.zeros_(self.up[-1].weight)
        nn.init.zeros_(self.up[-1].bias)

    @classmethod
    def from_tokenizer(cls, tokenizer, **overrides) -> "TokenUpsampler":
        """A fresh upsampler for `tokenizer`'s tokens, its trunk starting from the tokenizer's decoder."""
        cfg = tokenizer.config
        if getattr(cfg, "motion_head", False):
            raise ValueError("a tokenizer with a motion head is not supported: its decoder draws later frames "
                             "from the first, which this upsampler's trunk does not mirror")
        keys = ("image_size", "in_channels", "patch_size", "temporal_patch_size", "width", "heads",
                "spatial_depth", "temporal_depth", "fsq_levels", "head_channels")
        model = cls(**{k: cfg[k] for k in keys}, **overrides)
        theirs = tokenizer.state_dict()
        missing = [k for k in model.state_dict() if not k.startswith("up.") and k not in theirs]
        if missing:
            raise ValueError(f"the tokenizer lacks these decoder weights: {missing}")
        model.load_state_dict({k: theirs[k] for k in model.state_dict() if not k.startswith("up.")}, strict=False)
        return model

    def matches(self, tokenizer) -> bool:
        """Whether this upsampler reads `tokenizer`'s tokens (same grid, tubelets and code table)."""
        keys = ("image_size", "patch_size", "temporal_patch_size", "fsq_levels")
        return all(list(self.config[k]) == list(tokenizer.config[k]) if k == "fsq_levels"
                   else self.config[k] == tokenizer.config[k] for k in keys)

    @property
    def output_size(self) -> int:
        return self.config.image_size * self.config.scale

    def num_frames(self, latent_frames: int) -> int:
        return 1 + (latent_frames - 1) * self.config.temporal_patch_size

    def features(self, tokens: torch.LongTensor, frames: torch.LongTensor | None = None) -> torch.Tensor:
        """tokens (B, T', g, g) -> per-frame features and 64-pixel drawing (B, T, hc + 3, H, W);
        with `frames` (B, K), only those frames (B, K, hc + 3, H, W)."""
        codes = self.quantizer.indices_to_codes(tokens)
        b, t, g, _, _ = codes.shape
        n, d = g * g, self.config.width
        x = self.from_code(codes.to(self.dtype)).reshape(b, t, n, d)
        if self.dec_temporal is not None:
            x = x + sinusoidal(torch.arange(t, device=x.device), d).to(x.dtype)[None, :, None]
            x = self.dec_temporal(x.transpose(1, 2).reshape(b * n, t, d)).reshape(b, n, t, d).transpose(1, 2)
        x = self.dec_spatial((x + self.dec_spatial_pos).reshape(b * t, n, d)).reshape(b, t, n, d)
        pixels = self._unpatchify(x)  # (b*T, hc, H, W)
        pixels = pixels.reshape(b, -1, *pixels.shape[1:])
        if frames is not None:  # before the convolutions: training draws a few frames a clip
            pixels = pixels[torch.arange(b, device=pixels.device)[:, None], frames]
        pixels = pixels.flatten(0, 1)
        both = torch.cat([pixels, self.head(pixels)], dim=1)
        return both.reshape(b, -1, *both.shape[1:])

    def draw(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame features (N, hc + 3, H, W) -> frames (N, 3, sH, sW), unclamped."""
        c, s = self.config.in_channels, self.config.scale
        base = F.interpolate(features[:, -c:], scale_factor=s, mode="bilinear", align_corners=False)
        return base + F.pixel_shuffle(self.up(features), s)

    def forward(self, tokens: torch.LongTensor, frames: torch.LongTensor | None = None) -> torch.Tensor:
        """tokens (B, T', g, g) -> video (B, 3, T, sH, sW), unclamped. `frames` (B, K) draws only
        those frames of each clip (B, 3, K, sH, sW): training needs a few per clip, not all."""
        feats = self.features(tokens, frames)
        b, t = feats.shape[:2]
        video = self.draw(feats.flatten(0, 1))
        return video.reshape(b, t, *video.shape[1:]).transpose(1, 2)

    @torch.no_grad()
    def detokenize(self, tokens: torch.LongTensor) -> torch.Tensor:
        """tokens (B, T', g, g) -> video (B, 3, T, sH, sW) in [-1, 1]."""
        return self(tokens).clamp(-1, 1)

    def _unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """Token features (b, T', g*g, width) -> per-pixel features (b * T, hc, H, W); as C-ViViT's."""
        b, t = x.shape[:2]
        p, tp, g = self.config.patch_size, self.config.temporal_patch_size, self.grid
        image_frames = t if tp == 1 else 1
        images = self.unembed_image(x[:, :image_frames]).reshape(b, image_frames, g, g, -1, p, p)
        frames = images.permute(0, 1, 2, 5, 3, 6, 4)
        if image_frames < t:
            rest = self.unembed_tubelet(x[:, 1:]).reshape(b, t - 1, g, g, -1, tp, p, p)
            rest = rest.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, (t - 1) * tp, g, p, g, p, -1)
            frames = torch.cat([frames, rest], dim=1)
        return frames.reshape(b * frames.shape[1], g * p, g * p, -1).permute(0, 3, 1, 2)


def upscale_video(video: torch.Tensor, size: int, mode: str = "bicubic") -> torch.Tensor:
    """video (B, C, T, H, W) in [-1, 1] -> (B, C, T, size, size) by a plain upscaler
    ('nearest', 'bilinear' or 'bicubic'; antialiased when shrinking), clamped to [-1, 1]."""
    if mode not in ("nearest", "bilinear", "bicubic"):
        raise ValueError(f"unknown upscaling mode {mode!r}; expected nearest, bilinear or bicubic")
    b, c, t, h, w = video.shape
    if (h, w) == (size, size):
        return video
    frames = video.transpose(1, 2).reshape(b * t, c, h, w).float()
    smooth = {} if mode == "nearest" else {"align_corners": False, "antialias": size < h}
    frames = F.interpolate(frames, size=(size, size), mode="nearest-exact" if mode == "nearest" else mode, **smooth)
    return frames.reshape(b, t, c, size, size).transpose(1, 2).clamp(-1, 1).to(video.dtype)


@torch.no_grad()
def decode_tokens(vqvae, tokens: torch.LongTensor, size: int | None = None, upsampler: "TokenUpsampler | None" = None,
                  mode: str = "bicubic") -> torch.Tensor:
    """tokens (B, T', g, g) -> video (B, 3, T, size, size) in [-1, 1]: drawn by `upsampler` when
    it draws these tokens at exactly `size`, else the tokenizer's own drawing upscaled by `mode`
    (a model without an upsampler, or a size it does not draw). size None: the tokenizer's size."""
    size = size or vqvae.config.image_size
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if upsampler is not None and upsampler.output_size == size and upsampler.matches(vqvae):
        return upsampler.detokenize(tokens.to(upsampler.device))
    return upscale_video(vqvae.detokenize(tokens), size, mode)


def to_frames(video: torch.Tensor) -> np.ndarray:
    """(B, 3, T, H, W) in [-1, 1] -> uint8 (B, T, H, W, 3), as the pipeline hands frames out."""
    return ((video.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()


def redraw_segment(vqvae, clip_tokens: list, context_lengths: list[int], num_frames: int, size: int,
                   upsampler: "TokenUpsampler | None" = None, mode: str = "bicubic") -> np.ndarray:
    """A rendered story segment's frames drawn again at `size` from its tokens: each clip's
    frames after the `context_lengths[i]` context frames it continued, in order, the first
    `num_frames` of them; uint8 (num_frames, size, size, 3). The story engine keeps each
    clip's token grid; with how many context frames each clip began, an export at 256 needs
    no resampling at 64 at all."""
    if len(clip_tokens) != len(context_lengths):
        raise ValueError(f"{len(clip_tokens)} clips but {len(context_lengths)} context lengths")
    frames = []
    for tokens, skip in zip(clip_tokens, context_lengths):
        tokens = tokens if tokens.dim() == 4 else tokens[None]
        frames.append(to_frames(decode_tokens(vqvae, tokens.to(vqvae.device), size, upsampler, mode))[0, skip:])
    frames = np.concatenate(frames)
    if len(frames) < num_frames:
        raise ValueError(f"the clips hold {len(frames)} new frames, fewer than the segment's {num_frames}")
    return frames[:num_frames]
