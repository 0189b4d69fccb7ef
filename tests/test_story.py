"""The story engine on a tiny model: continuation, frozen past, regeneration, sidecars."""
import math

import numpy as np
import pytest
import torch

from phenaki_core import Segment, Story, StoryError, StoryRenderer
from phenaki_core.story import RenderCancelled


def story(*prompts, frames=11, transition="continue", **kw):
    return Story([Segment(p, frames, seed=i, transition=transition) for i, p in enumerate(prompts)], **kw)


def test_continuation_freezes_the_re_encoded_context(tiny_pipe):
    r = StoryRenderer(tiny_pipe, story("a red circle moves right", "a red circle moves down", num_inference_steps=4))
    r.render()
    before = r.results[0].frames[-5:]
    prefix = tiny_pipe.encode_frames(before)[0]
    clip_tokens = r.results[1].tokens[0]
    assert torch.equal(clip_tokens[:3], prefix)  # 5 context frames = 3 latent frames, kept exactly
    assert len(r.results[1].frames) == 11


def test_one_frame_tubelets_continue_every_context_frame(text_encoder, make_tiny):
    pipe = make_tiny(text_encoder=text_encoder, temporal_patch_size=1)
    r = StoryRenderer(pipe, story("a red circle moves right", "a red circle moves down", frames=9, num_inference_steps=3))
    r.render()
    prefix = pipe.encode_frames(r.results[0].frames[-5:])[0]
    assert torch.equal(r.results[1].tokens[0][:5], prefix)  # 5 context frames = 5 latent frames
    assert r.results[1].tokens[0].shape[0] == 11 and r.frames().shape[0] == 18


def test_cut_starts_fresh(tiny_pipe):
    s = story("a red circle moves right", "a blue square grows", num_inference_steps=4)
    s.segments[1].transition = "cut"
    r = StoryRenderer(tiny_pipe, s)
    r.render()
    # A cut ignores what came before: the same segment after a different first segment is identical.
    other = story("a green square moves up", "a blue square grows", num_inference_steps=4)
    other.segments[1] = s.segments[1]
    r2 = StoryRenderer(tiny_pipe, other)
    r2.render()
    assert np.array_equal(r.results[1].frames, r2.results[1].frames)
    assert r.results[1].tokens[0].shape[0] == 6


def test_regenerating_k_keeps_earlier_frames_and_marks_later_stale(tiny_pipe):
    s = story("a red circle moves right", "a blue circle moves right", "a blue square moves up", num_inference_steps=3)
    r = StoryRenderer(tiny_pipe, s)
    r.render()
    first = [x.frames.copy() for x in r.results]
    assert r.stale() == [False, False, False]
    s.segments[1] = Segment("a yellow circle moves left", 11, seed=42)
    assert r.stale() == [False, True, True]
    calls = []
    r.render_segment(1, on_step=lambda *a: calls.append(a[0]))
    assert set(calls) == {1}
    assert np.array_equal(r.results[0].frames, first[0])
    assert not np.array_equal(r.results[1].frames, first[1])
    assert r.stale() == [False, False, True]
    r.render(start=1)
    assert r.stale() == [False, False, False]


