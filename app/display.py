"""Pure display helpers for the studio page: plain data in, escaped HTML (and small JS) out.

Nothing here imports Gradio or touches a project: the UI gathers plain values (numbers,
prompts, timecodes, statuses, image URLs) and these functions lay them out, so each one
is testable alone and the page's look has one owner.
"""
from __future__ import annotations


def timecode(seconds: float) -> str:
    """`m:ss.s`, the studio's one way of writing a time on the story ("0:05.5", "1:02.0")."""
    tenths = round(max(0.0, float(seconds)) * 10)
    m, t = divmod(tenths, 600)
    return f"{m}:{t // 10:02d}.{t % 10}"
