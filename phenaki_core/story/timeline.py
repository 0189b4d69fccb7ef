"""A story as data: an ordered list of segments and the settings that render them.

This is what a sidecar (`<video>.story.json`) holds, so the same frames can be rendered
again; it owns the story's limits (segments, frames, prompt characters), which the studio
and the CLI ask rather than repeat.
"""
import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from ..model_folder import DEFAULT_MODEL_NAME
from ..pipelines.defaults import DEFAULT_CONTEXT_FRAMES, DEFAULT_GUIDANCE, DEFAULT_STEPS

TRANSITIONS = ("continue", "cut")
MAX_SEGMENT_FRAMES = 8 * 60 * 10  # ten minutes at 8 fps
MAX_STORY_SEGMENTS = 500
MAX_PROMPT_CHARS = 1000
FORMAT = "phenaki-story/1"


class StoryError(ValueError):
    """A story that cannot be rendered; the message says what to change."""


@dataclass
class Segment:
    prompt: str
    frames: int
    seed: int = 0
    transition: str = "continue"


@dataclass
class Story:
    segments: list[Segment]
    num_inference_steps: int = DEFAULT_STEPS
    guidance_scale: float = DEFAULT_GUIDANCE
    context_frames: int = DEFAULT_CONTEXT_FRAMES
    model: str = DEFAULT_MODEL_NAME
    model_revision: str | None = None  # the pipeline's `revision` it was rendered with

    def validate(self, clip_frames: int = 11, temporal_patch: int = 2) -> "Story":
        if not self.segments:
            raise StoryError("the story has no segments: add at least one prompt")
        if len(self.segments) > MAX_STORY_SEGMENTS:
            raise StoryError(f"a story holds at most {MAX_STORY_SEGMENTS} segments, got {len(self.segments)}")
        for i, s in enumerate(self.segments, 1):
            if not isinstance(s.prompt, str) or not s.prompt.strip():
                raise StoryError(f"segment {i}: the prompt is empty")
            if len(s.prompt) > MAX_PROMPT_CHARS:
                raise StoryError(f"segment {i}: the prompt is {len(s.prompt)} characters; at most {MAX_PROMPT_CHARS}")
            if not _is_int(s.frames) or not 1 <= s.frames <= MAX_SEGMENT_FRAMES:
                raise StoryError(f"segment {i}: duration must be 1 to {MAX_SEGMENT_FRAMES} frames, got {s.frames!r}")
            if not _is_int(s.seed) or not 0 <= s.seed < 2**31:
                raise StoryError(f"segment {i}: seed must be an integer from 0 to 2^31-1, got {s.seed!r}")
            if s.transition not in TRANSITIONS:
                raise StoryError(f"segment {i}: transition must be one of {TRANSITIONS}, got {s.transition!r}")
        if not _is_int(self.num_inference_steps) or not 1 <= self.num_inference_steps <= 64:
            raise StoryError(f"sampling steps must be 1 to 64, got {self.num_inference_steps!r}")
        g = self.guidance_scale
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not math.isfinite(g) or not 0 <= g <= 20:
            raise StoryError(f"guidance must be a finite number from 0 to 20, got {g!r}")
        if not (self.model_revision is None or isinstance(self.model_revision, str)):
            raise StoryError(f"the model revision must be a string, got {self.model_revision!r}")
        k = self.context_frames
        if not _is_int(k) or not 1 <= k < clip_frames or (k - 1) % temporal_patch:
            raise StoryError(f"context frames must be 1 + n*{temporal_patch} and below {clip_frames}, got {k!r}")
        return self

    # -- the sidecar: everything needed to render the same frames again ---------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "Story":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StoryError(f"not a story file (expected format {FORMAT!r})")
        known = {"prompt", "frames", "seed", "transition"}
        try:
            for i, s in enumerate(data["segments"], 1):
                if not isinstance(s, dict) or not {"prompt", "frames"} <= set(s) <= known:
                    raise StoryError(f"malformed story file: segment {i} must have prompt and frames, and only {sorted(known)}")
            segments = [Segment(**s) for s in data["segments"]]
            fields = {k: data[k] for k in ("num_inference_steps", "guidance_scale", "context_frames", "model",
                                           "model_revision") if k in data}
            return cls(segments=segments, **fields)
        except (KeyError, TypeError) as e:
            raise StoryError(f"malformed story file: {e}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Story":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise StoryError(f"the story file is not valid JSON: {e}") from None


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


