"""PhenakiStoryPipeline: a list of prompts as one continuous video, in one documented call.

    from phenaki_core import PhenakiStoryPipeline
    story = PhenakiStoryPipeline.from_pretrained("assets/phenaki-shapes-64")   # or .from_pipe(pipe)
    video = story(["a red circle moves right", "a red circle moves down"], num_frames=11, seed=0).frames[0]
    export_to_video(video, "story.mp4", fps=story.fps)

Why a class of its own beside PhenakiPipeline, and not `pipe(prompts)` or `pipe.story(...)`:
a list of prompts is a batch in every diffusers pipeline, so the clip pipeline treats it
as one; and a story method or argument on the clip pipeline would make it import the story
engine, which sits above it (one way down: story -> pipeline). Built from the same
components (`from_pipe` shares them, nothing is copied), it keeps diffusers' calling and
output conventions: `.frames` with a batch dimension (of one video), output_type "np",
"pt", "pil" or "latent", return_dict.

Unlike the clip pipeline it takes integer seeds, not generators: segment i is drawn from
seed + i (or the seeds of a `Story`), clip by clip from CPU generators, so the story and its
sidecar (`phenaki_core.io.export_story`) render the same frames again on any machine.
"""
from dataclasses import dataclass, replace

import numpy as np
import torch
from diffusers.utils import BaseOutput

from ..pipelines.defaults import DEFAULT_CONTEXT_FRAMES, DEFAULT_GUIDANCE, DEFAULT_STEPS
from .engine import StoryRenderer
from .timeline import Segment, Story, StoryError


@dataclass
class PhenakiStoryOutput(BaseOutput):
    """frames: one video, as PhenakiPipelineOutput's (batch of 1); segments: each segment's
    RenderedSegment (its frames and tokens); story: the Story rendered, with the model's
    name and revision, ready for `export_story`."""

    frames: object
    segments: list
    story: Story


class PhenakiStoryPipeline:
    def __init__(self, pipe):
        self.pipe = pipe

    @classmethod
    def from_pipe(cls, pipe) -> "PhenakiStoryPipeline":
        """Stories on an already loaded PhenakiPipeline (its components, not a copy)."""
        return cls(pipe)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "PhenakiStoryPipeline":
        from ..pipelines.pipeline_phenaki import PhenakiPipeline

        return cls(PhenakiPipeline.from_pretrained(pretrained_model_name_or_path, **kwargs))

    def to(self, *args, **kwargs) -> "PhenakiStoryPipeline":
        self.pipe.to(*args, **kwargs)
        return self

    @property
    def fps(self) -> int:
        return self.pipe.fps

    @property
    def clip_frames(self) -> int:
        return self.pipe.clip_frames

    def __call__(self, prompt: str | list[str] | Story, num_frames: int | list[int] | None = None, seed: int = 0,
                 num_inference_steps: int = DEFAULT_STEPS, guidance_scale: float = DEFAULT_GUIDANCE,
                 context_frames: int = DEFAULT_CONTEXT_FRAMES, transitions: list[str] | None = None,
                 init_frames: np.ndarray | None = None, output_type: str = "np", return_dict: bool = True,
                 callback_on_step_end=None, on_step=None, should_cancel=None, height: int | None = None,
                 width: int | None = None):
        """Render a story: one segment per prompt, each continuing the frames before it.

        prompt: the segments' prompts in order, or a `Story` (e.g. from a sidecar), whose own
            frames, seeds and sampling settings are then used as they are.
        num_frames: frames per segment, one number for all or one per prompt (default: one clip).
        seed: segment i is drawn from seed + i.
        transitions: per segment "continue" (default) or "cut" (start afresh).
        init_frames: uint8 (T, H, W, 3) frames the first segment continues (an image to animate).
        height, width: the frames' side (square; default the model's frame size), as
            PhenakiPipeline's: the story is sampled at the model's size and each clip's tokens
            drawn at this one (by the model's upsampler where it draws it, else upscaled).
        on_step(segment, clip, clips, step, steps), should_cancel() -> bool: progress and a
            stop flag checked between sampling steps (RenderCancelled).
        Raises StoryError for a story that cannot be rendered.
        """
        if isinstance(prompt, Story):
            story = prompt
        else:
            prompts = [prompt] if isinstance(prompt, str) else list(prompt)
            frames = num_frames if isinstance(num_frames, (list, tuple)) else [num_frames] * len(prompts)
            moves = transitions or ["continue"] * len(prompts)
            if len(frames) != len(prompts) or len(moves) != len(prompts):
                raise StoryError(f"give one num_frames and one transition per prompt ({len(prompts)})")
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise StoryError(f"seed must be an integer, got {seed!r}")
            story = Story([Segment(p, f or self.pipe.clip_frames, seed + i, m)
                           for i, (p, f, m) in enumerate(zip(prompts, frames, moves))],
                          num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                          context_frames=context_frames)
        if output_type not in ("np", "pt", "pil", "latent"):
            raise ValueError(f"output_type must be one of ('np', 'pt', 'pil', 'latent'), got {output_type!r}")
        size = self.pipe.check_size(height, width)  # before any rendering
        story = replace(story, model=self.pipe.model_name or story.model, model_revision=self.pipe.revision)
        renderer = StoryRenderer(self.pipe, story, init_frames)
        rendered = renderer.render(callback_on_step_end=callback_on_step_end, on_step=on_step,
                                   should_cancel=should_cancel)
        if output_type == "latent":
            out = torch.stack([t for r in rendered for t in r.tokens])[None]
        else:
            out = self.pipe.postprocess_video(renderer.frames(size)[None], output_type)
        if not return_dict:
            return (out,)
        return PhenakiStoryOutput(frames=out, segments=rendered, story=story)
