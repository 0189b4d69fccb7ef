"""The first minutes of a lent GPU: time what the issue asks, write one Markdown report.

    python bench/gpu_check.py --device cuda --out $OUT/gpu_check.md
    python bench/gpu_check.py --device cpu --quick --out outputs/gpu_check.md   # the dry run

Measures, each once after a warm-up, on the device given:
- a story of 1024 frames on the shipped model (the paper: 4.1 minutes for 1024 frames on
  a TPU with a 1.8B model), as frames per second against 8 fps playback;
- one clip on the shipped model (64x64, 384 tokens), and one clip of the same architecture
  at 128x128 (1536 tokens, random weights: the largest size the model family is set up for);
- a few training steps of the tokenizer and of the transformer at a GPU batch size, in
  bf16 autocast, as items per second.
`--quick` shrinks every size (for the CPU dry run; the report says which sizes ran).
Every figure comes from this run; a part that fails is reported as failed and the rest go on.
"""
import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenaki_core.noise import cpu_generator
from phenaki_core.runtime import resolve_device, resolve_dtype


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device, warmup=1, repeat=1):
    for _ in range(warmup):
        fn()
    sync(device)
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync(device)
    return (time.perf_counter() - t) / repeat


def story_time(pipe, frames, device):
    from phenaki_core.story import Segment, Story, StoryRenderer

    prompts = ["a red circle moves right", "a red circle moves left", "a blue circle moves left", "a blue square moves right"]
    per = max(1, frames // len(prompts))
    story = Story([Segment(p, per + (frames - per * len(prompts) if i == len(prompts) - 1 else 0), i)
                   for i, p in enumerate(prompts)])
    StoryRenderer(pipe, Story([Segment(prompts[0], pipe.clip_frames, 0)])).render()  # warm-up
    sync(device)
    t = time.perf_counter()
    r = StoryRenderer(pipe, story)
    r.render()
    sync(device)
    seconds = time.perf_counter() - t
    assert len(r.frames()) == frames
    return seconds


def big_pipeline(size, device, dtype):
    from phenaki_core import (
        CViViT,
        MaskGitScheduler,
        MaskGitTransformer,
        PhenakiPipeline,
    )
    from phenaki_core.text import TextEncoder

    torch.manual_seed(0)
    te = TextEncoder()
    vq = CViViT(image_size=size, fsq_levels=(8, 8, 4, 4)).eval()
    tr = MaskGitTransformer(codebook_size=1024, latent_frames=6, grid=size // 8, width=256, depth=4, heads=4,
                            text_dim=te.hidden_size).eval()
    pipe = PhenakiPipeline(te, vq, tr, MaskGitScheduler(mask_token_id=1024))
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    pipe.transformer.to(dtype), pipe.vqvae.to(dtype)  # the text encoder stays fp32, as load_pipeline keeps it
    return pipe


def tokenizer_steps(device, videos, images, steps):
    from phenaki_core import CViViT
    from phenaki_core.training import losses

    vq = CViViT(image_size=64).to(device)
    opt = torch.optim.AdamW(vq.parameters())
    v = torch.rand(videos, 3, 11, 64, 64, device=device) * 2 - 1
    im = torch.rand(images, 3, 1, 64, 64, device=device) * 2 - 1

    def step():
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16):
            loss = losses.reconstruction_loss(vq(v)[0], v) + losses.reconstruction_loss(vq(im)[0], im)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timed(step, device, warmup=1, repeat=steps)


def transformer_steps(device, videos, images, steps):
    from phenaki_core import MaskGitScheduler, MaskGitTransformer
    from phenaki_core.training import losses

    n = videos + images
    tr = MaskGitTransformer(codebook_size=1024, latent_frames=6, grid=8, width=256, depth=4, heads=4, text_dim=384).to(device)
    opt = torch.optim.AdamW(tr.parameters())
    sched = MaskGitScheduler(mask_token_id=1024)
    tokens = torch.randint(0, 1024, (n, 6, 8, 8), device=device)
    is_image = torch.arange(n, device=device) >= videos
    states, mask = torch.randn(n, 12, 384, device=device), torch.ones(n, 12, dtype=torch.bool, device=device)
    gen = cpu_generator(0)

    def step():
        inputs, masked = sched.mask_tokens(tokens, is_image, generator=gen)
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16):
            loss = losses.masked_token_loss(tr(inputs, states, mask, logits_at=masked), tokens, masked)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timed(step, device, warmup=1, repeat=steps)


