"""C-ViViT: the causal video tokenizer of Phenaki (Villegas et al., 2022, section 2.1).

Encoder: the first frame is cut into p x p patches, every later group of `tp` frames into
tp x p x p tubelets; each is linearly embedded; a spatial transformer attends within each
time step, then a temporal transformer attends across time steps under a causal mask;
finite scalar quantization gives the tokens. The decoder mirrors it: temporal (causal),
then spatial, then a head that turns each token back into its patch or tubelet.

With one-frame tubelets (tp = 1) every frame goes through the first frame's embedding and
head: a later frame is then encoded and drawn the way an image is, so what only images
show (outlined shapes) has a way into video tokens.

With a motion head (ours, not the paper's), each later frame may also be drawn as the first
frame moved by a flow the decoder predicts, blended per pixel with the head's own drawing.
A moving object then keeps the look its first frame gives it, including a look that no
training video shows (outlined shapes exist only in images): the first frame is coded
through the image path, which images train, and the later frames only have to say where
it went.

Causality: a token of time step t sees frames up to t only, so any length 1 + k*tp
encodes, an image is a one-frame video, and a prefix encodes the same alone or inside a
longer clip (the story engine relies on this).
"""
from typing import NamedTuple

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .blocks import Transformer, sinusoidal
from .quantizer import FSQ


