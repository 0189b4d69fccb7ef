import numpy as np
from PIL import Image

from phenaki_core import CViViT
from phenaki_core.data import shapes_world as sw
from phenaki_core.data.shapes_world import HELD_OUT, parse_caption
from phenaki_core.eval.evaluate import StoryPlanner, clip_prompts, evaluate, quick_adherence

SECTIONS = ("## Prompt adherence", "## Stories", "## Table 2", "## Table 3", "## Real footage")


def test_quick_adherence_is_a_fraction(tiny_pipe):
    score = quick_adherence(tiny_pipe, n=3, steps=2)
    assert isinstance(score, float) and 0 <= score <= 1


def test_prompt_sets_follow_the_contract():
    rng = np.random.default_rng(0)
    assert all((parse_caption(p)["colour"], parse_caption(p)["shape"]) in HELD_OUT
               for p in clip_prompts(rng, 20, "heldout"))
    assert all(parse_caption(p)["style"] == "outlined" for p in clip_prompts(rng, 20, outlined=True))
    planner = StoryPlanner(rng, 7, 6)
    story = [parse_caption(planner.next_prompt()) for _ in range(7)]
    changed = [next(k for k in ("motion", "colour", "shape") if a[k] != b[k]) for a, b in zip(story, story[1:])]
    assert changed == ["motion", "colour", "shape"] * 2
    assert all(s["background"] == story[0]["background"] for s in story)


def _frame_with_object_at(x: int, y: int, size: int) -> np.ndarray:
    scene = sw.Scene("red", "square", "stays still", "black", x=x * size / 64, y=y * size / 64, half=sw.HALF * size / 64)
    return sw.render(scene, 1, size)[0]


def test_story_motions_are_drawn_from_where_the_object_is():
    """A new motion must keep the object in the frame for the segments it holds, from where
    the model put it: near the right edge, "moves left" (too far from the centre) but never
    "moves right"; near the top, "moves down" but never "moves up"."""
    cases = {(54, 32): ("moves left", "moves right"), (10, 32): ("moves right", "moves left"),
             (32, 10): ("moves down", "moves up")}
    for size in (32, 64):
        for (x, y), (possible, never) in cases.items():
            motions = set()
            for seed in range(40):
                planner = StoryPlanner(np.random.default_rng(seed), 4, 6)
                planner.next_prompt()
                motions.add(parse_caption(planner.next_prompt(_frame_with_object_at(x, y, size)))["motion"])
            assert possible in motions and never not in motions, (size, x, y, motions)


def test_evaluation_writes_every_section(tiny_pipe, tmp_path):
    per_frame = CViViT.per_frame_baseline(image_size=32, width=32, heads=2, spatial_depth=1, head_channels=8)
    results = evaluate(tiny_pipe, tmp_path, n=4, n_stories=1, steps=2, video_only_pipe=tiny_pipe,
                       per_frame_tokenizer=per_frame, cvivit_baseline=tiny_pipe.vqvae)
    report = (tmp_path / "report.md").read_text()
    for header in SECTIONS:
        assert header in report
    assert "Not run" not in report and "n = 4 clips per set" in report
    assert results["table3"]["per-frame"]["tokens"] == 11 * 4 * 4
    assert results["table3"]["C-ViViT (same budget)"]["tokens"] == 6 * 4 * 4
    assert "[video only](samples_outlined_video_only.png)" in report and "[table2]" not in report
    for name in ("seen", "heldout", "outlined", "stories", "outlined_video_only"):
        with Image.open(tmp_path / f"samples_{name}.png") as image:
            image.verify()


def test_tokenizer_report_sets_are_their_ground_truth(monkeypatch):
    """Through a perfect tokenizer every set passes the checker, outlined videos included: each
    set is rendered and captioned as it says, so its pass rate measures the tokenizer alone."""
    from phenaki_core.eval import tokenizer_eval
    from phenaki_core.eval.checker import read_frame

    sets = []
    monkeypatch.setattr(tokenizer_eval, "reconstruct", lambda model, frames: sets.append(frames) or frames)
    tokenizer = CViViT(image_size=32, width=32, heads=2, spatial_depth=1, temporal_depth=1, head_channels=8)
    report = tokenizer_eval.tokenizer_report(tokenizer, n_videos=6, n_images=5)
    for name in ("seen", "heldout", "outlined_images", "outlined_videos"):
        assert report[name]["adherence"] == 1.0, name
    outlined_videos = sets[-1]
    assert outlined_videos.shape[:2] == (5, 11)
    assert all(sum(read_frame(f).style == "outlined" for f in clip) > 5 for clip in outlined_videos)


def test_first_frames_are_scored_alone_without_their_motion():
    from dataclasses import replace

    from phenaki_core.eval.evaluate import _score_first_frames

    rng = np.random.default_rng(3)
    scenes = [replace(sw.sample_video_scene(rng), style="outlined") for _ in range(4)]
    clips = [sw.render(s) for s in scenes]
    prompts = [sw.caption(s) for s in scenes]
    assert _score_first_frames(clips, prompts)["adherence"] == 1.0
    # A first frame drawn solid fails, whatever the later frames show; a wrong motion does not count.
    solid_first = [np.concatenate([sw.render(replace(s, style="solid"), 1), c[1:]]) for s, c in zip(scenes, clips)]
    assert _score_first_frames(solid_first, prompts)["style"] == 0.0
    still = [np.repeat(c[:1], 11, 0) for c in clips]
    assert _score_first_frames(still, prompts)["adherence"] == 1.0
