import math

import numpy as np
import pytest

from phenaki_core.data.shapes_world import (
    COLOURS,
    MOTIONS,
    SHAPES,
    Scene,
    caption,
    render,
    sample_image_scene,
    sample_story_clip,
    sample_video_scene,
)
from phenaki_core.eval.checker import check_clip, check_continuity, read_frame, summarize


def blur(frames: np.ndarray, sigma: float, rng: np.random.Generator, noise: float = 2.0) -> np.ndarray:
    """Separable Gaussian blur over H and W of (T, H, W, 3) uint8 frames, plus Gaussian noise."""
    r = math.ceil(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    x = frames.astype(np.float32)
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded, n = np.pad(x, pad, mode="edge"), x.shape[axis]
        x = sum(w * np.take(padded, np.arange(i, i + n), axis=axis) for i, w in enumerate(kernel))
    return np.clip(np.rint(x + rng.normal(0, noise, x.shape)), 0, 255).astype(np.uint8)


def _clips(size, n, seed):
    rng = np.random.default_rng(seed)
    for i in range(n):
        scene = sample_video_scene(rng, size, split="heldout" if i % 3 == 0 else "train")
        yield scene, render(scene, 11, size), rng


@pytest.mark.parametrize("size,n", [(64, 300), (128, 60)])
def test_exact_renders_follow_their_prompts(size, n):
    results = [check_clip(frames, caption(scene)) for scene, frames, _ in _clips(size, n, seed=size)]
    summary = summarize(results)
    assert summary["adherence"] == 1.0, summary


@pytest.mark.parametrize("size,n", [(64, 300), (128, 60)])
def test_blurred_noisy_renders_follow_their_prompts(size, n):
    results = [check_clip(blur(frames, 0.6 * size / 64, rng), caption(scene))
               for scene, frames, rng in _clips(size, n, seed=size + 1)]
    summary = summarize(results)
    assert summary["adherence"] == 1.0, summary


def test_every_motion_is_read():
    for motion in MOTIONS:
        scene = Scene("red", "square", motion, "black", x=32, y=32, half=13 if motion == "shrinks" else 7)
        assert check_clip(render(scene, 11, 64), caption(scene)).read["motion"] == motion


@pytest.mark.parametrize("blurred", [False, True])
def test_images_and_outlines_are_read(blurred):
    rng = np.random.default_rng(3)
    styles = set()
    for _ in range(200):
        scene = sample_image_scene(rng, 64)
        frames = render(scene, 1, 64)
        frames = blur(frames, 0.6, rng) if blurred else frames
        result = check_clip(frames, caption(scene))
        assert result.follows, (scene, result.read)
        assert result.read["motion"] is None
        styles.add(result.read["style"])
    assert styles == {"solid", "outlined"}


def test_wrong_prompts_fail_the_right_attribute():
    frames = render(Scene("blue", "circle", "moves up", "gray", x=30, y=40, half=7), 11, 64)
    assert check_clip(frames, "a blue circle moves up").follows
    wrong_colour = check_clip(frames, "a red circle moves up")
    assert not wrong_colour.follows and not wrong_colour.colour and wrong_colour.shape and wrong_colour.motion
    assert not check_clip(frames, "a blue square moves up").shape
    assert not check_clip(frames, "a blue circle moves down").motion
    assert not check_clip(frames, "a blue outlined circle moves up").style
    parsed = {"colour": "blue", "shape": "circle", "motion": "moves up"}
    assert check_clip(frames, parsed).follows


def test_missing_object_fails_everything():
    frames = render(Scene("white", "triangle", "stays still", "navy", x=30, y=30, half=7), 11, 64)
    frames[5] = frames[5, 0, 0]
    assert read_frame(frames[5]) is None
    result = check_clip(frames, "a white triangle stays still")
    assert not any([result.follows, result.detected, result.colour, result.shape, result.style, result.motion])


def test_read_frame_values():
    frame = render(Scene("yellow", "square", None, "black", x=20, y=40, half=7), 1, 64)[0]
    reading = read_frame(frame)
    assert (reading.colour, reading.shape, reading.style) == ("yellow", "square", "solid")
    assert reading.area == 196 and reading.centroid == pytest.approx((20, 40), abs=0.5)
    assert reading.colour in COLOURS and reading.shape in SHAPES


def test_continuity():
    rng = np.random.default_rng(4)
    for _ in range(30):
        frames, _, change = sample_story_clip(rng, 64, 11)
        assert check_continuity(frames[change - 1], frames[change])
    a = render(Scene("red", "circle", None, "black", x=20, y=32, half=7), 1, 64)[0]
    b = render(Scene("red", "circle", None, "black", x=26, y=32, half=7), 1, 64)[0]
    c = render(Scene("red", "circle", None, "black", x=45, y=32, half=7), 1, 64)[0]
    assert check_continuity(a, b) and not check_continuity(a, c)
    assert not check_continuity(a, np.full_like(a, 10))
    big_a, big_c = (render(Scene("red", "circle", None, "black", x=2 * x, y=64, half=14), 1, 128)[0] for x in (20, 26))
    assert check_continuity(big_a, big_c), "max_jump scales with the frame size"


def test_story_clip_segments_read_as_captioned():
    rng = np.random.default_rng(6)
    checked = 0
    for _ in range(30):
        frames, text, change = sample_story_clip(rng, 64, 11)
        result = check_clip(frames[change:], text)
        assert result.colour and result.shape and result.style
        # The caption's motion is the one from the change on (frame change-1 is where it starts);
        # over two or three frames a size change is too small to read, so motion is judged on 5 or more.
        moving = frames[change - 1:]
        if len(moving) >= 5:
            assert check_clip(moving, text).motion, (text, change)
            checked += 1
    assert checked >= 15


def test_summarize():
    frames = render(Scene("red", "circle", "grows", "black", x=32, y=32, half=7), 11, 64)
    results = [check_clip(frames, "a red circle grows"), check_clip(frames, "a red circle shrinks")]
    assert summarize(results) == {"n": 2, "adherence": 0.5, "colour": 1.0, "shape": 1.0, "style": 1.0, "motion": 0.5}
    assert math.isnan(summarize([])["adherence"])
