"""What images cost a transformer training step, trained inside whole clips or alone.

    python bench/bench_single_frame_images.py [--steps 20] [--rounds 2] [--out docs/bench_single_frame_images.md]

Three batches through `phenaki train-transformer` itself, at the shipped configuration
(width 256, depth 4, 384 tokens a clip) from the shipped weights, each with 24 videos and
6 still clips:
  A. 12 images inside whole clips (the shipped model's CPU batch);
  B. 48 images inside whole clips;
  C. 48 images, 36 of them alone as one-latent-frame sequences (`--single-frame-images 0.75`).
The seconds a step come from each run's own log (steps after the first 5, so start-up and
the first allocations are left out). The runs alternate round by round, so drift in the
machine's speed hits all three alike; the ratios are taken within a round.
"""
import tempfile
from pathlib import Path

from transformer_step import SHIPPED, bench_arguments, ratio_table, seconds_a_step

CONFIGS = {
    "A: 12 images in whole clips": ["--batch-images", "12", "--still-fraction", "0.5"],
    "B: 48 images in whole clips": ["--batch-images", "48", "--still-fraction", "0.125"],
    "C: 48 images, 36 alone": ["--batch-images", "48", "--still-fraction", "0.125", "--single-frame-images", "0.75"],
}


def main():
    args = bench_arguments()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            rounds.append({name: seconds_a_step(SHIPPED / "vqvae", ["--batch-videos", "24", *extra], args.steps,
                                                Path(tmp) / f"{r}-{i}", init=SHIPPED / "transformer")
                           for i, (name, extra) in enumerate(CONFIGS.items())})
            print(f"round {r + 1}: " + ", ".join(f"{k[:1]} {v:.2f} s" for k, v in rounds[-1].items()), flush=True)
    table = ratio_table(rounds, "batch")
    print(table)
    if args.out:
        Path(args.out).write_text(f"# Images alone or in whole clips (bench/bench_single_frame_images.py)\n\n"
                                  f"{args.steps} steps a run, {args.rounds} rounds, 24 videos and 6 still clips a step.\n\n{table}\n")


if __name__ == "__main__":
    main()
