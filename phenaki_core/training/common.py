"""What both trainers share: EMA weights, resumable checkpoints, a time budget, loss curves,
captions encoded once."""
import argparse
import copy
import json
import math
import os
import time
from pathlib import Path

import torch

from ..text import TextEncoder


class EMA:
    """Exponential moving average of a model's weights; the weights that ship."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int):
        decay = min(self.decay, (1 + step) / (10 + step))  # short warm-up: early weights fade fast
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach().to(e.dtype), 1 - decay)


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


class Checkpointer:
    """One `state.pt` per run folder, written atomically, plus a JSONL log of metrics."""

    def __init__(self, run_dir: str | os.PathLike, every_seconds: float = 180):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.every, self.last = every_seconds, time.monotonic()

    @property
    def path(self) -> Path:
        return self.dir / "state.pt"

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every

    def save(self, state: dict):
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
        self.last = time.monotonic()

    def load(self) -> dict | None:
        return torch.load(self.path, map_location="cpu", weights_only=False) if self.path.exists() else None

    def log(self, record: dict):
        with open(self.dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def plot(self, keys: list[str]):
        """Loss curves as PNG, from the log (smoothed)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [json.loads(line) for line in open(self.dir / "log.jsonl")]
        keys = [k for k in keys if any(k in r for r in rows)]  # no empty panels (no adversarial loss yet, say)
        if not keys:
            return
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
        for ax, key in zip(axes[0], keys):
            steps, values = zip(*[(r["step"], r[key]) for r in rows if key in r])
            ax.plot(steps, values, lw=0.6, alpha=0.4)
            k = max(1, len(values) // 50)
            smooth = [sum(values[max(0, i - k): i + 1]) / len(values[max(0, i - k): i + 1]) for i in range(len(values))]
            ax.plot(steps, smooth, lw=1.5)
            ax.set_title(key)
            ax.set_xlabel("step")
            if min(values) > 0 and max(values) > 10 * min(values):  # losses: log; rates and PSNR: linear
                ax.set_yscale("log")
        fig.tight_layout()
        fig.savefig(self.dir / "loss.png", dpi=90)
        plt.close(fig)


class Budget:
    """Stop after `steps` or `minutes`, whichever comes first (either may be None)."""

    def __init__(self, steps: int | None, minutes: float | None, start_step: int = 0):
        self.steps, self.start_step = steps, start_step
        self.seconds = None if minutes is None else 60 * minutes
        self.deadline = None if minutes is None else time.monotonic() + self.seconds

    def fraction(self, step: int) -> float:
        """How much of this run's budget is spent, 0 to 1 (by steps or by time)."""
        parts = []
        if self.steps is not None:
            parts.append((step - self.start_step) / max(1, self.steps - self.start_step))
        if self.deadline is not None:
            parts.append(1 - (self.deadline - time.monotonic()) / self.seconds)
        return min(1.0, max(parts, default=0.0))

    def done(self, step: int) -> bool:
        return (self.steps is not None and step >= self.steps) or (
            self.deadline is not None and time.monotonic() >= self.deadline)


def learning_rate(base: float, step: int, budget: Budget, warmup: int, decay: bool) -> float:
    """Linear warm-up, then (with `decay`) a cosine down to 10% over this run's budget:
    the last stretch of a run at low rate sharpens what it learned."""
    lr = base * min(1.0, (step + 1) / warmup)
    if decay:
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * budget.fraction(step)))
    return lr


def at_least(low: int):
    """An argparse type: an int no smaller than `low`. The data streams build every batch around its
    videos, so a batch needs one; images may be none (video-only training, Table 2)."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def add_run_arguments(p, batch_videos: int, batch_images: int):
    """The options both trainers share: the run folder, the budget, the data, the optimizer."""
    p.add_argument("--out", required=True, help="run folder: checkpoints, logs, the exported model")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--steps", type=int, default=None, help="stop at this step")
    p.add_argument("--minutes", type=float, default=None, help="stop after this wall time")
    p.add_argument("--videos", default=None, help="folder of captioned videos (default: Shapes World)")
    p.add_argument("--images", default=None, help="folder of captioned images")
    p.add_argument("--fps", type=float, default=8)
    p.add_argument("--frames", type=int, default=11)
    p.add_argument("--batch-videos", type=at_least(1), default=batch_videos)
    p.add_argument("--batch-images", type=at_least(0), default=batch_images)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-decay", action="store_true", help="cosine-decay the learning rate over this run's budget")
    p.add_argument("--config", default=None, help="JSON of model config overrides")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--checkpoint-minutes", type=float, default=3)
    p.add_argument("--mixed-precision", default="bf16", choices=["no", "bf16", "fp16"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0,
                   help="processes rendering Shapes World batches ahead of training (a GPU needs several)")


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
