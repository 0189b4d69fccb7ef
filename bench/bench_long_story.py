"""A 2-minute story on the shipped model: 960 frames at 8 fps, prompts switching motion,
colour and shape. Records wall time, peak memory, whether each segment follows its prompt
(Shapes World checker) and continuity at every switch; writes the story as MP4 + sidecar.

    python bench/bench_long_story.py [--model DIR] [--out docs/long_story]
"""
import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phenaki_core.eval.checker import check_clip, check_continuity  # noqa: E402
from phenaki_core.io import export_story  # noqa: E402
from phenaki_core.pipelines import Segment, Story, StoryRenderer, load_pipeline  # noqa: E402

PROMPTS = [
    "a red circle moves right", "a red circle moves left", "a blue circle moves left", "a blue circle moves right",
    "a blue square moves right", "a blue square moves left", "a yellow square moves left", "a yellow square stays still",
    "a yellow triangle stays still", "a yellow triangle moves up", "a white triangle moves down", "a white circle moves down",
    "a white circle moves up", "a green circle moves up", "a green circle moves down", "a green square stays still",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--out", default="docs/long_story")
    args = ap.parse_args()
    pipe = load_pipeline(args.model)
    frames_total = args.seconds * pipe.fps
    per_segment = frames_total // len(PROMPTS)
    story = Story([Segment(p, per_segment, seed=i) for i, p in enumerate(PROMPTS)])
    renderer = StoryRenderer(pipe, story)
    t = time.perf_counter()
    renderer.render()
    wall = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    video = renderer.frames()
    print(f"{len(video)} frames ({len(video) / pipe.fps:.0f} s of video) in {wall:.0f} s: "
          f"{len(video) / wall:.1f} frames/s; peak RSS {peak_mb:.0f} MB")
    follows, continuous = [], []
    for i, r in enumerate(renderer.results):
        # Judge the last clip-length of each segment: the prompt describes where it ends up.
        follows.append(check_clip(r.frames[-pipe.clip_frames:], story.segments[i].prompt).follows)
        if i:
            continuous.append(check_continuity(renderer.results[i - 1].frames[-1], r.frames[0]))
    print(f"segments on prompt: {sum(follows)}/{len(follows)} (last segment: {follows[-1]}); "
          f"continuous switches: {sum(continuous)}/{len(continuous)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    export_story(video, story, out / "story.mp4", fps=pipe.fps, size=256)
    (out / "results.md").write_text(
        f"# 2-minute story (bench/bench_long_story.py)\n\n{len(video)} frames in {wall:.0f} s "
        f"({len(video) / wall:.1f} frames/s), peak RSS {peak_mb:.0f} MB.\n\n"
        f"Segments on prompt: {sum(follows)}/{len(follows)}; last segment on prompt: {follows[-1]}; "
        f"continuous switches: {sum(continuous)}/{len(continuous)}.\n")


if __name__ == "__main__":
    main()