class CViViT(ModelMixin, ConfigMixin):
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
        motion_head: bool = False,
    ):
        super().__init__()
        p, tp, c = patch_size, temporal_patch_size, in_channels
        if image_size % p:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {p}")
        self.grid = image_size // p
        self.quantizer = FSQ(list(fsq_levels))

        # Encoder
        self.embed_image = nn.Linear(c * p * p, width)
        self.embed_tubelet = nn.Linear(c * tp * p * p, width) if tp > 1 else None
        self.enc_spatial_pos = nn.Parameter(torch.randn(1, self.grid**2, width) * 0.02)
        self.enc_spatial = Transformer(width, spatial_depth, heads)
        self.enc_temporal = Transformer(width, temporal_depth, heads, causal=True) if temporal_depth else None
        self.to_code = nn.Linear(width, self.quantizer.dim)

        # Decoder, the mirror image
        self.from_code = nn.Linear(self.quantizer.dim, width)
        self.dec_temporal = Transformer(width, temporal_depth, heads, causal=True) if temporal_depth else None
        self.dec_spatial_pos = nn.Parameter(torch.randn(1, self.grid**2, width) * 0.02)
        self.dec_spatial = Transformer(width, spatial_depth, heads)
        # Each token unfolds into per-pixel features that a small per-frame convolution
        # sharpens: a bare linear patch head leaves blocky edges and halos that break the
        # shapes (compute notes). Per-frame 2-D convolutions keep the decoder causal.
        hc = head_channels or c
        self.unembed_image = nn.Linear(width, hc * p * p)
        self.unembed_tubelet = nn.Linear(width, hc * tp * p * p) if tp > 1 else None
        self.head = (
            nn.Sequential(nn.Conv2d(hc, 2 * hc, 3, padding=1), nn.GELU(), nn.Conv2d(2 * hc, c, 3, padding=1))
            if head_channels
            else nn.Identity()
        )
        # The flow of a later frame: one affine motion of the whole frame (what a camera pan
        # or zoom, and Shapes World's one object, do), read from the frame's tokens by a learned
        # attention pooling, plus a flow per token (in patches, so its scale does not depend on
        # the frame size) for what moves on its own; and per token, the logit of the weight of
        # the moved first frame against the head's drawing. Both spread over the pixels
        # bilinearly: a per-pixel flow came out noisy inside the object and smeared a ring into
        # a blob. All zero at init: no motion, an even blend.
        if motion_head:
            self.motion = nn.Linear(width, 3 * tp)
            self.motion_pool = nn.Linear(width, tp)
            self.motion_affine = nn.Linear(width, 6)
            for layer in (self.motion, self.motion_affine):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        else:
            self.motion = None

    @classmethod
    def per_frame_baseline(cls, **kwargs) -> "CViViT":
        """Table 3's per-frame tokenizer: same blocks, every frame its own tokens, no temporal model."""
        return cls(**{**kwargs, "temporal_patch_size": 1, "temporal_depth": 0})

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def latent_frames(self, num_frames: int) -> int:
        tp = self.config.temporal_patch_size
        if num_frames < 1 or (num_frames - 1) % tp:
            raise ValueError(f"C-ViViT takes 1 + k*{tp} frames, got {num_frames}")
        return 1 + (num_frames - 1) // tp

    def num_frames(self, latent_frames: int) -> int:
        return 1 + (latent_frames - 1) * self.config.temporal_patch_size

    # -- encoder --------------------------------------------------------------------
    def _patchify(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        p, tp, g = self.config.patch_size, self.config.temporal_patch_size, self.grid
        if h != self.config.image_size or w != self.config.image_size:
            raise ValueError(f"C-ViViT was built for {self.config.image_size}px frames, got {h}x{w}")
        self.latent_frames(t)
        image_frames = t if tp == 1 else 1  # frames embedded as images
        images = video[:, :, :image_frames].reshape(b, c, image_frames, g, p, g, p)
        x = self.embed_image(images.permute(0, 2, 3, 5, 1, 4, 6).reshape(b, image_frames, g * g, -1))
        if image_frames == t:
            return x
        rest = video[:, :, 1:].reshape(b, c, (t - 1) // tp, tp, g, p, g, p)
        rest = rest.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, (t - 1) // tp, g * g, -1)
        return torch.cat([x, self.embed_tubelet(rest)], dim=1)

    def _encode_latents(self, video: torch.Tensor) -> torch.Tensor:
        x = self._patchify(video.to(self.dtype))  # (b, t', g*g, d)
        b, t, n, d = x.shape
        x = self.enc_spatial((x + self.enc_spatial_pos).reshape(b * t, n, d)).reshape(b, t, n, d)
        if self.enc_temporal is not None:
            x = x + sinusoidal(torch.arange(t, device=x.device), d).to(x.dtype)[None, :, None]
            x = self.enc_temporal(x.transpose(1, 2).reshape(b * n, t, d)).reshape(b, n, t, d).transpose(1, 2)
        return self.to_code(x).reshape(b, t, self.grid, self.grid, -1)

    def encode(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """video (B, C, T, H, W) in [-1, 1] -> (quantized codes (B, T', g, g, dim), tokens (B, T', g, g))."""
        return self.quantizer(self._encode_latents(video))

    def tokenize(self, video: torch.Tensor) -> torch.LongTensor:
        return self.encode(video)[1]

    # -- decoder --------------------------------------------------------------------
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, T', g, g, dim) -> video (B, C, T, H, W), unclamped."""
        return self._draw(codes)[0]

    def _draw(self, codes: torch.Tensor) -> tuple[torch.Tensor, "MotionCompensation | None"]:
        b, t, g, _, _ = codes.shape
        n, d = g * g, self.config.width
        x = self.from_code(codes.to(self.dtype)).reshape(b, t, n, d)
        if self.dec_temporal is not None:
            x = x + sinusoidal(torch.arange(t, device=x.device), d).to(x.dtype)[None, :, None]
            x = self.dec_temporal(x.transpose(1, 2).reshape(b * n, t, d)).reshape(b, n, t, d).transpose(1, 2)
        x = self.dec_spatial((x + self.dec_spatial_pos).reshape(b * t, n, d)).reshape(b, t, n, d)
        video = self.head(self._unpatchify(x))
        video = video.reshape(b, -1, *video.shape[1:]).transpose(1, 2)  # b, c, T, H, W
        if self.motion is None or t == 1:
            return video, None
        tp, size = self.config.temporal_patch_size, video.shape[-1]
        later = x[:, 1:]
        motion = self.motion(later).float().reshape(b, t - 1, g, g, tp, 3)
        motion = motion.permute(0, 1, 4, 5, 2, 3).reshape(b * (t - 1) * tp, 3, g, g)
        motion = F.interpolate(motion, size=(size, size), mode="bilinear", align_corners=False)
        motion = motion.reshape(b, (t - 1) * tp, 3, size, size).transpose(1, 2)  # b, 3, T-1, H, W
        where = self.motion_pool(later).float().softmax(dim=2)  # b, t-1, n, tp
        pooled = torch.einsum("btnk,btnd->btkd", where, later.float()).to(later.dtype)
        affine = self.motion_affine(pooled).float().reshape(b, (t - 1) * tp, 6)
        return self._compensate(video, motion, affine)

    def _compensate(self, video: torch.Tensor, motion: torch.Tensor, affine: torch.Tensor
                    ) -> tuple[torch.Tensor, "MotionCompensation"]:
        """Later frames = w * (the first frame moved) + (1 - w) * the head's drawing.

        Pixel x of frame t shows the first frame's pixel at (I + A) x + b - f(x), with x from
        the frame's centre: `affine` (B, T-1, 6) holds A (row-major) and b (in patches),
        `motion` (B, 3, T-1, H, W) the per-token flow f (in patches) and the weight's logit."""
        b, c, t, h, w = video.shape
        p = self.config.patch_size
        ys, xs = torch.meshgrid(torch.arange(h, device=video.device), torch.arange(w, device=video.device), indexing="ij")
        centred = torch.stack([xs - (w - 1) / 2, ys - (h - 1) / 2], -1).float()  # H, W, (x, y)
        matrix = affine[..., :4].reshape(b, t - 1, 1, 1, 2, 2)
        source = centred + (matrix @ centred[..., None]).squeeze(-1) + p * affine[..., None, None, 4:]
        source = source - p * motion[:, :2].permute(0, 2, 3, 4, 1)  # b, T-1, H, W, 2
        grid = 2 * source / torch.tensor([w, h], device=video.device)  # centred pixels -> [-1, 1]
        # Detached: the first frame is what the image path draws (and images train); moving it
        # well is the flow's job, not a reason to draw it otherwise.
        first = video[:, :, 0].detach().float()
        moved = F.grid_sample(first.repeat_interleave(t - 1, 0), grid.flatten(0, 1), mode="bilinear",
                              padding_mode="border", align_corners=False)
        moved = moved.reshape(b, t - 1, c, h, w).transpose(1, 2)
        weight = torch.sigmoid(motion[:, 2:])
        later = weight * moved + (1 - weight) * video[:, :, 1:].float()
        video = torch.cat([video[:, :, :1], later.to(video.dtype)], dim=2)
        return video, MotionCompensation(moved, weight)

    def _unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """Token features (b, T', g*g, width) -> per-pixel features (b * T, hc, H, W) for the head."""
        b, t, n, _ = x.shape
        p, tp, g = self.config.patch_size, self.config.temporal_patch_size, self.grid
        # Pixels are laid out channels-last (b, T, H, W, hc): the head's convolutions run
        # about 20% faster on CPU in that layout, and it costs no extra copy.
        image_frames = t if tp == 1 else 1  # frames drawn by the image head
        images = self.unembed_image(x[:, :image_frames]).reshape(b, image_frames, g, g, -1, p, p)
        frames = images.permute(0, 1, 2, 5, 3, 6, 4)  # b, T, g, p, g, p, hc
        if image_frames < t:
            rest = self.unembed_tubelet(x[:, 1:]).reshape(b, t - 1, g, g, -1, tp, p, p)
            rest = rest.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, (t - 1) * tp, g, p, g, p, -1)
            frames = torch.cat([frames, rest], dim=1)  # b, T, g, p, g, p, hc
        return frames.reshape(b * frames.shape[1], g * p, g * p, -1).permute(0, 3, 1, 2)

    def detokenize(self, tokens: torch.LongTensor) -> torch.Tensor:
        """tokens (B, T', g, g) -> video (B, C, T, H, W) in [-1, 1]."""
        return self.decode(self.quantizer.indices_to_codes(tokens)).clamp(-1, 1)

    def forward(self, video: torch.Tensor, tokens: torch.LongTensor | None = None
                ) -> tuple[torch.Tensor, torch.LongTensor, "MotionCompensation | None"]:
        """Reconstruction for training: (video, tokens, the motion head's parts or None),
        gradients straight through the quantizer. Given `tokens`, the decoder draws those
        instead of the video's own (a decoder trained on other tokens, such as a
        transformer's); through forward, so a distributed wrapper still sees the step."""
        if tokens is not None:
            video, motion = self._draw(self.quantizer.indices_to_codes(tokens))
            return video, tokens, motion
        codes, tokens = self.encode(video)
        video, motion = self._draw(codes)
        return video, tokens, motion


class MotionCompensation(NamedTuple):
    """What the motion head drew, for its losses: the first frame moved to each later frame
    (B, C, T-1, H, W), and the weight each pixel gave it (B, 1, T-1, H, W)."""

    moved: torch.Tensor
    weight: torch.Tensor

