"""PhenakiPipeline: text -> tokens (MaskGIT sampling) -> frames (C-ViViT decoder).

One clip is the unit of generation. A prompt list is a story: it is handed to the story
engine (story.py), which calls `generate_clip` once per clip, each continuing from the
re-encoded last frames of the one before.
"""
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils import BaseOutput

from ..models import CViViT, MaskGitTransformer
from ..schedulers import MaskGitScheduler
from ..text import TextEncoder

# Classifier-free guidance unless a caller says otherwise: 2 scored best on the shipped
# model (its card has the sweep); stronger guidance pushed samples off the tokenizer's manifold.
DEFAULT_GUIDANCE = 2.0


@dataclass
class PhenakiPipelineOutput(BaseOutput):
    """frames: uint8 (T, H, W, 3) for "np", a list of PIL images for "pil", float (3, T, H, W)
    in [-1, 1] for "pt"; tokens: the token grid of every clip that made the video."""

    frames: object
    tokens: list


class PhenakiPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->transformer->vqvae"

    def __init__(self, text_encoder: TextEncoder, vqvae: CViViT, transformer: MaskGitTransformer,
                 scheduler: MaskGitScheduler, fps: int = 8):
        super().__init__()
        self.register_modules(text_encoder=text_encoder, vqvae=vqvae, transformer=transformer, scheduler=scheduler)
        self.register_to_config(fps=fps)  # the frame rate the model was trained at
        self._encode_cached = lru_cache(maxsize=256)(self._encode_one)

    # -- facts about the model the callers need -------------------------------------
    @property
    def clip_frames(self) -> int:
        return self.vqvae.num_frames(self.transformer.config.latent_frames)

    @property
    def frame_size(self) -> int:
        return self.vqvae.config.image_size

    @property
    def fps(self) -> int:
        return self.config.fps

    @property
    def revision(self) -> str:
        """A fingerprint of everything that decides the frames: the weights as loaded (dtype
        included) and the scheduler's settings. A story sidecar records it, so re-rendering
        on other weights, e.g. after the shipped model was retrained, is told, not silent."""
        settings = {k: v for k, v in self.scheduler.config.items() if not k.startswith("_")}  # not load bookkeeping
        h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
        for module in (self.text_encoder, self.vqvae, self.transformer):
            for name, tensor in module.state_dict().items():
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return h.hexdigest()[:12]

    # -- text -----------------------------------------------------------------------
    def _encode_one(self, prompt: str, device, dtype):
        states, mask = self.text_encoder.encode([prompt])
        return states.to(device, dtype), mask.to(device)

    def encode_prompt(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-prompt states, padded to one length; cached, since stories repeat prompts."""
        device, dtype = self.transformer.device, self.transformer.dtype
        encoded = [self._encode_cached(p, device, dtype) for p in prompts]
        length = max(s.shape[1] for s, _ in encoded)
        states = torch.zeros(len(prompts), length, encoded[0][0].shape[-1], device=device, dtype=dtype)
        mask = torch.zeros(len(prompts), length, dtype=torch.bool, device=device)
        for i, (s, m) in enumerate(encoded):
            states[i, : s.shape[1]], mask[i, : m.shape[1]] = s[0], m[0]
        return states, mask

    # -- one clip -------------------------------------------------------------------
    @torch.no_grad()
    def sample_tokens(self, prompts, prefix_tokens=None, num_inference_steps=12, guidance_scale=DEFAULT_GUIDANCE,
                      generator=None, callback_on_step_end=None):
        """MaskGIT decoding of one clip per prompt; `prefix_tokens` (B, P, g, g) stay frozen."""
        states, mask = self.encode_prompt(prompts)
        b, g = len(prompts), self.vqvae.grid
        mask_id = self.transformer.mask_token_id
        tokens = torch.full((b, self.transformer.config.latent_frames, g, g), mask_id, device=states.device)
        if prefix_tokens is not None:
            tokens[:, : prefix_tokens.shape[1]] = prefix_tokens.to(tokens.device)
        # Conditional and null text in one batched forward, where a step is guided.
        both_states, both_mask = torch.cat([states, states]), torch.cat([mask, mask])
        drop = torch.arange(2 * b, device=states.device) >= b
        self.scheduler.set_timesteps(num_inference_steps, device=states.device)
        self._interrupt = False
        for i in self.progress_bar(range(len(self.scheduler.timesteps))):  # refinement steps included
            unknown = tokens == mask_id  # logits where still masked: the rest are settled
            scale = self.scheduler.guidance(i, guidance_scale)
            if scale != 1.0:
                both, at = torch.cat([tokens, tokens]), torch.cat([unknown, unknown])
                cond, null = self.transformer(both, both_states, both_mask, drop, logits_at=at).float().chunk(2)
                logits = null + scale * (cond - null)
            else:
                logits = self.transformer(tokens, states, mask, logits_at=unknown).float()
            tokens = self.scheduler.step(logits, i, tokens, generator)
            if callback_on_step_end is not None:
                callback_on_step_end(self, i, self.scheduler.timesteps[i], {"tokens": tokens})
            if self._interrupt:
                raise InterruptedError("generation was cancelled")
        return tokens

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray) -> torch.LongTensor:
        """uint8 frames (T, H, W, 3), T = 1 + k*tp -> tokens (1, T', g, g)."""
        video = torch.from_numpy(np.ascontiguousarray(frames)).to(self.vqvae.device)
        video = video.permute(3, 0, 1, 2)[None].to(self.vqvae.dtype) / 127.5 - 1
        return self.vqvae.tokenize(video)

    @torch.no_grad()
    def decode_tokens(self, tokens: torch.LongTensor) -> np.ndarray:
        """tokens (B, T', g, g) -> uint8 frames (B, T, H, W, 3)."""
        video = self.vqvae.detokenize(tokens).float()
        return ((video + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()

    def generate_clip(self, prompt: str, context_frames: np.ndarray | None = None, **sampling):
        """One clip under `prompt`, continuing `context_frames` (uint8) when given.
        Returns (all frames of the clip, context reconstructions included; tokens)."""
        prefix = None if context_frames is None else self.encode_frames(context_frames)
        tokens = self.sample_tokens([prompt], prefix, **sampling)
        return self.decode_tokens(tokens)[0], tokens[0]

    # -- the diffusers entry point ---------------------------------------------------
    @torch.no_grad()
    def __call__(self, prompt: str | list[str], num_frames: int | None = None, num_inference_steps: int = 12,
                 guidance_scale: float = DEFAULT_GUIDANCE, generator: torch.Generator | None = None, output_type: str = "np",
                 callback_on_step_end=None, seed: int | None = None, context_frames: int = 5):
        """A string is one segment; a list is a story, one segment per prompt, each
        `num_frames` long (default: one clip) and continuing from the one before."""
        from .story import Segment, Story, render_story

        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
        story = Story(
            segments=[Segment(p, num_frames or self.clip_frames, seed + i) for i, p in enumerate(prompts)],
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, context_frames=context_frames,
        )
        rendered = render_story(self, story, callback_on_step_end=callback_on_step_end)
        frames = np.concatenate([r.frames for r in rendered])
        tokens = [t for r in rendered for t in r.tokens]
        if output_type == "pil":
            from PIL import Image

            frames = [Image.fromarray(f) for f in frames]
        elif output_type == "pt":
            frames = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1
        elif output_type != "np":
            raise ValueError(f"output_type must be 'np', 'pil' or 'pt', got {output_type!r}")
        return PhenakiPipelineOutput(frames=frames, tokens=tokens)
