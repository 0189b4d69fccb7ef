"""The story engine: a timeline of prompts becomes one continuous video (Phenaki, 2.3).

A story is an ordered list of segments. Each is rendered clip by clip; a clip that
continues takes the last K frames of everything before it, re-encodes them with C-ViViT
and freezes those tokens as the known prefix, then samples the rest under its prompt.
The window slides: every clip sees K frames, never the whole past, so cost and memory per
clip stay flat however long the story grows.

Every rendered segment keeps its frames and tokens, and remembers what it was rendered
from (its description and a fingerprint of the frames it continued). A segment is stale
when either no longer matches, so regenerating segment k recomputes k alone and marks
what follows as stale without any flags to keep in sync.
"""
import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..noise import cpu_generator
from ..pipelines.defaults import DEFAULT_CONTEXT_FRAMES
from .timeline import Segment, Story, StoryError


class RenderCancelled(Exception):
    """A render stopped by its `should_cancel`; what was rendered before it is kept."""


@dataclass
class RenderedSegment:
    segment: Segment
    context_fingerprint: str
    frames: np.ndarray  # uint8 (n, H, W, 3): this segment's own frames, context excluded
    tokens: list = field(default_factory=list)  # the token grid of each clip
    # How many context frames each clip began with (its first frames are those, re-encoded):
    # with `tokens`, the segment draws again at another size (`redraw`) without sampling.
    context_lengths: list = field(default_factory=list)

    def redraw(self, pipe, size: int, before: np.ndarray | None = None,
               context_frames: int = DEFAULT_CONTEXT_FRAMES) -> np.ndarray:
        """This segment's frames drawn again at `size` (uint8 (n, size, size, 3)): from its
        clips' tokens when it kept them (by the model where it draws that size, else its
        frames upscaled); else, at a size the model draws, its frames tokenized again after
        `before` (the frames it continued, None for a cut) as `pipe.redraw` does, which costs
        some fidelity (docs/upsampler-wiring.md)."""
        if len(self.tokens) or len(self.context_lengths):
            if len(self.tokens) != len(self.context_lengths):
                raise StoryError("this segment's tokens and context lengths disagree: render it again")
            return pipe.draw_clips(self.tokens, self.context_lengths, len(self.frames), size)
        try:
            return pipe.redraw(self.frames, size, context_frames, before=before)
        except ValueError as e:
            raise StoryError(f"this segment kept no tokens to draw again from: {e}") from None


def _fingerprint(story: "Story", context: np.ndarray | None) -> str:
    """What a segment's frames depend on besides its own description: the frames it
    continues and the sampling settings."""
    h = hashlib.sha256(repr((story.num_inference_steps, float(story.guidance_scale), story.context_frames)).encode())
    if context is not None:
        h.update(np.ascontiguousarray(context).tobytes())
    return h.hexdigest()[:16]


def _clip_seed(segment_seed: int, clip: int) -> int:
    return segment_seed * 65_536 + clip


