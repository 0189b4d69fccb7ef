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

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin


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

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None):
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}")
        self.num_inference_steps = num_inference_steps
        # One timestep per transformer forward: the MaskGIT steps, then the refinement steps.
        self.timesteps = torch.arange(num_inference_steps + self.config.refine_steps, device=device)
        self._to_generate = None
        self._log_prob = None  # of every token when it was drawn; +inf where it was known from the start

    def mask_ratio(self, step: int) -> float:
        """Fraction of the generated positions still masked after `step` (0-based)."""
        return math.cos(math.pi / 2 * (step + 1) / self.num_inference_steps)

    def guidance(self, step: int, guidance_scale: float) -> float:
        """The classifier-free guidance scale for `step`: the caller's, less in refinement."""
        if step < self.num_inference_steps:
            return guidance_scale
        return 1.0 + self.config.refine_guidance * (guidance_scale - 1.0)

    def refine_count(self, step: int) -> torch.LongTensor:
        """How many of the generated tokens are re-masked after `step`, from the last MaskGIT step on."""
        left = self.config.refine_steps - (step - (self.num_inference_steps - 1))
        if left <= 0:
            return torch.zeros_like(self._to_generate)
        return (self._to_generate.float() * self.config.refine_fraction * left / self.config.refine_steps).floor().long()

    def step(self, logits: torch.Tensor, step: int, sample: torch.LongTensor,
             generator: torch.Generator | None = None) -> torch.LongTensor:
        """One decoding step: fill every masked position, then re-mask the least confident.

        sample (B, ...) holds mask ids where unknown; logits over the codebook are either
        (B, ..., K) for every position or (U, K) for the U masked positions of `sample` in
        row-major order (what the transformer's `logits_at` returns). Only masked positions
        are drawn, so a frozen prefix and the tokens already revealed cost nothing.
        """
        b = sample.shape[0]
        tokens = sample.reshape(b, -1)
        unknown = tokens == self.config.mask_token_id
        if logits.dim() == sample.dim() + 1:
            logits = logits.reshape(b, tokens.shape[1], -1)[unknown]
        logits = logits.float()
        if step == 0 or self._to_generate is None:
            self._to_generate = unknown.sum(1)
            self._log_prob = torch.full(tokens.shape, float("inf"), device=tokens.device)
        refining = step >= self.num_inference_steps

        temperature = 0.0 if refining else self.config.sample_temperature
        log_probs = torch.log_softmax(logits / max(temperature, 1e-6), dim=-1)
        if temperature > 0:
            gumbel = -torch.log(-torch.log(_uniform(log_probs.shape, generator, log_probs.device)))
            drawn = (log_probs + gumbel).argmax(-1)
        else:
            drawn = log_probs.argmax(-1)
        filled = tokens.masked_scatter(unknown, drawn)
        drawn_log_prob = torch.log_softmax(logits, dim=-1).gather(-1, drawn[:, None]).squeeze(-1)
        self._log_prob = self._log_prob.masked_scatter(unknown, drawn_log_prob)

        if step >= self.num_inference_steps - 1:  # everything revealed; refinement picks what to draw again
            remask = self._log_prob.argsort(1).argsort(1) < self.refine_count(step)[:, None]
            return filled.masked_fill(remask, self.config.mask_token_id).view_as(sample)

        n_keep_masked = (self._to_generate.float() * self.mask_ratio(step)).floor().long()
        # Always reveal at least one new token per step.
        n_keep_masked = torch.minimum(n_keep_masked, (unknown.sum(1) - 1).clamp(min=0))
        drawn_confidence = log_probs.gather(-1, drawn[:, None]).squeeze(-1)
        anneal = self.config.choice_temperature * (1.0 - (step + 1) / self.num_inference_steps)
        if anneal > 0:
            drawn_confidence = drawn_confidence + anneal * -torch.log(
                -torch.log(_uniform(drawn_confidence.shape, generator, drawn_confidence.device)))
        confidence = torch.full(tokens.shape, float("inf"), device=tokens.device)
        confidence = confidence.masked_scatter(unknown, drawn_confidence)
        ranks = confidence.argsort(1).argsort(1)
        remask = ranks < n_keep_masked[:, None]
        return filled.masked_fill(remask, self.config.mask_token_id).view_as(sample)


def _uniform(shape, generator, device):
    return torch.rand(shape, generator=generator, device=device).clamp_(1e-20, 1 - 1e-7)
