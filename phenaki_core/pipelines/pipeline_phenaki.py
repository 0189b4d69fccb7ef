"""PhenakiPipeline: text -> tokens (MaskGIT sampling) -> frames (C-ViViT decoder).

One clip is the unit of generation; `num_frames` longer than a clip continues the same
prompt from the re-encoded last frames, as Phenaki does. The pipeline knows nothing of
stories: the story engine (`phenaki_core.story`) sits above it and calls `generate_clip`,
`encode_frames`, `decode_tokens` and the facts below (`clip_frames`, `fps`, ...).

`__call__` follows diffusers' video pipelines (TextToVideoSDPipeline, CogVideoXPipeline):
a list of prompts is a batch; `.frames` is float32 in [0, 1] shaped (batch, frames, H, W, 3)
for "np", so `export_to_video(pipe(prompt).frames[0], path, fps=pipe.fps)` writes the clip.

Everything one call accumulates (the scheduler's state, the interrupt flag, the step count)
lives in that call or in a per-thread slot, never on a shared object: two threads sharing
one pipeline get exactly the frames each would get alone.
"""
import hashlib
import json
import math
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils import BaseOutput

from ..io import MAX_SIZE
from ..models import CViViT, MaskGitTransformer
from ..models.upsampler import TokenUpsampler, decode_tokens, redraw_segment, to_frames
from ..schedulers import MaskGitScheduler
from ..text import TextEncoder
from .defaults import DEFAULT_CONTEXT_FRAMES, DEFAULT_GUIDANCE, DEFAULT_STEPS

OUTPUT_TYPES = ("np", "pil", "pt", "latent")
# Sizes the model does not draw itself are its own frames upscaled by this filter: smooth,
# and what the token upsampler's fallback (models/upsampler.py, decode_tokens) uses.
UPSCALE_MODE = "bicubic"


def _weights_digest(seed: bytes, modules) -> str:
    h = hashlib.sha256(seed)
    for module in modules:
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]


class GenerationInterrupted(InterruptedError):
    """Sampling stopped because a callback set `pipe._interrupt = True` (MaskGIT tokens that
    are still masked cannot be decoded, so an interrupted call returns nothing)."""


@dataclass
class PhenakiPipelineOutput(BaseOutput):
    """frames: "np": float32 (B, F, H, W, 3) in [0, 1] (the model's 8-bit frames / 255);
    "pil": B lists of F images; "pt": float32 (B, F, 3, H, W) in [0, 1];
    "latent": the token grids, LongTensor (B, clips, T', g, g), one grid per clip made."""

    frames: object


class PhenakiPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->transformer->vqvae->upsampler"
    _callback_tensor_inputs = ["tokens", "logits"]
    # A second decoder of the same tokens at a larger size (models/upsampler.py): a model
    # folder has it or not, and one without it upscales instead.
    _optional_components = ["upsampler"]  # noqa: RUF012 (a list, as diffusers declares it)

    def __init__(self, text_encoder: TextEncoder, vqvae: CViViT, transformer: MaskGitTransformer,
                 scheduler: MaskGitScheduler, fps: int = 8, upsampler: TokenUpsampler | None = None):
        super().__init__()
        if upsampler is not None and not upsampler.matches(vqvae):
            raise ValueError("the upsampler reads other tokens than this tokenizer makes (its grid, tubelets or "
                             "code table differ): it belongs to another model")
        self.register_modules(text_encoder=text_encoder, vqvae=vqvae, transformer=transformer, scheduler=scheduler,
                              upsampler=upsampler)
        self.register_to_config(fps=fps)  # the frame rate the model was trained at
        self._encode_cached = lru_cache(maxsize=256)(self._encode_one)
        self._per_call = threading.local()  # interrupt flag, step count: one per calling thread

    # A copy (deepcopy, pickle) gets its own prompt cache and per-thread slot: the cache is
    # bound to the pipeline it encodes with, and thread-local slots cannot be copied.
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_encode_cached", None)
        state.pop("_per_call", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._encode_cached = lru_cache(maxsize=256)(self._encode_one)
        self._per_call = threading.local()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, dtype: torch.dtype | None = None, **kwargs):
        """diffusers' loader, offline and safetensors only; `dtype=` and `torch_dtype=` both
        work (diffusers 0.42 deprecates the second with a warning; both mean the same here)."""
        torch_dtype = kwargs.pop("torch_dtype", None)
        if dtype is not None and torch_dtype is not None and dtype != torch_dtype:
            raise ValueError("pass dtype= or torch_dtype=, not both")
        kwargs.setdefault("use_safetensors", True)
        dtype = dtype or torch_dtype
        if dtype is not None:
            kwargs["dtype"] = dtype
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    # -- facts about the model; the story engine, the CLI and the studio ask these ---------
    @property
    def clip_frames(self) -> int:
        """Frames in one generated clip."""
        return self.vqvae.num_frames(self.transformer.config.latent_frames)

    @property
    def frame_size(self) -> int:
        """The side of the frames the model samples (and continues from)."""
        return self.vqvae.config.image_size

    @property
    def drawn_sizes(self) -> tuple[int, ...]:
        """Frame sizes the model draws itself from its tokens: its frame size, and its
        upsampler's when it has one. Every other size is an upscale of its frames."""
        up = getattr(self, "upsampler", None)
        return tuple(sorted({self.frame_size} | ({up.output_size} if up is not None else set())))

    @property
    def codebook_size(self) -> int:
        """How many codes the tokenizer has: every token of a clip is below it."""
        return self.vqvae.codebook_size

    @property
    def clip_token_shape(self) -> tuple[int, int, int]:
        """The shape of one clip's token grid (latent frames, grid, grid), as `generate_clip`
        returns it and `draw_clips` reads it."""
        g = self.vqvae.grid
        return (self.transformer.config.latent_frames, g, g)

    @property
    def fps(self) -> int:
        """The frame rate the model was trained at."""
        return self.config.fps

    @property
    def temporal_patch_size(self) -> int:
        """Frames per latent step after the first: a context of 1 + n*this frames encodes whole."""
        return self.vqvae.config.temporal_patch_size

    @property
    def max_prompt_tokens(self) -> int:
        """The text encoder keeps this many tokens of a prompt (its one owner is the encoder)."""
        return self.text_encoder.max_prompt_tokens

    def prompt_tokens(self, prompt: str) -> int:
        """How many tokens the text encoder makes of `prompt` (compare with max_prompt_tokens)."""
        return self.text_encoder.count_tokens(prompt)

    @property
    def model_name(self) -> str:
        """The folder name the pipeline was loaded from ("" when built in memory)."""
        return Path(self.name_or_path).name if self.name_or_path else ""

    @property
    def revision(self) -> str:
        """A fingerprint of everything that decides the frames: the weights as loaded (dtype
        included) and the scheduler's settings. A story sidecar records it, so re-rendering
        on other weights, e.g. after the shipped model was retrained, is told, not silent."""
        settings = {k: v for k, v in self.scheduler.config.items() if not k.startswith("_")}  # not load bookkeeping
        return _weights_digest(json.dumps(settings, sort_keys=True).encode(),
                               (self.text_encoder, self.vqvae, self.transformer))

    @property
    def tokenizer_revision(self) -> str:
        """A fingerprint of the tokenizer's weights as loaded (dtype included): what a token
        means. Tokens kept from a render (a studio take) are drawn again only by a tokenizer
        with the same fingerprint; retrained weights make the same shapes mean other pictures."""
        return _weights_digest(b"tokenizer", (self.vqvae,))

    # -- per-call state, kept per thread (diffusers' properties, made safe to share) --------
    @property
    def interrupt(self) -> bool:
        return getattr(self._per_call, "interrupt", False)

    @property
    def _interrupt(self) -> bool:
        return self.interrupt

    @_interrupt.setter
    def _interrupt(self, value: bool):
        """diffusers' documented way to stop: a callback sets `pipe._interrupt = True`.
        It stops the call running in the callback's thread, and no other."""
        self._per_call.interrupt = bool(value)

    @property
    def num_timesteps(self) -> int:
        """Transformer forwards per clip in the current call (MaskGIT and refinement steps)."""
        return getattr(self._per_call, "num_timesteps", 0)

    def _onload(self, module):
        """Under enable_model_cpu_offload, bring `module` to the accelerator before calling a
        method other than forward (what diffusers' `apply_forward_hook` does for its VAEs)."""
        hook = getattr(module, "_hf_hook", None)
        if hook is not None and hasattr(hook, "pre_forward"):
            hook.pre_forward(module)

    # -- text -----------------------------------------------------------------------------
    def _encode_one(self, prompt: str, device, dtype):
        if self.text_encoder.count_tokens(prompt) > self.max_prompt_tokens:
            warnings.warn(f"the prompt {prompt[:40]!r}... is {self.text_encoder.count_tokens(prompt)} tokens; the text "
                          f"encoder keeps the first {self.max_prompt_tokens} and ignores the rest", stacklevel=4)
        self._onload(self.text_encoder)
        states, mask = self.text_encoder.encode([prompt])
        return states.to(device, dtype), mask.to(device)

    def encode_prompt(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-prompt states, padded to one length; cached, since stories repeat prompts."""
        device, dtype = self._execution_device, self.transformer.dtype
        encoded = [self._encode_cached(p, device, dtype) for p in prompts]
        length = max(s.shape[1] for s, _ in encoded)
        states = torch.zeros(len(prompts), length, encoded[0][0].shape[-1], device=device, dtype=dtype)
        mask = torch.zeros(len(prompts), length, dtype=torch.bool, device=device)
        for i, (s, m) in enumerate(encoded):
            states[i, : s.shape[1]], mask[i, : m.shape[1]] = s[0], m[0]
        return states, mask

    # -- one clip ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample_tokens(self, prompts, prefix_tokens=None, num_inference_steps=DEFAULT_STEPS,
                      guidance_scale=DEFAULT_GUIDANCE, generator=None, callback_on_step_end=None,
                      negative_prompts=None, callback_on_step_end_tensor_inputs=("tokens",), progress_bar=None):
        """MaskGIT decoding of one clip per prompt; `prefix_tokens` (B, P, g, g) stay frozen.

        `negative_prompts` (one per prompt) take the place of the learned null text in
        classifier-free guidance. `progress_bar`: a bar to advance (a new one when None)."""
        if progress_bar is None:
            with self.progress_bar(total=self.scheduler.num_timesteps(num_inference_steps)) as bar:
                return self.sample_tokens(prompts, prefix_tokens, num_inference_steps, guidance_scale, generator,
                                          callback_on_step_end, negative_prompts, callback_on_step_end_tensor_inputs, bar)
        b = len(prompts)
        if negative_prompts is not None:
            states, mask = self.encode_prompt(list(prompts) + list(negative_prompts))
            both_states, both_mask = states, mask
            states, mask = states[:b], mask[:b]
            drop = None
        else:
            states, mask = self.encode_prompt(prompts)
            # Conditional and null text in one batched forward, where a step is guided.
            both_states, both_mask = torch.cat([states, states]), torch.cat([mask, mask])
            drop = torch.arange(2 * b, device=states.device) >= b
        g, mask_id = self.vqvae.grid, self.transformer.mask_token_id
        tokens = torch.full((b, self.transformer.config.latent_frames, g, g), mask_id, device=states.device)
        if prefix_tokens is not None:
            tokens[:, : prefix_tokens.shape[1]] = prefix_tokens.to(tokens.device)
        state = self.scheduler.create_state(num_inference_steps, device=states.device)
        self._per_call.interrupt = False
        self._per_call.num_timesteps = len(state.timesteps)
        self._onload(self.transformer)
        for i, t in enumerate(state.timesteps):  # refinement steps included
            unknown = tokens == mask_id  # logits where still masked: the rest are settled
            scale = self.scheduler.guidance(i, guidance_scale, num_inference_steps)
            if scale != 1.0:
                both, at = torch.cat([tokens, tokens]), torch.cat([unknown, unknown])
                cond, null = self.transformer(both, both_states, both_mask, drop, logits_at=at).float().chunk(2)
                logits = null + scale * (cond - null)
            else:
                logits = self.transformer(tokens, states, mask, logits_at=unknown).float()
            tokens, state = self.scheduler.step(logits, i, tokens, generator, state=state, return_dict=False)
            if callback_on_step_end is not None:
                local = {"tokens": tokens, "logits": logits}
                returned = callback_on_step_end(self, i, t, {k: local[k] for k in callback_on_step_end_tensor_inputs})
                if returned:
                    tokens = returned.pop("tokens", tokens)
            progress_bar.update()
            if self.interrupt:
                raise GenerationInterrupted("generation was cancelled")
        return tokens

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray) -> torch.LongTensor:
        """uint8 frames (T, H, W, 3) or (B, T, H, W, 3), T = 1 + k*tp -> tokens (B, T', g, g)."""
        frames = np.ascontiguousarray(frames)
        video = torch.from_numpy(frames if frames.ndim == 5 else frames[None]).to(self._execution_device)
        video = video.permute(0, 4, 1, 2, 3).to(self.vqvae.dtype) / 127.5 - 1
        self._onload(self.vqvae)
        return self.vqvae.tokenize(video)

    @torch.no_grad()
    def decode_tokens(self, tokens: torch.LongTensor, size: int | None = None) -> np.ndarray:
        """tokens (B, T', g, g) -> uint8 frames (B, T, size, size, 3), on the CPU. size None:
        the model's frame size, drawn by the tokenizer; the upsampler's size: drawn by it;
        any other: the tokenizer's frames upscaled (UPSCALE_MODE)."""
        size = self.check_size(size, size)
        self._onload(self.vqvae)
        if size == self.frame_size:
            video = self.vqvae.detokenize(tokens.to(self._execution_device)).float()
            return ((video + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()
        if self.upsampler is not None:
            self._onload(self.upsampler)
        return to_frames(decode_tokens(self.vqvae, tokens.to(self._execution_device), size, self.upsampler, UPSCALE_MODE))

    def check_size(self, height: int | None = None, width: int | None = None) -> int:
        """The frame side a call asks for (diffusers' height and width; frames are square, so
        one of them is enough; None: the model's frame size). ValueError for anything else."""
        for name, value in (("height", height), ("width", width)):
            if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                                      or not 1 <= value <= MAX_SIZE):
                raise ValueError(f"{name} must be a number of pixels from 1 to {MAX_SIZE}, got {value!r}")
        if height is not None and width is not None and height != width:
            raise ValueError(f"frames are square: height and width must be equal, got {height} x {width}")
        return int(height or width or self.frame_size)

    @torch.no_grad()
    def draw_clips(self, clip_tokens: list, context_lengths: list[int], num_frames: int, size: int) -> np.ndarray:
        """A run of clips (as the story engine keeps them: each clip's token grid, and how
        many context frames it began with) drawn again at `size`: the frames after each
        clip's context, in order, the first `num_frames`; uint8 (num_frames, size, size, 3).
        At the model's frame size these are exactly the frames the clips were rendered as.
        Each grid may be a tensor or an integer array (a saved take keeps them as int16)."""
        size = self.check_size(size, size)
        self._onload(self.vqvae)
        if self.upsampler is not None:
            self._onload(self.upsampler)
        tokens = [torch.as_tensor(np.asarray(t) if not isinstance(t, torch.Tensor) else t).long()
                  .to(self._execution_device) for t in clip_tokens]
        return redraw_segment(self.vqvae, tokens, list(context_lengths), num_frames, size, self.upsampler, UPSCALE_MODE)

    @torch.no_grad()
    def redraw(self, frames: np.ndarray, size: int, context_frames: int = DEFAULT_CONTEXT_FRAMES,
               before: np.ndarray | None = None) -> np.ndarray:
        """Frames the model made, uint8 (T, F, F, 3) at its frame size F, drawn again at `size`,
        one of `drawn_sizes`: tokenized again and drawn by the upsampler (at F they are
        returned as they are). For frames whose tokens were not kept: a reopened project, an
        old autosave, start frames.

        Cut as a long video is sampled: a first clip of `clip_frames`, then clips that
        continue the last `context_frames` frames before them (encoded with them, so the
        causal tokenizer sees the motion leading in, and dropped after drawing), so every
        frame is drawn exactly once. A last clip that is not 1 + n*tubelet frames long repeats
        its last frame to fill its last tubelet; the repeats are dropped. Encoding the context
        too brought the redraw of a continued clip's frames 3-8 dB closer to the drawing of
        its sampled tokens than chunks that start afresh (bench/bench_redraw.py).

        `before`: frames that came before these (a story segment's: the ones it continued).
        Their last `context_frames` (cut, as the story engine cuts a context, to the longest
        1 + n*tubelet tail) lead the first clip in, as sampling continued them, and are dropped."""
        frames = np.asarray(frames)
        f, tp, n = self.frame_size, self.temporal_patch_size, self.clip_frames
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (f, f, 3) or not len(frames):
            raise ValueError(f"expected uint8 frames (T, {f}, {f}, 3) with T >= 1, got {frames.dtype} {frames.shape}")
        if before is not None:
            before = np.asarray(before)
            if before.dtype != np.uint8 or before.ndim != 4 or before.shape[1:] != (f, f, 3):
                raise ValueError(f"expected uint8 frames before (T, {f}, {f}, 3), got {before.dtype} {before.shape}")
        size = self.check_size(size, size)
        if size not in self.drawn_sizes:
            raise ValueError(f"this model draws {' and '.join(map(str, self.drawn_sizes))} pixels, not {size}: "
                             "upscale its frames instead")
        k = context_frames
        if not isinstance(k, int) or not 1 <= k < n or (k - 1) % tp:
            raise ValueError(f"context_frames must be 1 + n*{tp} and below {n}, got {k!r}")
        if size == f:
            return frames
        lead = 0
        if before is not None and len(before):
            context = before[-k:]
            context = context[-(1 + (len(context) - 1) // tp * tp):]
            frames, lead = np.concatenate([context, frames]), len(context)
        out, start = [], lead
        while start < len(frames):
            lo = max(0, start - k)  # the first clip holds the lead-in (at most k frames) and begins at 0
            chunk = frames[lo:lo + n]
            pad = -(len(chunk) - 1) % tp
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)]) if pad else chunk
            out.append(self.decode_tokens(self.encode_frames(padded), size)[0, start - lo:len(chunk)])
            start = lo + len(chunk)
        return np.concatenate(out)

    def generate_clip(self, prompt: str, context_frames: np.ndarray | None = None, **sampling):
        """One clip under `prompt`, continuing `context_frames` (uint8) when given.
        Returns (all frames of the clip, context reconstructions included; tokens)."""
        prefix = None if context_frames is None else self.encode_frames(context_frames)
        tokens = self.sample_tokens([prompt], prefix, **sampling)
        return self.decode_tokens(tokens)[0], tokens[0]

    def clips_needed(self, num_frames: int, context_frames: int = DEFAULT_CONTEXT_FRAMES, continues: bool = False) -> int:
        """Clips that make `num_frames` new frames, each after the first continuing the last
        `context_frames` (the first one too when `continues`)."""
        first = self.clip_frames - context_frames if continues else self.clip_frames
        return 1 + max(0, math.ceil((num_frames - first) / (self.clip_frames - context_frames)))

    @staticmethod
    def postprocess_video(video: np.ndarray, output_type: str = "np"):
        """uint8 videos (B, F, H, W, 3) as diffusers' video processor gives them: "np" float32
        (B, F, H, W, 3) in [0, 1], "pt" float32 (B, F, 3, H, W) in [0, 1], "pil" B lists of images.
        The floats are exactly the 8-bit frames / 255, so `(x * 255).astype(uint8)` (what
        diffusers' export_to_video does) gives the frames back unchanged."""
        if output_type == "np":
            return video.astype(np.float32) / 255
        if output_type == "pt":
            return torch.from_numpy(np.ascontiguousarray(video)).permute(0, 1, 4, 2, 3).float() / 255
        if output_type == "pil":
            from PIL import Image

            return [[Image.fromarray(f) for f in v] for v in video]
        raise ValueError(f"output_type must be 'np', 'pt' or 'pil' for frames, got {output_type!r}")

    # -- the diffusers entry point ------------------------------------------------------------
    def check_inputs(self, prompt, negative_prompt, num_frames, num_inference_steps, guidance_scale,
                     num_videos_per_prompt, output_type, context_frames, callback_on_step_end_tensor_inputs):
        if isinstance(prompt, str):
            prompt = [prompt]
        if not isinstance(prompt, (list, tuple)) or not prompt or not all(isinstance(p, str) for p in prompt):
            raise ValueError(f"prompt must be a string or a non-empty list of strings, got {type(prompt).__name__}")
        if negative_prompt is not None:
            negatives = [negative_prompt] if isinstance(negative_prompt, str) else negative_prompt
            if not isinstance(negatives, (list, tuple)) or len(negatives) != len(prompt):
                raise ValueError(f"negative_prompt must be a string or one string per prompt ({len(prompt)})")
        if num_frames is not None and (not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames < 1):
            raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
        if not isinstance(num_inference_steps, int) or isinstance(num_inference_steps, bool) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}")
        g = guidance_scale
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not math.isfinite(g):
            raise ValueError(f"guidance_scale must be a finite number, got {g!r}")
        if not isinstance(num_videos_per_prompt, int) or num_videos_per_prompt < 1:
            raise ValueError(f"num_videos_per_prompt must be a positive integer, got {num_videos_per_prompt!r}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        tp = self.temporal_patch_size
        if not isinstance(context_frames, int) or not 1 <= context_frames < self.clip_frames or (context_frames - 1) % tp:
            raise ValueError(f"context_frames must be 1 + n*{tp} and below {self.clip_frames}, got {context_frames!r}")
        unknown = set(callback_on_step_end_tensor_inputs) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs may hold {self._callback_tensor_inputs}, got {sorted(unknown)}")

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], negative_prompt: str | list[str] | None = None,
                 num_frames: int | None = None, num_inference_steps: int = DEFAULT_STEPS,
                 guidance_scale: float = DEFAULT_GUIDANCE, num_videos_per_prompt: int = 1,
                 generator: torch.Generator | list[torch.Generator] | None = None, output_type: str = "np",
                 return_dict: bool = True, callback_on_step_end=None,
                 callback_on_step_end_tensor_inputs: list[str] = ("tokens",),
                 context_frames: int = DEFAULT_CONTEXT_FRAMES, height: int | None = None, width: int | None = None):
        """Generate a batch of videos: one per prompt (times `num_videos_per_prompt`).

        prompt: a string or a list of strings, a batch (a story is `phenaki_core.story.PhenakiStoryPipeline`).
        negative_prompt: replaces the learned null text of classifier-free guidance.
        num_frames: frames per video (default: one clip, `pipe.clip_frames`); longer videos
            continue the same prompt clip after clip from their last `context_frames` frames.
        generator: one CPU generator, or a list of one per video (each video then depends
            on its own alone); a CPU generator drives a pipeline on any device.
        height, width: the frames' side in pixels (square: give one, or both equal; default
            the model's frame size, `pipe.frame_size`). Sampling is always at the model's size;
            a size in `pipe.drawn_sizes` is drawn from the sampled tokens by the model (its
            upsampler, when it has one), any other is its frames upscaled (bicubic). Ignored
            for output_type "latent".
        callback_on_step_end(pipe, step, timestep, kwargs) -> dict: called after every
            sampling step with the tensors named in `callback_on_step_end_tensor_inputs`;
            "tokens" returned in the dict replace the current tokens. Setting
            `pipe._interrupt = True` there stops the call (GenerationInterrupted).
        Returns PhenakiPipelineOutput(frames) (see its doc for each output_type), or
        `(frames,)` with return_dict=False.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        self.check_inputs(prompt, negative_prompt, num_frames, num_inference_steps, guidance_scale,
                          num_videos_per_prompt, output_type, context_frames, callback_on_step_end_tensor_inputs)
        size = self.check_size(height, width)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        prompts = [p for p in prompts for _ in range(num_videos_per_prompt)]
        negatives = None
        if negative_prompt is not None:
            negatives = [negative_prompt] if isinstance(negative_prompt, str) else list(negative_prompt)
            negatives = [n for n in negatives for _ in range(num_videos_per_prompt)]
        if isinstance(generator, list) and len(generator) != len(prompts):
            raise ValueError(f"got {len(generator)} generators for {len(prompts)} videos")
        num_frames = num_frames or self.clip_frames
        n_clips = self.clips_needed(num_frames, context_frames)
        sampling = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, generator=generator,
                        callback_on_step_end=callback_on_step_end, negative_prompts=negatives,
                        callback_on_step_end_tensor_inputs=tuple(callback_on_step_end_tensor_inputs))

        frames, grids, skips, context = [], [], [], None
        with self.progress_bar(total=n_clips * self.scheduler.num_timesteps(num_inference_steps)) as bar:
            while sum(len(f[0]) for f in frames) < num_frames:
                if context is not None:  # C-ViViT takes 1 + n*tp frames: the longest such tail
                    context = context[:, -(1 + (context.shape[1] - 1) // self.temporal_patch_size
                                           * self.temporal_patch_size):]
                prefix = None if context is None else self.encode_frames(context)
                tokens = self.sample_tokens(prompts, prefix, progress_bar=bar, **sampling)
                clip = self.decode_tokens(tokens)
                new = clip if context is None else clip[:, context.shape[1]:]
                frames.append(new)
                grids.append(tokens)
                skips.append(0 if context is None else context.shape[1])
                tail = new if context is None else np.concatenate([context, new], axis=1)
                context = tail[:, -context_frames:]
        video = np.concatenate(frames, axis=1)[:, :num_frames]  # uint8 (B, F, H, W, 3)
        if output_type != "latent" and size != self.frame_size:
            # Continuations were sampled from the frames at the model's size (above); each
            # clip's tokens are drawn again at `size`, its context frames dropped as there.
            del frames
            video = np.concatenate([self.decode_tokens(t, size)[:, skip:] for t, skip in zip(grids, skips)],
                                   axis=1)[:, :num_frames]

        self.maybe_free_model_hooks()
        out = torch.stack(grids, dim=1) if output_type == "latent" else self.postprocess_video(video, output_type)
        if not return_dict:
            return (out,)
        return PhenakiPipelineOutput(frames=out)
