"""Evaluation: the Shapes World checker and its summaries."""

from .checker import ClipResult, FrameReading, check_clip, check_continuity, read_frame, read_motion, summarize

__all__ = ["ClipResult", "FrameReading", "check_clip", "check_continuity", "read_frame", "read_motion", "summarize"]
