"""What a transformer training step costs on the shipped token grid and on a coarser one.

    python bench/bench_token_grid.py [--steps 20] [--rounds 2] [--out docs/bench_token_grid.md]

Two token layouts through `phenaki train-transformer` itself, the same transformer body
(width 256, depth 4, 4 heads) and batch (24 videos, 12 images, half of them also still clips):
  A. the shipped tokenizer: 8x8 patches, two-frame tubelets, 6 x 8 x 8 = 384 tokens a clip,
     1,024 codes;
  B. 16x16 patches, one-frame tubelets: 11 x 4 x 4 = 176 tokens a clip, 15,360 codes
     (an untrained tokenizer of that layout: the step's cost depends on the layout only);
  C. B with twice the videos (48).
Seconds a step come from each run's log (steps after the first 5). Runs alternate round
by round and ratios are taken within a round, so drift in the machine's speed hits all alike.
"""
import sys
import tempfile
from pathlib import Path

from transformer_step import ROOT, SHIPPED, bench_arguments, ratio_table, seconds_a_step

sys.path.insert(0, str(ROOT))
from phenaki_core.models import CViViT  # noqa: E402

COARSE = {"patch_size": 16, "temporal_patch_size": 1, "width": 192, "fsq_levels": [8, 8, 8, 6, 5]}


def main():
    args = bench_arguments()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        coarse = Path(tmp) / "coarse"
        CViViT(**COARSE).save_pretrained(coarse)
        configs = {"A: shipped grid, 384 tokens, 24 videos": (SHIPPED / "vqvae", 24),
                   "B: 16x16 one-frame grid, 176 tokens, 24 videos": (coarse, 24),
                   "C: 16x16 one-frame grid, 176 tokens, 48 videos": (coarse, 48)}
        for r in range(args.rounds):
            rounds.append({name: seconds_a_step(tok, ["--batch-videos", str(videos), "--batch-images", "12",
                                                       "--still-fraction", "0.5"], args.steps, Path(tmp) / f"{r}-{i}")
                           for i, (name, (tok, videos)) in enumerate(configs.items())})
            print(f"round {r + 1}: " + ", ".join(f"{k[:1]} {v:.2f} s" for k, v in rounds[-1].items()), flush=True)
    table = ratio_table(rounds, "token grid, batch")
    print(table)
    if args.out:
        Path(args.out).write_text(f"# A transformer step on two token grids (bench/bench_token_grid.py)\n\n"
                                  f"{args.steps} steps a run, {args.rounds} rounds, 12 images a step (6 also as "
                                  f"still clips), the same transformer body.\n\n{table}\n")


if __name__ == "__main__":
    main()
