"""torch.compile for CPU training: eager against compiled training steps, side by side.

    python bench/bench_compile.py [--threads 2] [--steps 20] [--out docs/bench_compile.md]

The transformer at the shipped configuration (width 256, depth 4, 384 tokens) on a batch
of 24 videos + 12 images (the CPU training batch), and the tokenizer (width 128) on 16
videos + 8 images, each a full bf16-autocast training step (forward, backward, AdamW).
Every step draws a new mask, so the number of masked positions changes as in training
and the compiled graph has to cope with it (dynamic shapes). Eager and compiled steps
alternate, so drift in the machine's speed hits both alike; compile time is reported apart.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenaki_core.models import CViViT, MaskGitTransformer  # noqa: E402
from phenaki_core.training import losses  # noqa: E402


def transformer_step_fn(model, batch=36, gen=None):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, 1024, (batch, 6, 8, 8), generator=gen)
    is_image = torch.arange(batch) >= 24
    states, mask = torch.randn(batch, 12, 384, generator=gen), torch.ones(batch, 12, dtype=torch.bool)

    def step():
        inputs, masked = losses.prepare_masked_batch(tokens, is_image, 1024, None, generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(inputs, states, mask, None, logits_at=masked)
            loss = losses.masked_token_loss(logits, tokens, masked, 4.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def tokenizer_step_fn(model, gen=None):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    videos = torch.rand(16, 3, 11, 64, 64, generator=gen) * 2 - 1
    images = torch.rand(8, 3, 1, 64, 64, generator=gen) * 2 - 1

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = losses.reconstruction_loss(model(videos)[0], videos) + losses.reconstruction_loss(model(images)[0], images)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def compare(name, make_model, make_step, steps):
    torch.manual_seed(0)
    eager_model = make_model()
    compiled_model = make_model()
    compiled_model.load_state_dict(eager_model.state_dict())
    compiled_model = torch.compile(compiled_model, dynamic=True)
    eager = make_step(eager_model, gen=torch.Generator().manual_seed(1))
    compiled = make_step(compiled_model, gen=torch.Generator().manual_seed(1))
    eager()
    t = time.perf_counter()
    for _ in range(3):  # the first steps compile (forward, backward, and a new mask size or two)
        compiled()
    compile_s = time.perf_counter() - t
    te, tc = [], []
    for _ in range(steps):
        for fn, times in ((eager, te), (compiled, tc)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    e, c = statistics.median(te), statistics.median(tc)
    return f"| {name} | {e:.3f} s | {c:.3f} s | {e / c:.2f}x | {compile_s:.0f} s |"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [
        compare("transformer, 24 videos + 12 images",
                lambda: MaskGitTransformer(width=256, depth=4, heads=4), transformer_step_fn, args.steps),
        compare("tokenizer, 16 videos + 8 images",
                lambda: CViViT(width=128, heads=4, spatial_depth=2, temporal_depth=2, head_channels=16),
                tokenizer_step_fn, args.steps),
    ]
    text = "\n".join([
        f"torch {torch.__version__}, {args.threads} threads, bf16 autocast, median of {args.steps} alternating steps each",
        "",
        "| training step | eager | torch.compile | speed-up | first 3 compiled steps |",
        "|---|---|---|---|---|",
        *rows,
    ])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
