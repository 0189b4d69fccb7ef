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
from phenaki_core.pipelines import load_pipeline  # noqa: E402
from phenaki_core.runtime import keep_freed_memory  # noqa: E402
from phenaki_core.story import Segment, Story, StoryRenderer  # noqa: E402

# (prompt, frames). Every prompt is possible in Shapes World: an object moving 2 px a frame
# crosses a 64-px frame within 32 frames, so motions are short and holds are long, and the
# moves cancel out: the object ends within 16 px of where the model first put it. Colour
# and shape change on the holds, motion on the moves: 8 x (112 + 8) = 960 frames.
SEGMENTS = [
    ("a red circle stays still", 112), ("a red circle moves right", 8),
    ("a blue circle stays still", 112), ("a blue circle moves left", 8),
    ("a blue square stays still", 112), ("a blue square moves down", 8),
    ("a yellow square stays still", 112), ("a yellow square moves up", 8),
    ("a yellow triangle stays still", 112), ("a yellow triangle grows", 8),
    ("a white triangle stays still", 112), ("a white triangle shrinks", 8),
    ("a white circle stays still", 112), ("a white circle moves left", 8),
    ("a green circle stays still", 112), ("a green circle moves right", 8),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default="docs/long_story")
    args = ap.parse_args()
    keep_freed_memory()  # as the phenaki CLI and the studio do
    pipe = load_pipeline(args.model)
    story = Story([Segment(p, frames, seed=i) for i, (p, frames) in enumerate(SEGMENTS)])
    renderer = StoryRenderer(pipe, story)
    t = time.perf_counter()
    renderer.render()
    wall = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    video = renderer.frames()
    print(f"{len(video)} frames ({len(video) / pipe.fps:.0f} s of video) in {wall:.0f} s: "
          f"{len(video) / wall:.1f} frames/s; peak RSS {peak_mb:.0f} MB")
    follows, continuous, rows = [], [], []
    for i, r in enumerate(renderer.results):
        # Judge the last clip-length of each segment (all of a short one): where it ends up.
        result = check_clip(r.frames[-pipe.clip_frames:], story.segments[i].prompt)
        follows.append(result.follows)
        if i:
            continuous.append(check_continuity(renderer.results[i - 1].frames[-1], r.frames[0]))
        read = ", ".join(f"{k} {v}" for k, v in result.read.items()) if result.detected else "no object"
        rows.append(f"| {i + 1} | {story.segments[i].prompt} | {len(r.frames)} | {read} | {'yes' if result.follows else 'no'} | "
                    f"{('yes' if continuous[-1] else 'no') if i else '-'} |")
    print(f"segments on prompt: {sum(follows)}/{len(follows)} (last segment: {follows[-1]}); "
          f"continuous switches: {sum(continuous)}/{len(continuous)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    export_story(video, story, out / "story.mp4", fps=pipe.fps, size=256)
    (out / "results.md").write_text(
        f"# 2-minute story (bench/bench_long_story.py)\n\n{len(video)} frames in {wall:.0f} s "
        f"({len(video) / wall:.1f} frames/s), peak RSS {peak_mb:.0f} MB.\n\n"
        f"Segments on prompt: {sum(follows)}/{len(follows)}; last segment on prompt: {follows[-1]}; "
        f"continuous switches: {sum(continuous)}/{len(continuous)}.\n\n"
        "| segment | prompt | frames | read by the checker | on prompt | continuous |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
