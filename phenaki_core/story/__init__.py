"""The story engine: a timeline of prompts becomes one continuous video.

It sits above the clip pipeline and calls it through its public interface only
(`generate_clip`, `encode_frames`, `clip_frames`, `temporal_patch_size`, ...); the
pipeline never imports anything from here. Names load on first use (PEP 562), so the
story's limits (`timeline`) are light enough for the CLI's parser.
"""
import importlib

_EXPORTS = {
    **{n: ".engine" for n in ("RenderCancelled", "RenderedSegment", "StoryRenderer", "render_segment", "render_story")},
    **{n: ".pipeline_story" for n in ("PhenakiStoryOutput", "PhenakiStoryPipeline")},
    **{n: ".timeline" for n in ("FORMAT", "MAX_PROMPT_CHARS", "MAX_SEGMENT_FRAMES", "MAX_STORY_SEGMENTS",
                                "TRANSITIONS", "Segment", "Story", "StoryError")},
}
__all__ = [*sorted(_EXPORTS)]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


def __dir__():
    return __all__