def test_long_segment_continues_itself_with_the_same_work_per_clip(tiny_pipe, monkeypatch):
    """The window slides: every clip re-encodes the last K frames and samples one clip's
    tokens, however long the segment already is, so the cost of a clip stays flat."""
    s = story("a white square moves left", frames=11 + 6 * 39, num_inference_steps=2)  # 40 clips
    contexts, forwards = [], []
    real = tiny_pipe.generate_clip

    def generate_clip(prompt, context_frames=None, **sampling):
        contexts.append(None if context_frames is None else len(context_frames))
        return real(prompt, context_frames, **sampling)

    monkeypatch.setattr(tiny_pipe, "generate_clip", generate_clip)
    hook = tiny_pipe.transformer.register_forward_hook(lambda m, args, out: forwards.append(tuple(args[0].shape)))
    try:
        r = StoryRenderer(tiny_pipe, s)
        r.render()
    finally:
        hook.remove()
    assert len(r.results[0].frames) == 245 and len(r.results[0].tokens) == 40
    assert contexts == [None] + [5] * 39  # the last K frames, never the whole past
    steps_per_clip = 2 + tiny_pipe.scheduler.config.refine_steps  # the story's 2 MaskGIT steps, then refinement
    assert len(forwards) == 40 * steps_per_clip and len(set(forwards)) == 1
    assert all(t.shape == r.results[0].tokens[0].shape for t in r.results[0].tokens)
    # Each clip continues the one before: its frozen prefix is the re-encoded tail of the segment so far.
    frames = r.results[0].frames
    for clip in (1, 20, 39):
        end = 11 + 6 * (clip - 1)
        assert torch.equal(r.results[0].tokens[clip][:3], tiny_pipe.encode_frames(frames[end - 5:end])[0])


def test_same_story_renders_bit_identical_and_sidecar_round_trips(tiny_pipe):
    s = story("a red circle moves right", "a red square shrinks", frames=9, num_inference_steps=3, guidance_scale=2.5)
    again = Story.from_json(s.to_json())
    assert again == s
    a, b = StoryRenderer(tiny_pipe, s), StoryRenderer(tiny_pipe, again)
    a.render(), b.render()
    assert np.array_equal(a.frames(), b.frames()) and a.frames().shape[0] == 18


def test_odd_durations_are_trimmed_exactly(tiny_pipe):
    r = StoryRenderer(tiny_pipe, story("a red circle moves right", "a cyan square", frames=3, num_inference_steps=2))
    r.render()
    assert r.frames().shape[0] == 6
    # Trimmed, not resampled: a 3-frame segment is the first 3 frames of the same segment at full length.
    full = StoryRenderer(tiny_pipe, story("a red circle moves right", frames=11, num_inference_steps=2))
    full.render()
    assert np.array_equal(r.results[0].frames, full.results[0].frames[:3])
    # and the next segment continues the 3 frames it follows, not the clip they were cut from
    prefix = tiny_pipe.encode_frames(r.results[0].frames)[0]
    assert torch.equal(r.results[1].tokens[0][:2], prefix)


def test_init_frames_are_continued(tiny_pipe):
    image = np.full((1, 32, 32, 3), 110, np.uint8)
    r = StoryRenderer(tiny_pipe, story("a red circle moves right", num_inference_steps=2), init_frames=image)
    r.render()
    prefix = tiny_pipe.encode_frames(image)[0]
    assert torch.equal(r.results[0].tokens[0][:1], prefix)
    assert len(r.results[0].frames) == 11


def test_cancel_stops_within_a_step(tiny_pipe):
    steps = []

    def on_step(*a):
        steps.append(a)

    r = StoryRenderer(tiny_pipe, story("a red circle", "a blue circle", num_inference_steps=10))
    with pytest.raises(RenderCancelled):
        r.render(should_cancel=lambda: len(steps) >= 3, on_step=on_step)
    assert len(steps) == 3 and r.results == [None, None]


@pytest.mark.parametrize("bad, message", [
    (Story([]), "no segments"),
    (story(""), "empty"),
    (story("x" * 10_000), "characters"),
    (story("a", frames=0), "duration"),
    (story("a", frames=-5), "duration"),
    (story("a", frames=10**9), "duration"),
    (story("a", transition="dissolve"), "transition"),
    (story("a", guidance_scale=math.nan), "guidance"),
    (story("a", num_inference_steps=0), "steps"),
    (story("a", context_frames=4), "context"),
])
def test_bad_stories_get_clear_errors(tiny_pipe, bad, message):
    with pytest.raises(StoryError, match=message):
        StoryRenderer(tiny_pipe, bad).render()


@pytest.mark.parametrize("text", ["not json", '{"format": "other"}', '{"format": "phenaki-story/1", "segments": [{"oops": 1}]}'])
def test_bad_sidecars_are_refused(text):
    with pytest.raises(StoryError):
        Story.from_json(text)
