"""Speed of Phenaki Studio on this machine, as ratios measured side by side in one run.

    python bench/bench_speed.py [--model assets/phenaki-shapes-64] [--threads 2] [--out docs/bench_speed.md]

Prints and writes a Markdown table:
- the fp32 and bf16 matrix-multiply peak of this machine, and the transformer's forward
  pass as a fraction of it;
- one clip (12 steps and the scheduler's 2 refinement steps, guidance 3, batched), the
  same clip without the refinement steps, and a 5-frame-primed continuation of 6 new
  frames, as new frames per second against 8 fps playback;
- story cost: 16 segments against 2 (linear would be 8x);
- regenerating segment k of n against rendering one segment (k = 1 and n; n = 4, 16);
- tokenizer and transformer training steps.
The benchmark configuration is the issue's: 64x64, 11 frames, p=8, tp=2 (384 tokens),
codebook 1024, transformer width 256 and depth 4, 12 steps, guidance 3.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GUIDANCE = 3.0  # the speed issue's configuration, not the shipped model's default (timing does not depend on it)


def timed(fn, repeat=5, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def tokenizer_step(vq, videos):
    """One bf16 L2 training step of `vq` on `videos`, as a closure: bench_vs_peer's step."""
    from phenaki_core.training import losses

    opt = torch.optim.AdamW(vq.parameters())

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = losses.reconstruction_loss(vq(videos)[0], videos)
        opt.zero_grad(); loss.backward(); opt.step()

    return step


def matmul_peak(dtype, n=2048):
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, repeat=10, warmup=2)


def forward_flops(model, *args):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(*args)
    return counter.get_total_flops()


