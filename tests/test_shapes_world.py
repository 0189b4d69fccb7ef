import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from phenaki_core.data import shapes_world as sw
from phenaki_core.data.shapes_world import (
    BACKGROUNDS,
    COLOURS,
    HELD_OUT,
    MOTIONS,
    SHAPES,
    Scene,
    ShapesWorld,
    caption,
    parse_caption,
    render,
    sample_batch,
    sample_image_scene,
    sample_story_clip,
    sample_video_scene,
)


@pytest.mark.parametrize("size", [8, 32, 64, 128])
def test_render_any_multiple_of_eight(size):
    scene = sample_video_scene(np.random.default_rng(0), size=size)
    frames = render(scene, 11, size)
    assert frames.shape == (11, size, size, 3) and frames.dtype == np.uint8


@pytest.mark.parametrize("size", [0, 60, 65])
def test_render_rejects_other_sizes(size):
    scene = Scene("red", "circle", "grows", "black", x=30, y=30, half=7)
    with pytest.raises(ValueError, match="multiple of 8"):
        render(scene, 11, size)


def test_scene_rejects_unknown_values():
    with pytest.raises(ValueError):
        Scene("pink", "circle", "grows", "black", x=30, y=30, half=7)


def test_render_draws_the_contract_geometry():
    # A solid 14x14 square at integer-aligned edges covers exactly 14x14 pixels of its colour.
    frame = render(Scene("red", "square", None, "black", x=32, y=32, half=7), 1, 64)[0]
    on = (frame == COLOURS["red"]).all(-1)
    assert on.sum() == 14 * 14 and on[25:39, 25:39].all()
    assert (frame[~on] == BACKGROUNDS["black"]).all()
    # The triangle points up: its top row is narrower than its bottom row.
    tri = render(Scene("red", "triangle", None, "black", x=32, y=32, half=7), 1, 64)[0].sum(-1) > 100
    rows = np.nonzero(tri.any(1))[0]
    assert tri[rows[0]].sum() < tri[rows[-1]].sum()


def test_motion_moves_by_the_contract():
    s = Scene("white", "square", "moves right", "black", x=20, y=32, half=7)
    frames = render(s, 11, 64)
    cols = [np.nonzero((f.sum(-1) > 300).any(0))[0] for f in frames]
    assert cols[10][0] - cols[0][0] == 20
    g = render(Scene("white", "square", "grows", "black", x=32, y=32, half=7), 11, 64)
    assert (g[-1].sum(-1) > 300).sum() == 26 * 26


def test_samplers_are_deterministic_per_seed():
    a = sample_batch(np.random.default_rng(3), 6, 3, 32, 11, 0.5)
    b = sample_batch(np.random.default_rng(3), 6, 3, 32, 11, 0.5)
    c = sample_batch(np.random.default_rng(4), 6, 3, 32, 11, 0.5)
    assert all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    videos, video_captions, images, image_captions = a
    assert videos.shape == (6, 11, 32, 32, 3) and images.shape == (3, 1, 32, 32, 3)
    assert len(video_captions) == 6 and len(image_captions) == 3
    empty = sample_batch(np.random.default_rng(0), 0, 0, 32, 11, 0.0)
    assert empty[0].shape == (0, 11, 32, 32, 3) and empty[2].shape == (0, 1, 32, 32, 3)


def test_splits():
    rng = np.random.default_rng(0)
    train = {(s.colour, s.shape) for s in (sample_video_scene(rng) for _ in range(2000))}
    assert not train & HELD_OUT and len(train) == 3 * len(COLOURS) - len(HELD_OUT)
    heldout = {(s.colour, s.shape) for s in (sample_video_scene(rng, split="heldout") for _ in range(200))}
    assert heldout == HELD_OUT


def test_outlined_only_in_images():
    rng = np.random.default_rng(1)
    _, video_captions, _, image_captions = sample_batch(rng, 300, 200, 16, 11, 0.3)
    assert not any(parse_caption(c)["style"] == "outlined" for c in video_captions)
    image_styles = {parse_caption(c)["style"] for c in image_captions}
    assert image_styles == {"solid", "outlined"}
    image_pairs = {(s.colour, s.shape) for s in (sample_image_scene(rng) for _ in range(500))}
    assert HELD_OUT <= image_pairs


