"""MaskGIT's iterative parallel decoding schedule (Chang et al., 2022), with a frozen prefix,
then a few Mask-Predict refinement steps (Ghazvininejad et al., 2019).

Why not diffusers' AmusedScheduler: it re-samples and can corrupt already-known tokens
when nothing is masked, and it counts the schedule over the whole grid, so a frozen
prefix needs a hand-set `starting_mask_ratio`. Here the known tokens are never touched,
and the schedule counts only the positions that were masked when sampling began: with
a 5-frame prefix, step i leaves exactly cos(pi/2 * (i+1)/N) of the *new* tokens masked.

Why refine: MaskGIT never revisits a token. Its last steps reveal many tokens at once,
each drawn without seeing its neighbours' draws, and the ones that disagree with their
neighbours show as notches and stray blobs on the object (shape is the attribute the
default model misses most). Refinement re-masks the generated tokens that were least
likely when drawn and predicts them again, greedily, with everything else in view:
`refine_steps` extra steps, the first re-masking `refine_fraction` of the new tokens and
each later one less, under `refine_guidance` of the guidance (0: the prompt alone, 1: all
of it; the default model's card has the sweep that chose each setting).
"""
import math
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput

from ..noise import gumbel_tensor, rand_tensor


def cosine_schedule(u):
    """MaskGIT's schedule: progress u in [0, 1] -> the fraction of tokens still masked,
    cos(pi/2 * u). Sampling walks it step by step; training draws u at random."""
    if isinstance(u, torch.Tensor):
        return torch.cos(math.pi / 2 * u)
    return math.cos(math.pi / 2 * u)


@dataclass
class MaskGitSchedulerState:
    """Everything one sampling call accumulates, kept by the caller and not by the scheduler,
    so that one scheduler serves any number of calls at once (threads, studio sessions).

    to_generate: (B,) how many positions were masked when sampling began;
    log_prob: (B, N) each token's log-probability when it was drawn (+inf where known from the start)."""

    num_inference_steps: int
    timesteps: torch.Tensor
    to_generate: torch.LongTensor | None = None
    log_prob: torch.Tensor | None = None


@dataclass
class MaskGitSchedulerOutput(BaseOutput):
    """prev_sample: the tokens after the step, mask ids where still unknown; state: what the next step needs."""

    prev_sample: torch.LongTensor
    state: MaskGitSchedulerState


