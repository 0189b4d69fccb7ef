"""What images cost a transformer training step, trained inside whole clips or alone.

    python bench/bench_single_frame_images.py [--steps 20] [--rounds 2] [--out docs/bench_single_frame_images.md]

Three batches through `phenaki train-transformer` itself, at the shipped configuration
(width 256, depth 4, 384 tokens a clip) from the shipped weights, each with 24 videos and
6 still clips:
  A. 12 images inside whole clips (the CPU batch of sessions 6-12);
  B. 48 images inside whole clips;
  C. 48 images, 36 of them alone as one-latent-frame sequences (`--single-frame-images 0.75`).
The seconds a step come from each run's own log (steps after the first 5, so start-up and
the first allocations are left out). The runs alternate round by round, so drift in the
machine's speed hits all three alike; the ratios are taken within a round.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "assets" / "phenaki-shapes-64"
CONFIGS = {
    "A: 12 images in whole clips": ["--batch-images", "12", "--still-fraction", "0.5"],
    "B: 48 images in whole clips": ["--batch-images", "48", "--still-fraction", "0.125"],
    "C: 48 images, 36 alone": ["--batch-images", "48", "--still-fraction", "0.125", "--single-frame-images", "0.75"],
}


def seconds_a_step(extra: list[str], steps: int, folder: Path) -> float:
    cmd = [sys.executable, "-m", "phenaki_core.cli", "train-transformer", "--tokenizer", str(MODEL / "vqvae"),
           "--init", str(MODEL / "transformer"), "--out", str(folder), "--steps", str(steps), "--lr", "1e-5",
           "--eval-every", "1000000", "--checkpoint-minutes", "1000", "--batch-videos", "24",
           "--story-fraction", "0.35", "--continuation-fraction", "0.35", "--seed", "3",
           "--config", json.dumps({"width": 256, "depth": 4, "heads": 4}), *extra]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    times = [json.loads(line)["time"] for line in open(folder / "log.jsonl")]
    return (times[-1] - times[4]) / (len(times) - 5)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            rounds.append({name: seconds_a_step(extra, args.steps, Path(tmp) / f"{r}-{i}")
                           for i, (name, extra) in enumerate(CONFIGS.items())})
            print(f"round {r + 1}: " + ", ".join(f"{k[:1]} {v:.2f} s" for k, v in rounds[-1].items()), flush=True)
    base = next(iter(CONFIGS))
    lines = ["| batch | seconds a step (median of rounds) | against A (median of the rounds' ratios) |", "|---|---|---|"]
    for name in CONFIGS:
        secs = statistics.median(r[name] for r in rounds)
        ratio = statistics.median(r[name] / r[base] for r in rounds)
        lines.append(f"| {name} | {secs:.2f} | {ratio:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(f"# Images alone or in whole clips (bench/bench_single_frame_images.py)\n\n"
                                  f"{args.steps} steps a run, {args.rounds} rounds, 24 videos and 6 still clips a step.\n\n{table}\n")


if __name__ == "__main__":
    main()
