"""The story engine: a timeline of prompts becomes one continuous video.

It sits above the clip pipeline and calls it through its public interface only
(`generate_clip`, `encode_frames`, `clip_frames`, `temporal_patch_size`, ...); the
pipeline never imports anything from here.
"""
from .engine import RenderCancelled, RenderedSegment, StoryRenderer, render_segment, render_story
from .pipeline_story import PhenakiStoryOutput, PhenakiStoryPipeline
from .timeline import (FORMAT, MAX_PROMPT_CHARS, MAX_SEGMENT_FRAMES, MAX_STORY_SEGMENTS, TRANSITIONS, Segment, Story,
                       StoryError)

__all__ = ["FORMAT", "MAX_PROMPT_CHARS", "MAX_SEGMENT_FRAMES", "MAX_STORY_SEGMENTS", "PhenakiStoryOutput",
           "PhenakiStoryPipeline", "RenderCancelled", "RenderedSegment", "Segment", "Story", "StoryError",
           "StoryRenderer", "TRANSITIONS", "render_segment", "render_story"]
