from .scheduling_maskgit import MaskGitScheduler

__all__ = ["MaskGitScheduler"]
