from .scheduling_maskgit import (
    MaskGitScheduler,
    MaskGitSchedulerOutput,
    MaskGitSchedulerState,
    cosine_schedule,
)

__all__ = ["MaskGitScheduler", "MaskGitSchedulerOutput", "MaskGitSchedulerState", "cosine_schedule"]
