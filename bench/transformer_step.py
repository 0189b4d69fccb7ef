"""Seconds a step of `phenaki train-transformer` itself, for the benchmarks that compare batches
or token grids: the trainer's own log, the first 5 steps left out (start-up, first allocations)."""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "assets" / "phenaki-shapes-64"


def seconds_a_step(tokenizer: Path, extra: list[str], steps: int, folder: Path, init: Path | None = None) -> float:
    """The shipped transformer body (width 256, depth 4), the shipped story and continuation mix."""
    cmd = [sys.executable, "-m", "phenaki_core.cli", "train-transformer", "--tokenizer", str(tokenizer),
           "--out", str(folder), "--steps", str(steps), "--lr", "1e-5",
           "--eval-every", "1000000", "--checkpoint-minutes", "1000",
           "--story-fraction", "0.35", "--continuation-fraction", "0.35", "--seed", "3",
           "--config", json.dumps({"width": 256, "depth": 4, "heads": 4}), *extra]
    if init is not None:
        cmd += ["--init", str(init)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    times = [json.loads(line)["time"] for line in open(folder / "log.jsonl")]
    return (times[-1] - times[4]) / (len(times) - 5)


def ratio_table(rounds: list[dict[str, float]], first_column: str) -> str:
    """Medians over rounds, each run against the first within its round, so that drift in the
    machine's speed between rounds cancels."""
    names = list(rounds[0])
    lines = [f"| {first_column} | seconds a step (median of rounds) | against A (median of the rounds' ratios) |",
             "|---|---|---|"]
    for name in names:
        secs = statistics.median(r[name] for r in rounds)
        ratio = statistics.median(r[name] / r[names[0]] for r in rounds)
        lines.append(f"| {name} | {secs:.2f} | {ratio:.2f}x |")
    return "\n".join(lines)


def bench_arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=None)
    return p.parse_args()
