from .pipeline_phenaki import PhenakiPipeline, PhenakiPipelineOutput
from .story import RenderCancelled, RenderedSegment, Segment, Story, StoryError, StoryRenderer, render_story

__all__ = ["PhenakiPipeline", "PhenakiPipelineOutput", "RenderCancelled", "RenderedSegment", "Segment", "Story",
           "StoryError", "StoryRenderer", "render_story"]
