"""The Shapes World checker: reads a clip's object and scores it against its prompt.

Implements "The checker" in docs/shapes-world.md rule by rule, so that its scores agree with
any other checker written from that page. Pixel thresholds are for 64x64 and scale with
the frame width (areas with its square).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..data.shapes_world import COLOURS, parse_caption

ATTRIBUTES = ("colour", "shape", "style", "motion")
_EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


@dataclass(frozen=True)
class FrameReading:
    colour: str
    shape: str | None  # None when the fill ratio fits no shape
    style: str
    centroid: tuple[float, float]  # (x, y) in pixels, of the hole-filled mask
    area: int  # hole-filled mask pixels, so outlined and solid objects measure alike
    fill_ratio: float


@dataclass(frozen=True)
class ClipResult:
    colour: bool
    shape: bool
    style: bool
    motion: bool
    follows: bool
    detected: bool  # an object was found in every frame
    read: dict  # the values read: colour, shape, style, motion


def read_frame(frame: np.ndarray, palette: dict = COLOURS) -> FrameReading | None:
    """The object in one uint8 (H, W, 3) frame, or None when there is none."""
    f = np.asarray(frame, np.int32)
    scale = f.shape[1] / 64
    border = np.concatenate([f[0], f[-1], f[1:-1, 0], f[1:-1, -1]])
    d = np.abs(f - np.median(border, 0)).sum(-1)
    if np.count_nonzero(d > 60) < 8 * scale**2:
        return None
    peak = np.percentile(d[d > 60], 95)
    # Half contrast puts the edge where it was before a mild blur, so the shape survives it.
    mask = d > max(60, peak / 2)
    labels, n = ndimage.label(mask, _EIGHT_NEIGHBOURS)
    if n > 1:
        mask = labels == np.bincount(labels.ravel())[1:].argmax() + 1

    # The object's own colour, not the blends along its edge.
    core = mask & (d >= 0.8 * peak)
    rgb = np.median(f[core if core.any() else mask], 0)
    names = list(palette)
    colour = names[int(np.abs(np.asarray(list(palette.values())) - rgb).sum(1).argmin())]

    filled = ndimage.binary_fill_holes(mask)
    ys, xs = np.nonzero(filled)
    area = len(xs)
    fill = area / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))
    shape = "square" if fill > 0.88 else "circle" if fill >= 0.68 else "triangle" if fill >= 0.35 else None
    style = "outlined" if np.count_nonzero(mask) / area < 0.85 else "solid"
    return FrameReading(colour, shape, style, (float(xs.mean()), float(ys.mean())), area, float(fill))


def read_motion(first: FrameReading, last: FrameReading, scale: float = 1.0) -> str:
    """The motion between two readings; scale = frame width / 64."""
    ratio = last.area / first.area
    if ratio > 1.3:
        return "grows"
    if ratio < 0.75:
        return "shrinks"
    dx = last.centroid[0] - first.centroid[0]
    dy = last.centroid[1] - first.centroid[1]
    if math.hypot(dx, dy) < 3 * scale:
        return "stays still"
    if abs(dx) >= abs(dy):
        return "moves right" if dx > 0 else "moves left"
    return "moves down" if dy > 0 else "moves up"


def _most_common(values):
    return Counter(values).most_common(1)[0][0]


def check_clip(frames, prompt: str | dict) -> ClipResult:
    """Score frames (T, H, W, 3) uint8 against a caption or a parse_caption() dict.

    A prompt without motion (an image caption) leaves motion unjudged. A frame without an
    object fails every attribute.
    """
    want = {"style": "solid", **(parse_caption(prompt) if isinstance(prompt, str) else prompt)}
    readings = [read_frame(f) for f in frames]
    if not readings or any(r is None for r in readings):
        return ClipResult(False, False, False, False, False, False, dict.fromkeys(ATTRIBUTES))
    read = {a: _most_common(getattr(r, a) for r in readings) for a in ("colour", "shape", "style")}
    scale = np.shape(frames[0])[1] / 64
    read["motion"] = read_motion(readings[0], readings[-1], scale) if len(readings) > 1 else None
    ok = {a: read[a] == want.get(a) for a in ("colour", "shape", "style")}
    ok["motion"] = want.get("motion") is None or read["motion"] == want["motion"]
    return ClipResult(**ok, follows=all(ok.values()), detected=True, read=read)


def check_continuity(before_last_frame: np.ndarray, first_new_frame: np.ndarray, max_jump: float = 6.0) -> bool:
    """True when the object's centroid jumps at most max_jump px (at 64x64) across a prompt switch."""
    a, b = read_frame(before_last_frame), read_frame(first_new_frame)
    if a is None or b is None:
        return False
    jump = math.hypot(b.centroid[0] - a.centroid[0], b.centroid[1] - a.centroid[1])
    return jump <= max_jump * np.shape(first_new_frame)[1] / 64


def summarize(results: list[ClipResult]) -> dict:
    """{"n", "adherence", and the pass rate of each attribute}; rates are NaN for no results."""
    n = len(results)
    rate = (lambda key: sum(getattr(r, key) for r in results) / n) if n else (lambda key: math.nan)
    return {"n": n, "adherence": rate("follows"), **{a: rate(a) for a in ATTRIBUTES}}