def bench_pipeline():
    from phenaki_core import CViViT, MaskGitScheduler, MaskGitTransformer, PhenakiPipeline, TextEncoder

    torch.manual_seed(0)
    te = TextEncoder()
    vq = CViViT(image_size=64, fsq_levels=(8, 8, 4, 4)).eval()
    tr = MaskGitTransformer(codebook_size=1024, latent_frames=6, grid=8, width=256, depth=4, heads=4,
                            text_dim=te.hidden_size).eval()
    pipe = PhenakiPipeline(te, vq, tr, MaskGitScheduler(mask_token_id=1024))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="also time this pipeline folder (the shipped model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="docs/bench_speed.md")
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    from phenaki_core.runtime import keep_freed_memory

    keep_freed_memory()  # as the phenaki CLI and the studio do (bench_allocator.py: what it gives)
    torch.set_num_threads(args.threads)
    rows = []

    def report(name, value, note=""):
        rows.append((name, value, note))
        print(f"{name:58s} {value:>12s}  {note}", flush=True)

    from phenaki_core import MaskGitScheduler
    from phenaki_core.models import CViViT
    from phenaki_core.pipelines import load_pipeline
    from phenaki_core.story import Segment, Story, StoryRenderer
    from phenaki_core.training import losses

    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    report("fp32 matmul peak (2048^3)", f"{peak32 / 1e9:.0f} GFLOP/s")
    report("bf16 matmul peak (2048^3)", f"{peak16 / 1e9:.0f} GFLOP/s", f"{peak16 / peak32:.1f}x fp32")

    pipe = bench_pipeline()
    tr = pipe.transformer
    states, mask = pipe.encode_prompt(["a red circle moves left"] * 16)
    tokens = torch.randint(0, 1024, (16, 6, 8, 8))
    with torch.no_grad():
        flops = forward_flops(tr, tokens, states, mask)
        t32 = timed(lambda: tr(tokens, states, mask))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            t16 = timed(lambda: tr(tokens, states, mask))
    report("transformer forward, batch 16, fp32", f"{flops / t32 / 1e9:.0f} GFLOP/s", f"{flops / t32 / peak32:.0%} of fp32 peak")
    report("transformer forward, batch 16, bf16 autocast", f"{flops / t16 / 1e9:.0f} GFLOP/s",
           f"{flops / t16 / peak32:.0%} of fp32 peak, {flops / t16 / peak16:.0%} of bf16 peak")

    gen = lambda: torch.Generator().manual_seed(0)
    clip = timed(lambda: pipe.generate_clip("a red circle moves left", guidance_scale=GUIDANCE, generator=gen()), repeat=3)
    report("one clip, 11 frames (12 + 2 refinement steps, guidance 3)", f"{clip:.2f} s", f"{11 / clip:.1f} frames/s")
    refining = pipe.scheduler
    pipe.scheduler = MaskGitScheduler.from_config(refining.config, refine_steps=0)
    plain = timed(lambda: pipe.generate_clip("a red circle moves left", guidance_scale=GUIDANCE, generator=gen()), repeat=3)
    pipe.scheduler = refining
    report("one clip without the refinement steps (12 steps)", f"{plain:.2f} s", f"refinement costs {clip / plain:.2f}x")
    context = pipe.generate_clip("a red circle moves left", guidance_scale=GUIDANCE, generator=gen())[0][-5:]
    cont = timed(lambda: pipe.generate_clip("a red circle moves up", context, guidance_scale=GUIDANCE, generator=gen()), repeat=3)
    report("continuation: 5 frames primed, 6 new", f"{cont:.2f} s", f"{6 / cont:.1f} new frames/s (playback: 8)")

    def story(n, steps=12):
        return Story([Segment("a red circle moves left", 6, seed=i) for i in range(n)], num_inference_steps=steps,
                     guidance_scale=GUIDANCE)

    t2 = timed(lambda: StoryRenderer(pipe, story(2)).render(), repeat=2)
    t16s = timed(lambda: StoryRenderer(pipe, story(16)).render(), repeat=1, warmup=0)
    report("story of 16 segments vs 2", f"{t16s / t2:.2f}x", "linear = 8x")

    one = timed(lambda: StoryRenderer(pipe, story(1)).render(), repeat=3)
    for n in (4, 16):
        r = StoryRenderer(pipe, story(n))
        r.render()
        for k in (0, n - 1):
            regen = timed(lambda: r.render_segment(k), repeat=3)
            report(f"regenerate segment {k + 1} of {n} vs one segment", f"{regen / one:.2f}x")

    # Training steps at the default model's batch: tokenizer 16 videos + 8 images, transformer 32 + 8.
    vq = CViViT(image_size=64)
    opt = torch.optim.AdamW(vq.parameters())
    videos, images = torch.rand(16, 3, 11, 64, 64) * 2 - 1, torch.rand(8, 3, 1, 64, 64) * 2 - 1

    def tok_step(bf16):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = losses.reconstruction_loss(vq(videos)[0], videos) + losses.reconstruction_loss(vq(images)[0], images)
        opt.zero_grad(); loss.backward(); opt.step()

    for bf16 in (False, True):
        t = timed(lambda: tok_step(bf16), repeat=3)
        report(f"tokenizer train step (16 videos + 8 images), {'bf16' if bf16 else 'fp32'}", f"{t:.2f} s", f"{24 / t:.0f} items/s")
    tr.train()
    topt = torch.optim.AdamW(tr.parameters())
    tokens, is_image = torch.randint(0, 1024, (40, 6, 8, 8)), torch.arange(40) >= 32
    states, mask = pipe.encode_prompt(["a red circle moves left"] * 40)

    def tr_step(bf16):
        inputs, masked = losses.prepare_masked_batch(tokens, is_image, 1024)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = losses.masked_token_loss(tr(inputs, states, mask, logits_at=masked), tokens, masked)
        topt.zero_grad(); loss.backward(); topt.step()

    for bf16 in (False, True):
        t = timed(lambda: tr_step(bf16), repeat=3)
        report(f"transformer train step (32 videos + 8 images), {'bf16' if bf16 else 'fp32'}", f"{t:.2f} s", f"{40 / t:.0f} items/s")

    if args.model:
        shipped = load_pipeline(args.model)
        context = shipped.generate_clip("a red circle moves left", guidance_scale=GUIDANCE, generator=gen())[0][-5:]
        cont = timed(lambda: shipped.generate_clip("a red circle moves up", context, guidance_scale=GUIDANCE, generator=gen()), repeat=3)
        report("shipped model: continuation, 6 new frames", f"{cont:.2f} s", f"{6 / cont:.1f} new frames/s (playback: 8)")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Speed (bench/bench_speed.py, {args.threads} threads, {os.cpu_count()} cores visible)", "",
             "| measure | value | note |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
