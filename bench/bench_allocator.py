"""What `phenaki_core.runtime.keep_freed_memory()` buys, side by side in one run.

    python bench/bench_allocator.py [--rounds 2] [--out docs/bench_allocator.md]

glibc's allocator settings hold for a whole process, so each measurement runs in a fresh
child process, alternating glibc's defaults and ours: the tokenizer's training step (bf16,
16 videos, L2: bench_vs_peer.py's) and one sampled clip, with the page faults per step.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def child(keep: bool) -> dict:
    import torch
    from bench_speed import GUIDANCE, bench_pipeline, timed, tokenizer_step

    from phenaki_core.runtime import keep_freed_memory

    took = keep_freed_memory() if keep else False
    torch.set_num_threads(2)
    pipe = bench_pipeline()
    gen = lambda: torch.Generator().manual_seed(0)
    pipe.encode_prompt(["a red circle moves left"])
    clip = timed(lambda: pipe.generate_clip("a red circle moves left", guidance_scale=GUIDANCE, generator=gen()), 3)
    tok_step = tokenizer_step(pipe.vqvae.train(), torch.rand(16, 3, 11, 64, 64) * 2 - 1)
    tok_step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step = timed(tok_step, 5, warmup=0)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 5
    return {"took_effect": took, "clip_s": clip, "tokenizer_step_s": step, "page_faults_per_step": faults}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="docs/bench_allocator.md")
    ap.add_argument("--child", choices=["default", "kept"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "kept")))
        return
    runs = {"default": [], "kept": []}
    for r in range(args.rounds):
        for name in runs:
            out = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {name}: {runs[name][-1]}", flush=True)
    if not all(m["took_effect"] for m in runs["kept"]):
        sys.exit("keep_freed_memory() did not take effect here (not Linux with glibc): nothing to compare")
    med = {name: {k: statistics.median(m[k] for m in ms) for k in ("clip_s", "tokenizer_step_s", "page_faults_per_step")}
           for name, ms in runs.items()}
    d, k = med["default"], med["kept"]
    lines = ["# glibc's default allocator vs keep_freed_memory() (bench/bench_allocator.py)", "",
             f"{args.rounds} alternating rounds of fresh processes, medians, 2 threads.", "",
             "| measure | glibc default | keep_freed_memory() | speed-up |", "|---|---|---|---|",
             f"| tokenizer train step (16 videos, bf16) | {d['tokenizer_step_s']:.3f} s | {k['tokenizer_step_s']:.3f} s | "
             f"{d['tokenizer_step_s'] / k['tokenizer_step_s']:.2f}x |",
             f"| page faults per tokenizer step | {d['page_faults_per_step']:,.0f} | {k['page_faults_per_step']:,.0f} | |",
             f"| sample one clip | {d['clip_s']:.3f} s | {k['clip_s']:.3f} s | {d['clip_s'] / k['clip_s']:.2f}x |"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
