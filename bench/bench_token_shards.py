"""What a transformer training step costs from token shards against encoding every batch.

    python bench/bench_token_shards.py [--steps 20] [--rounds 1] [--out docs/bench_token_shards.md]

Shapes World is tokenized once by the shipped tokenizer (`python -m phenaki_core.training.tokenize`,
enough clips and images for every step of a run), then `phenaki train-transformer` runs the
shipped configuration (width 256, depth 4) on the same batch (32 videos, 8 images) twice:
  A. rendering and encoding each batch in the step (the default, no --tokens);
  B. reading the batch's tokens from the shards (--tokens).
The seconds a step come from each run's own log (steps after the first 5). The time to
tokenize is printed too: it is paid once, where A pays its encoding every step.
"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transformer_step import ROOT, SHIPPED, bench_arguments, ratio_table, seconds_a_step

BATCH = ["--batch-videos", "32", "--batch-images", "8"]


def main():
    args = bench_arguments()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(tmp) / "shards"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "phenaki_core.training.tokenize", "--tokenizer", str(SHIPPED / "vqvae"),
                        "--out", str(shards), "--clips", str(32 * args.steps), "--image-count", str(8 * args.steps),
                        "--story-fraction", "0.35"], check=True, capture_output=True, cwd=ROOT)
        tokenize_s = time.perf_counter() - t0
        print(f"tokenize {40 * args.steps} clips and images: {tokenize_s:.1f} s", flush=True)
        for r in range(args.rounds):
            rounds.append({
                "A: encode every batch": seconds_a_step(SHIPPED / "vqvae", BATCH, args.steps, Path(tmp) / f"{r}-a"),
                "B: token shards": seconds_a_step(SHIPPED / "vqvae", [*BATCH, "--tokens", str(shards)], args.steps,
                                                  Path(tmp) / f"{r}-b"),
            })
            print(f"round {r + 1}: " + ", ".join(f"{k[:1]} {v:.2f} s" for k, v in rounds[-1].items()), flush=True)
    table = ratio_table(rounds, "batch source")
    print(table)
    if args.out:
        Path(args.out).write_text(
            f"# Token shards against encoding every batch (bench/bench_token_shards.py)\n\n"
            f"{args.steps} steps a run, {args.rounds} round(s), 32 videos and 8 images a step, the shipped tokenizer "
            f"and transformer configuration, CPU.\n\n{table}\n\nTokenizing the {32 * args.steps} clips and "
            f"{8 * args.steps} images once took {tokenize_s:.1f} s.\n")


if __name__ == "__main__":
    main()
