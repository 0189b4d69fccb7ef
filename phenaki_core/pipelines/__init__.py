from .default import DEFAULT_MODEL, load_pipeline
from .pipeline_phenaki import DEFAULT_GUIDANCE, PhenakiPipeline, PhenakiPipelineOutput
from .story import RenderCancelled, RenderedSegment, Segment, Story, StoryError, StoryRenderer, render_story

__all__ = ["DEFAULT_GUIDANCE", "DEFAULT_MODEL", "load_pipeline", "PhenakiPipeline", "PhenakiPipelineOutput", "RenderCancelled", "RenderedSegment", "Segment", "Story",
           "StoryError", "StoryRenderer", "render_story"]
