"""Phenaki: text to video of any length (Villegas et al., 2022), packaged diffusers-style."""
from .models import CViViT, Discriminator, FSQ, MaskGitTransformer
from .pipelines import PhenakiPipeline, Segment, Story, StoryError, StoryRenderer
from .schedulers import MaskGitScheduler
from .text import TextEncoder

__all__ = ["CViViT", "Discriminator", "FSQ", "MaskGitTransformer", "MaskGitScheduler", "PhenakiPipeline",
           "Segment", "Story", "StoryError", "StoryRenderer", "TextEncoder"]
