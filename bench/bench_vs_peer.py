"""Phenaki Studio against lucidrains' phenaki-pytorch 0.5.0, side by side in one run.

    python bench/bench_vs_peer.py --peer-python /path/to/peer-venv/bin/python [--rounds 2]

The peer lives in its own virtual environment (see docs/PERFORMANCE.md for the set-up);
this script alternates rounds of ours (in process) and the peer's (a subprocess), so
machine drift hits both alike, and prints the ratios. Configuration on both sides: 64x64,
11 frames, p=8, tp=2 (384 tokens), codebook 1024, C-ViViT width 128 with 2+2 layers,
transformer width 256 depth 4, 12 sampling steps, guidance 3, 2 threads, text encoding
excluded; training steps at 16 videos (tokenizer, L2 only) and 32 videos (transformer).
Our clip is timed twice: at that configuration (12 MaskGIT steps, the peer's algorithm) and
as it ships, with its 2 refinement steps after them (14 transformer forwards to the peer's
12). The continuation is timed as it ships. The peer is timed twice a round: as it ships,
and with glibc keeping freed memory as our entry points do (phenaki_core/runtime.py), so
the table shows what that setting alone would give it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import GUIDANCE, bench_pipeline, timed, tokenizer_step  # noqa: E402

from phenaki_core.runtime import KEEP_BYTES  # noqa: E402


def ours(repeat: int) -> dict:
    from phenaki_core import MaskGitScheduler
    from phenaki_core.runtime import keep_freed_memory
    from phenaki_core.training import losses

    keep_freed_memory()  # as the phenaki CLI and the studio do
    torch.set_num_threads(2)
    pipe = bench_pipeline()
    gen = lambda: torch.Generator().manual_seed(0)
    pipe.encode_prompt(["a red circle moves left", "a red circle moves up"])  # cached, like the peer's fixed states
    clip = lambda: pipe.generate_clip("a red circle moves left", guidance_scale=GUIDANCE, generator=gen())
    out = {"clip_s": timed(clip, repeat)}
    refining = pipe.scheduler
    pipe.scheduler = MaskGitScheduler.from_config(refining.config, refine_steps=0)
    out["clip_12_steps_s"] = timed(clip, repeat)
    pipe.scheduler = refining
    prime = pipe.generate_clip("a red circle moves left", guidance_scale=GUIDANCE, generator=gen())[0][-5:]
    out["continuation_s"] = timed(lambda: pipe.generate_clip("a red circle moves up", prime, guidance_scale=GUIDANCE, generator=gen()), repeat)

    vq, tr = pipe.vqvae.train(), pipe.transformer.train()
    out["tokenizer_step_s"] = timed(tokenizer_step(vq, torch.rand(16, 3, 11, 64, 64) * 2 - 1), repeat)
    videos = torch.rand(32, 3, 11, 64, 64) * 2 - 1
    states, mask = pipe.encode_prompt(["a red circle moves left"] * 32)
    mopt = torch.optim.AdamW(tr.parameters())
    no_images = torch.zeros(32, dtype=torch.bool)

    def mg_step():
        with torch.no_grad():
            tokens = vq.eval().tokenize(videos)
        inputs, masked = losses.prepare_masked_batch(tokens, no_images, tr.mask_token_id)
        drop = torch.rand(32) < 0.1
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = losses.masked_token_loss(tr(inputs, states, mask, drop, logits_at=masked), tokens, masked)
        mopt.zero_grad(); loss.backward(); mopt.step()

    out["transformer_step_s"] = timed(mg_step, repeat)
    return out


def plot(series: dict, path):
    """series: label -> the rounds' timings; one bar per label and measure, medians."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["clip_s", "continuation_s", "tokenizer_step_s", "transformer_step_s"]
    labels = ["clip", "continuation", "tokenizer step", "transformer step"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(series)
    for j, (label, runs) in enumerate(series.items()):
        times = [statistics.median(r[k] for r in runs) for k in keys]
        ax.bar([i - 0.4 + width * (j + 0.5) for i in range(len(keys))], times, width, label=label)
    ax.set_xticks(range(len(keys)), labels)
    ax.set_ylabel("seconds (lower is better)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer-python", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="docs/bench_vs_peer.md")
    args = ap.parse_args()
    peer_script = Path(__file__).with_name("peer_phenaki_pytorch.py")
    # glibc reads the same setting from its environment variables at the peer's start.
    kept = {"MALLOC_MMAP_THRESHOLD_": str(KEEP_BYTES), "MALLOC_TRIM_THRESHOLD_": str(KEEP_BYTES)}
    mine, theirs, theirs_kept = [], [], []
    for r in range(args.rounds):
        mine.append(ours(args.repeat))
        for runs, env in ((theirs, {}), (theirs_kept, kept)):
            run = subprocess.run([args.peer_python, str(peer_script), str(args.repeat)], capture_output=True, text=True,
                                 env={**os.environ, **env})
            if run.returncode:
                sys.exit(f"the peer failed:\n{run.stderr[-3000:]}")
            runs.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1}: ours {mine[-1]}\n         peer {theirs[-1]}\n         peer, memory kept {theirs_kept[-1]}",
              flush=True)
    rows = []
    for key, label in (("clip_12_steps_s", "sample one clip (11 frames), 12 steps"),
                       ("clip_s", "sample one clip, 12 + 2 refinement steps (ours as shipped)"),
                       ("continuation_s", "continuation, 5 primed + 6 new frames"),
                       ("tokenizer_step_s", "tokenizer train step (16 videos)"),
                       ("transformer_step_s", "transformer train step (32 videos)")):
        a = statistics.median(m[key] for m in mine)
        b = statistics.median(t[key.replace("_12_steps", "")] for t in theirs)
        c = statistics.median(t[key.replace("_12_steps", "")] for t in theirs_kept)
        rows.append(f"| {label} | {a:.2f} s | {b:.2f} s | {b / a:.1f}x | {c:.2f} s | {c / a:.1f}x |")
    cont = statistics.median(m["continuation_s"] for m in mine)
    lines = ["# Phenaki Studio vs phenaki-pytorch 0.5.0 (bench/bench_vs_peer.py)", "",
             f"{args.rounds} alternating rounds, median of {args.repeat} timings each, 2 threads.", "",
             "| measure | ours | peer | speed-up | peer, memory kept | speed-up |", "|---|---|---|---|---|---|", *rows, "",
             f"Continuation: {6 / cont:.1f} new frames/s for us (playback is 8 fps)."]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    plot({"phenaki-pytorch 0.5.0": theirs, "phenaki-pytorch, memory kept": theirs_kept, "Phenaki Studio": mine},
         Path(args.out).with_suffix(".png"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