def render_segment(pipe, story: Story, index: int, before: np.ndarray | None, should_cancel=None,
                   on_step=None, callback_on_step_end=None) -> RenderedSegment:
    """Render segment `index` after the frames `before` it (their tail is enough).

    The first clip continues `before` (transition "continue") or starts fresh ("cut");
    later clips of a long segment continue the segment itself under the same prompt.
    """
    seg, k = story.segments[index], story.context_frames
    context = before[-k:] if seg.transition == "continue" and before is not None and len(before) else None
    fingerprint = _fingerprint(story, context)
    tp = pipe.temporal_patch_size
    produced, frames, tokens, skips, clip = 0, [], [], [], 0
    n_clips = pipe.clips_needed(seg.frames, k, continues=context is not None)

    def step_end(p, i, t, kwargs):
        if on_step is not None:
            on_step(index, clip, n_clips, i, p.num_timesteps)
        if should_cancel is not None and should_cancel():
            p._interrupt = True
        if callback_on_step_end is not None:
            callback_on_step_end(p, i, t, kwargs)
        return kwargs

    while produced < seg.frames:
        if context is not None:  # C-ViViT takes 1 + n*tp frames: the longest such tail
            context = context[-(1 + (len(context) - 1) // tp * tp):]
        # Seeded on the CPU, as sidecars have always been: the same numbers on any device.
        generator = cpu_generator(_clip_seed(seg.seed, clip))
        try:
            clip_frames, clip_tokens = pipe.generate_clip(
                seg.prompt, context, num_inference_steps=story.num_inference_steps,
                guidance_scale=story.guidance_scale, generator=generator, callback_on_step_end=step_end)
        except InterruptedError:
            raise RenderCancelled(f"rendering segment {index + 1} was cancelled") from None
        new = clip_frames[0 if context is None else len(context):]
        frames.append(new)
        tokens.append(clip_tokens.cpu())
        skips.append(0 if context is None else len(context))
        produced += len(new)
        tail = np.concatenate(([] if context is None else [context]) + [new])
        context, clip = tail[-k:], clip + 1
    return RenderedSegment(seg, fingerprint, np.concatenate(frames)[: seg.frames], tokens, skips)


class StoryRenderer:
    """A story and its rendered segments; renders only what is missing or stale."""

    def __init__(self, pipe, story: Story, init_frames: np.ndarray | None = None):
        self.pipe, self.story, self.init_frames = pipe, story, init_frames
        self.results: list[RenderedSegment | None] = [None] * len(story.segments)

    def _before(self, index: int) -> np.ndarray | None:
        """The last K frames before segment `index`, across as many segments as needed."""
        tail, need = [], self.story.context_frames
        for r in reversed(self.results[:index]):
            if r is None:
                raise StoryError(f"segment {index + 1} needs the segments before it rendered first")
            tail.insert(0, r.frames[-need:])
            need -= len(tail[0])
            if need <= 0:
                break
        if need > 0 and self.init_frames is not None:
            tail.insert(0, self.init_frames[-need:])
        return np.concatenate(tail) if tail else None

    def is_stale(self, index: int) -> bool:
        r = self.results[index]
        if r is None or r.segment != self.story.segments[index]:
            return True
        seg = self.story.segments[index]
        try:
            before = self._before(index) if seg.transition == "continue" else None
        except StoryError:  # what it continued is gone
            return True
        context = None if before is None else before[-self.story.context_frames:]
        return r.context_fingerprint != _fingerprint(self.story, context)

    def stale(self) -> list[bool]:
        """Per segment: must it be rendered (again)? Staleness flows forward through
        continuations, since a segment continues frames that are about to change."""
        flags = []
        for i, seg in enumerate(self.story.segments):
            upstream = bool(flags) and flags[-1] and seg.transition == "continue"
            flags.append(upstream or self.results[i] is None or self.is_stale(i))
        return flags

    def render_segment(self, index: int, **hooks) -> RenderedSegment:
        self.story.validate(self.pipe.clip_frames, self.pipe.temporal_patch_size)
        self.results[index] = render_segment(self.pipe, self.story, index, self._before(index), **hooks)
        return self.results[index]

    def render(self, start: int = 0, on_segment_done=None, **hooks) -> list[RenderedSegment]:
        """Render segments from `start` on, skipping those already fresh."""
        self.story.validate(self.pipe.clip_frames, self.pipe.temporal_patch_size)
        for i in range(start, len(self.story.segments)):
            if self.stale()[i]:
                self.render_segment(i, **hooks)
            if on_segment_done is not None:
                on_segment_done(i, self.results[i])
        return self.results

    def frames(self, size: int | None = None) -> np.ndarray:
        """The story's frames; at `size` (None: the model's frame size, as rendered), each
        segment drawn again (`segment_frames`): the story was sampled, and its continuations
        re-encoded, at the model's size either way."""
        missing = [i + 1 for i, r in enumerate(self.results) if r is None]
        if missing:
            raise StoryError(f"segments {missing} are not rendered yet")
        if size is None or size == self.pipe.frame_size:
            return np.concatenate([r.frames for r in self.results])
        return np.concatenate([self.segment_frames(i, size) for i in range(len(self.results))])

    def segment_frames(self, index: int, size: int) -> np.ndarray:
        """Segment `index`'s frames drawn at `size`: from its tokens when it kept them, else
        (a take whose tokens were not kept) tokenized again after the frames it continued."""
        r = self.results[index]
        if r is None:
            raise StoryError(f"segment {index + 1} is not rendered yet")
        if size == self.pipe.frame_size:
            return r.frames
        before = None
        if not len(r.tokens) and self.story.segments[index].transition == "continue":
            before = self._before(index)
        return r.redraw(self.pipe, size, before, self.story.context_frames)


def render_story(pipe, story: Story, init_frames: np.ndarray | None = None, **hooks) -> list[RenderedSegment]:
    return StoryRenderer(pipe, story, init_frames).render(**hooks)