def main():
    ap = argparse.ArgumentParser(description="GPU check: story, clips and training steps, one report")
    ap.add_argument("--device", default="cuda", help="cuda, cpu or auto")
    ap.add_argument("--dtype", default="auto", help="the pipeline's dtype (auto: bf16 on a GPU that has it)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for the CPU dry run")
    ap.add_argument("--out", default="outputs/gpu_check.md")
    args = ap.parse_args()
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    q = args.quick
    sizes = dict(story_frames=48 if q else 1024, big=96 if q else 128, tok_batch=(2, 1) if q else (64, 16),
                 tr_batch=(4, 2) if q else (256, 64), train_steps=2 if q else 5)
    start = time.perf_counter()
    rows, notes = [], []

    def part(name, fn):
        t = time.perf_counter()
        try:
            value, note = fn()
            rows.append((name, value, note))
        except Exception as e:  # a failed part is a finding; the others still run
            rows.append((name, "FAILED", f"{type(e).__name__}: {e}".replace("|", "/")[:300]))
            traceback.print_exc()
        print(f"{name}: {rows[-1][1]} {rows[-1][2]} ({time.perf_counter() - t:.0f} s)", flush=True)

    from phenaki_core.pipelines import load_pipeline

    pipe = load_pipeline(device=device, dtype=dtype)
    n = sizes["story_frames"]

    def story():
        s = story_time(pipe, n, device)
        return f"{s:.1f} s", f"{n} frames, 4 segments: {n / s:.1f} frames/s (playback 8); paper: 1024 in 246 s on a TPU"

    part(f"story of {n} frames, shipped model", story)

    def clip64():
        s = timed(lambda: pipe("a red circle moves right", generator=cpu_generator(0)), device, warmup=1, repeat=3)
        return f"{s * 1000:.0f} ms", f"one 11-frame clip, 64x64, 12+2 steps, guidance {2.0}"

    part("one clip, shipped model (64x64)", clip64)

    def clip_big():
        big = big_pipeline(sizes["big"], device, dtype)
        s = timed(lambda: big("a red circle moves right", generator=cpu_generator(0)), device, warmup=1, repeat=3)
        tokens = 6 * (sizes["big"] // 8) ** 2
        return f"{s * 1000:.0f} ms", f"one 11-frame clip, {sizes['big']}x{sizes['big']} ({tokens} tokens), random weights"

    part(f"one clip at {sizes['big']}x{sizes['big']}", clip_big)

    def tok():
        v, i = sizes["tok_batch"]
        s = tokenizer_steps(device, v, i, sizes["train_steps"])
        return f"{s * 1000:.0f} ms/step", f"{v} videos + {i} images, bf16 autocast: {(v + i) / s:.0f} items/s"

    part("tokenizer training step", tok)

    def trf():
        v, i = sizes["tr_batch"]
        s = transformer_steps(device, v, i, sizes["train_steps"])
        return f"{s * 1000:.0f} ms/step", f"{v} videos + {i} images, bf16 autocast: {(v + i) / s:.0f} items/s"

    part("transformer training step", trf)

    if device.startswith("cuda"):
        name = torch.cuda.get_device_name()
        notes.append(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    else:
        name = platform.processor() or platform.machine()
    if os.environ.get("PHENAKI_TEXT_ENCODER_STANDIN"):
        notes.append("text encoder: a random-weight stand-in of MiniLM's shape (the packaged weights, 91 MB, exceed "
                     "the device's transfer limit); timings are unaffected, the frames are not the shipped model's")
    total = time.perf_counter() - start
    lines = [f"# GPU check ({'quick sizes, ' if q else ''}{device}, {name})", "",
             f"torch {torch.__version__}, pipeline dtype {str(dtype).replace('torch.', '')}, "
             f"{os.cpu_count()} CPU cores, {total:.0f} s for the timings below", "",
             "| measure | value | note |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += [""] + [f"- {x}" for x in notes] + ["", "```json", json.dumps({"sizes": sizes}), "```"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 1 if any(r[1] == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