class MaskGitScheduler(SchedulerMixin, ConfigMixin):
    order = 1

    @register_to_config
    def __init__(self, mask_token_id: int = 1024, choice_temperature: float = 1.0, sample_temperature: float = 1.0,
                 refine_steps: int = 2, refine_fraction: float = 0.15, refine_guidance: float = 0.5):
        if not isinstance(refine_steps, int) or refine_steps < 0:
            raise ValueError(f"refine_steps must be a non-negative integer, got {refine_steps!r}")
        if not 0.0 <= refine_fraction <= 1.0:
            raise ValueError(f"refine_fraction must be in [0, 1], got {refine_fraction!r}")
        if not 0.0 <= refine_guidance <= 1.0:
            raise ValueError(f"refine_guidance must be in [0, 1], got {refine_guidance!r}")
        self.set_timesteps(12)

    # -- the schedule -------------------------------------------------------------------
    def num_timesteps(self, num_inference_steps: int) -> int:
        """Transformer forwards in one sampling call: the MaskGIT steps, then the refinement steps."""
        return num_inference_steps + self.config.refine_steps

    def create_state(self, num_inference_steps: int, device: str | torch.device | None = None) -> MaskGitSchedulerState:
        """A fresh state for one sampling call of `num_inference_steps` MaskGIT steps."""
        if not isinstance(num_inference_steps, int) or isinstance(num_inference_steps, bool) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}")
        return MaskGitSchedulerState(num_inference_steps,
                                     torch.arange(self.num_timesteps(num_inference_steps), device=device))

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None):
        """diffusers' habit: the defaults that `step` uses when no state is passed. The pipeline
        passes a state per call instead, so nothing here is shared between calls."""
        state = self.create_state(num_inference_steps, device)
        self.num_inference_steps, self.timesteps = state.num_inference_steps, state.timesteps

    def mask_ratio(self, step: int, num_inference_steps: int | None = None) -> float:
        """Fraction of the generated positions still masked after `step` (0-based)."""
        return cosine_schedule((step + 1) / (num_inference_steps or self.num_inference_steps))

    def guidance(self, step: int, guidance_scale: float, num_inference_steps: int | None = None) -> float:
        """The classifier-free guidance scale for `step`: the caller's, less in refinement."""
        if step < (num_inference_steps or self.num_inference_steps):
            return guidance_scale
        return 1.0 + self.config.refine_guidance * (guidance_scale - 1.0)

    def refine_count(self, step: int, state: MaskGitSchedulerState) -> torch.LongTensor:
        """How many of the generated tokens are re-masked after `step`, from the last MaskGIT step on."""
        left = self.config.refine_steps - (step - (state.num_inference_steps - 1))
        if left <= 0:
            return torch.zeros_like(state.to_generate)
        return (state.to_generate.float() * self.config.refine_fraction * left / self.config.refine_steps).floor().long()

    # -- training: the same schedule, drawn at random -----------------------------------
    def mask_tokens(self, tokens: torch.LongTensor, is_image: torch.Tensor | None = None,
                    prefix_frames: torch.Tensor | None = None, generator=None) -> tuple[torch.LongTensor, torch.Tensor]:
        """MaskGIT's `add_noise`: mask a cosine-scheduled share of `tokens` (B, T', g, g) for one
        training step. Returns (inputs with mask ids, the bool mask the loss is taken over).

        Per sample a ratio cos(pi/2 * u), u ~ U(0, 1), of the positions it is scored on: an
        image's first latent frame only (its later frames are masked in the inputs but not
        scored); a continuation's frames after its frozen `prefix_frames`. At least one
        position is always masked. Draws go through the library's noise helper, so a CPU
        generator masks the same positions whatever the device.
        """
        b, t = tokens.shape[:2]
        device = tokens.device
        if is_image is None:
            is_image = torch.zeros(b, dtype=torch.bool, device=device)
        frame = torch.arange(t, device=device).view(1, t, *([1] * (tokens.dim() - 2)))
        expand = (slice(None),) + (None,) * (tokens.dim() - 1)
        later_image_frame = is_image[expand] & (frame > 0)
        scored = ~later_image_frame.expand_as(tokens)
        if prefix_frames is not None:
            scored = scored & (frame >= prefix_frames[expand])
        n_scored = scored.flatten(1).sum(1)
        u = rand_tensor((b,), generator, device)
        n_mask = (cosine_schedule(u) * n_scored).ceil().clamp(min=1).long()
        noise = rand_tensor(tokens.shape, generator, device).masked_fill(~scored, 2.0)
        ranks = noise.flatten(1).argsort(1).argsort(1).view_as(tokens)
        mask = ranks < n_mask[expand]
        inputs = tokens.masked_fill(mask | later_image_frame, self.config.mask_token_id)
        return inputs, mask

    # -- sampling -------------------------------------------------------------------------
    def step(self, logits: torch.Tensor, step: int, sample: torch.LongTensor, generator=None,
             state: MaskGitSchedulerState | None = None, return_dict: bool = True):
        """One decoding step: fill every masked position, then re-mask the least confident.

        sample (B, ...) holds mask ids where unknown; logits over the codebook are either
        (B, ..., K) for every position or (U, K) for the U masked positions of `sample` in
        row-major order (what the transformer's `logits_at` returns). Only masked positions
        are drawn, so a frozen prefix and the tokens already revealed cost nothing.

        `state` is what the previous step returned (None at step 0: a fresh one from
        `set_timesteps`). `generator`: one, or a list of one per row of `sample`.
        Returns MaskGitSchedulerOutput(prev_sample, state), or that tuple with return_dict=False.
        """
        b = sample.shape[0]
        tokens = sample.reshape(b, -1)
        unknown = tokens == self.config.mask_token_id
        if logits.dim() == sample.dim() + 1:
            logits = logits.reshape(b, tokens.shape[1], -1)[unknown]
        logits = logits.float()
        if state is None:
            if step != 0:
                raise ValueError("pass `state`: the one the previous step returned")
            state = self.create_state(self.num_inference_steps, tokens.device)
        if state.to_generate is None or step == 0:
            state = MaskGitSchedulerState(state.num_inference_steps, state.timesteps, unknown.sum(1),
                                          torch.full(tokens.shape, float("inf"), device=tokens.device))
        n_steps = state.num_inference_steps
        refining = step >= n_steps

        temperature = 0.0 if refining else self.config.sample_temperature
        log_probs = torch.log_softmax(logits / max(temperature, 1e-6), dim=-1)
        if temperature > 0:
            drawn = (log_probs + _gumbel(log_probs.shape, unknown, generator, log_probs.device)).argmax(-1)
        else:
            drawn = log_probs.argmax(-1)
        filled = tokens.masked_scatter(unknown, drawn)
        drawn_log_prob = torch.log_softmax(logits, dim=-1).gather(-1, drawn[:, None]).squeeze(-1)
        state = MaskGitSchedulerState(n_steps, state.timesteps, state.to_generate,
                                      state.log_prob.masked_scatter(unknown, drawn_log_prob))

        if step >= n_steps - 1:  # everything revealed; refinement picks what to draw again
            remask = state.log_prob.argsort(1).argsort(1) < self.refine_count(step, state)[:, None]
        else:
            n_keep_masked = (state.to_generate.float() * self.mask_ratio(step, n_steps)).floor().long()
            # Always reveal at least one new token per step.
            n_keep_masked = torch.minimum(n_keep_masked, (unknown.sum(1) - 1).clamp(min=0))
            drawn_confidence = log_probs.gather(-1, drawn[:, None]).squeeze(-1)
            anneal = self.config.choice_temperature * (1.0 - (step + 1) / n_steps)
            if anneal > 0:
                drawn_confidence = drawn_confidence + anneal * _gumbel(
                    drawn_confidence.shape, unknown, generator, drawn_confidence.device)
            confidence = torch.full(tokens.shape, float("inf"), device=tokens.device)
            confidence = confidence.masked_scatter(unknown, drawn_confidence)
            ranks = confidence.argsort(1).argsort(1)
            remask = ranks < n_keep_masked[:, None]
        prev_sample = filled.masked_fill(remask, self.config.mask_token_id).view_as(sample)
        if not return_dict:
            return prev_sample, state
        return MaskGitSchedulerOutput(prev_sample=prev_sample, state=state)


def _gumbel(shape, unknown, generator, device):
    """Gumbel noise for the U masked positions of a batch (rows of `shape`, in row-major order).
    With a list of generators, each sample's positions are drawn from its own generator."""
    if not isinstance(generator, list) or len(generator) == 1:
        return gumbel_tensor(shape, generator[0] if isinstance(generator, list) else generator, device)
    if len(generator) != unknown.shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {unknown.shape[0]}")
    counts = unknown.sum(1).tolist()
    parts = [gumbel_tensor((n, *shape[1:]), g, device) for n, g in zip(counts, generator)]
    return torch.cat(parts)
