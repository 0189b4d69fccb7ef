"""What both trainers share: EMA weights, warm starts, a budget and learning-rate schedule,
captions encoded once."""
import copy
import math
import time

import torch

from ..text import TextEncoder


def make_ema(model: torch.nn.Module, decay: float):
    """The exponential moving average of a model's weights, the weights that ship: diffusers'
    `EMAModel`, with its default warm-up (decay (1 + n) / (10 + n) until it reaches `decay`,
    the very rule the hand-written one here had). It checkpoints through accelerate
    (`register_for_checkpointing`) and gathers DeepSpeed ZeRO-3 shards when it averages."""
    from diffusers.training_utils import EMAModel

    return EMAModel(model.parameters(), decay=decay, foreach=True)


def ema_copy(ema, model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of `model` holding the EMA weights: to evaluate and export."""
    copy_ = copy.deepcopy(model).eval().requires_grad_(False)
    ema.copy_to(copy_.parameters())
    return copy_


def warm_start(model: torch.nn.Module, source: torch.nn.Module) -> list[str]:
    """Copy `source`'s weights into `model` wherever names and shapes agree; return the
    names left at their fresh init. A changed quantizer or vocabulary then retrains only
    the layers it touches, not the whole model."""
    theirs, fresh = source.state_dict(), []
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in theirs and theirs[name].shape == tensor.shape:
                tensor.copy_(theirs[name])
            else:
                fresh.append(name)
    return fresh


class Budget:
    """Stop after `steps` or `minutes`, whichever comes first (either may be None)."""

    def __init__(self, steps: int | None, minutes: float | None):
        self.steps = steps
        self.seconds = None if minutes is None else 60 * minutes
        self.deadline = None if minutes is None else time.monotonic() + self.seconds

    def fraction(self, step: int) -> float:
        """How far the schedule is, 0 to 1: by steps over the whole run when there are --steps
        (a resumed run keeps the curve an unbroken one had), else by this run's clock."""
        if self.steps is not None:
            return min(1.0, step / max(1, self.steps))
        if self.deadline is not None:
            return min(1.0, max(0.0, 1 - (self.deadline - time.monotonic()) / self.seconds))
        return 0.0

    def done(self, step: int) -> bool:
        return (self.steps is not None and step >= self.steps) or (
            self.deadline is not None and time.monotonic() >= self.deadline)


def lr_schedule(optimizer, budget: Budget, warmup: int, decay: bool):
    """Linear warm-up, then (with `decay`) a cosine down to 10% of the rate: the last stretch of
    a run at low rate sharpens what it learned. A LambdaLR, so accelerate checkpoints its place."""
    def factor(step: int) -> float:
        f = min(1.0, (step + 1) / warmup)
        if decay:
            f *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * budget.fraction(step)))
        return f
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class TextCache:
    """Captions repeat endlessly in training: encode each once."""

    def __init__(self, encoder: TextEncoder):
        self.encoder, self.cache = encoder, {}

    def __call__(self, captions: list[str], device):
        missing = [c for c in dict.fromkeys(captions) if c not in self.cache]
        if missing:
            states, mask = self.encoder.encode(missing)
            for c, s, m in zip(missing, states, mask):
                self.cache[c] = s[m].float()
        rows = [self.cache[c] for c in captions]
        length = max(len(r) for r in rows)
        states = torch.zeros(len(rows), length, rows[0].shape[-1])
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, r in enumerate(rows):
            states[i, : len(r)], mask[i, : len(r)] = r, True
        return states.to(device), mask.to(device)
