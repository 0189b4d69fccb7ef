"""Sampling speed and frames of this tree against another checkout, in one run.

    git worktree add /tmp/before HEAD~1   # or any commit to compare with
    python bench/bench_sampling_vs_main.py --other /tmp/before [--rounds 3] [--threads 2]

Each measure runs in a fresh process per tree, the trees alternating round by round (A B A B
...), so drift on a shared machine falls on both. Prints the median of each measure per tree
and their ratio, and whether the shipped model renders the same frames for the same story
in both trees (the story engine's sidecars promise that)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from phenaki_core.pipelines import load_pipeline
try:
    from phenaki_core.story import Segment, Story, StoryRenderer
except ImportError:  # a tree from before the story engine moved
    from phenaki_core.pipelines.story import Segment, Story, StoryRenderer
sys.path.insert(0, sys.argv[3])
from bench_speed import bench_pipeline

def timed(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return float(np.median(times))

gen = lambda: torch.Generator().manual_seed(0)
out = {}
pipe = bench_pipeline()  # the speed issue's configuration: 384 tokens, width 256, depth 4
out["bench config: one clip, 12+2 steps, guidance 3"] = timed(
    lambda: pipe.generate_clip("a red circle moves left", guidance_scale=3.0, generator=gen()), 3)
shipped = load_pipeline()
ctx = shipped.generate_clip("a red circle moves left", generator=gen())[0][-5:]
out["shipped model: continuation, 6 new frames"] = timed(
    lambda: shipped.generate_clip("a red circle moves up", ctx, generator=gen()), 3)
story = Story([Segment("a red circle moves right", 11, 0), Segment("a red circle moves down", 17, 1),
               Segment("a blue circle moves down", 6, 2, "cut")])
frames = []
def render():
    r = StoryRenderer(shipped, story); r.render(); frames[:] = [r.frames()]
out["shipped model: story of 34 frames (4 clips)"] = timed(render, 1)
np.save(sys.argv[2], frames[0])
print("RESULT", json.dumps(out))
"""


def run(tree: Path, threads: int, frames_path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(frames_path), str(tree / "bench")],
                          capture_output=True, text=True, env=env, cwd=tree, timeout=1800)
    if done.returncode:
        raise SystemExit(f"{tree}: {done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--other", required=True, help="the checkout to compare with (read only)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = ap.parse_args()
    trees = {"this tree": HERE, "other": Path(args.other).resolve()}
    results = {name: [] for name in trees}
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for r in range(args.rounds):
        for name, tree in (trees.items() if r % 2 == 0 else reversed(list(trees.items()))):
            results[name].append(run(tree, args.threads, tmp / f"bench_vs_{name.replace(' ', '_')}.npy"))
            print(f"round {r + 1}: {name}: {json.dumps(results[name][-1])}", file=sys.stderr, flush=True)
        report(args, results, tmp, r + 1)


def report(args, results, tmp, rounds):
    import numpy as np

    lines = [f"| measure ({args.threads} threads, median of {rounds} rounds) | this tree (s) | {args.other} (s) "
             "| this / other |", "|---|---|---|---|"]
    for key in results["this tree"][0]:
        a = statistics.median(x[key] for x in results["this tree"])
        b = statistics.median(x[key] for x in results["other"])
        lines.append(f"| {key} | {a:.3f} | {b:.3f} | {a / b:.2f}x |")
    same = np.array_equal(np.load(tmp / "bench_vs_this_tree.npy"), np.load(tmp / "bench_vs_other.npy"))
    lines.append("")
    lines.append(f"Shipped model, the same 3-segment story and seeds in both trees: frames "
                 f"{'bit-identical' if same else 'DIFFER'}.")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