@pytest.mark.parametrize("size", [32, 64])
def test_motion_stays_inside_the_frame(size):
    rng = np.random.default_rng(2)
    for i in range(300):
        if i % 3:
            frames = render(sample_video_scene(rng, size, split="any"), 11, size)
        else:
            frames = sample_story_clip(rng, size, 11)[0]
        bg = frames[0, 0, 0]
        assert tuple(bg) in BACKGROUNDS.values()
        border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], 1)
        assert (border == bg).all(), "the object touched the frame border"
        assert (frames != bg).any(-1).any((1, 2)).all(), "the object left the frame"


def test_story_clip_changes_motion_or_colour():
    from phenaki_core.eval.checker import read_frame, read_motion

    rng = np.random.default_rng(5)
    motion_changes = 0
    for _ in range(120):
        frames, text, change = sample_story_clip(rng, 64, 11)
        after = parse_caption(text)
        assert 1 <= change <= 9 and (after["colour"], after["shape"]) not in HELD_OUT
        assert (frames[change] == COLOURS[after["colour"]]).all(-1).any()
        readings = [read_frame(f) for f in frames]
        if readings[change - 1].colour != readings[change].colour:
            continue  # the colour changed at the change frame
        # Otherwise the motion did: the caption's motion from the change on, another before it
        # (judged where both stretches are 5 frames or more, long enough to read a size change).
        if change >= 5 and len(frames) - change >= 4:
            before = read_motion(readings[0], readings[change - 1])
            now = read_motion(readings[change - 1], readings[-1])
            assert now == after["motion"] and before != now, (text, change, before, now)
            motion_changes += 1
    assert motion_changes >= 10


def test_captions_round_trip():
    for colour, shape, motion, bg, style in itertools.product(COLOURS, SHAPES, [*MOTIONS, None], BACKGROUNDS,
                                                              ("solid", "outlined")):
        scene = Scene(colour, shape, motion, bg, style, x=32, y=32, half=7)
        for with_bg in (True, False):
            text = caption(scene, with_background=with_bg)
            assert parse_caption(text) == {"colour": colour, "shape": shape, "motion": motion,
                                           "background": bg if with_bg else None, "style": style}
    assert caption(Scene("red", "circle", "moves left", "navy", x=0, y=0, half=7)) == \
        "a red circle moves left on a navy background"
    assert caption(Scene("red", "circle", None, "navy", "outlined", x=0, y=0, half=7), with_background=False) == \
        "a red outlined circle"


def test_paraphrases_parse_to_the_same_scene():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        scene = sample_video_scene(rng)
        text = caption(scene, canonical=False, rng=rng)
        seen.add(text.split(" on a ")[0].split(" ", 3)[-1])
        parsed = parse_caption(text)
        assert (parsed["colour"], parsed["shape"], parsed["motion"]) == (scene.colour, scene.shape, scene.motion)
    assert {"slides left", "goes to the left", "gets bigger", "does not move"} & seen
    assert parse_caption("A red ball slides left.")["shape"] == "circle"


@pytest.mark.parametrize("text", ["", "a pink circle", "a red elephant moves left", "red circle",
                                  "a red circle dances", "a red circle on a purple background"])
def test_parse_rejects_garbage(text):
    with pytest.raises(ValueError, match="not a Shapes World caption"):
        parse_caption(text)


def test_shapes_world_dataset(monkeypatch):
    torch.set_num_threads(1)
    ds = ShapesWorld(size=32, num_frames=11, image_fraction=0.3, seed=7)
    items = list(itertools.islice(iter(ds), 40))
    again = list(itertools.islice(iter(ds), 40))
    assert [i["caption"] for i in items] == [i["caption"] for i in again]
    assert all(torch.equal(a["video"], b["video"]) for a, b in zip(items, again))
    for item in items:
        v = item["video"]
        assert v.dtype == torch.float32 and v.shape == (3, 1 if item["is_image"] else 11, 32, 32)
        assert v.min() >= -1 and v.max() <= 1
        parse_caption(item["caption"])
    assert 0 < sum(i["is_image"] for i in items) < 40
    monkeypatch.setattr(sw, "get_worker_info", lambda: SimpleNamespace(id=1))
    other = [i["caption"] for i in itertools.islice(iter(ds), 40)]
    assert other != [i["caption"] for i in items]
