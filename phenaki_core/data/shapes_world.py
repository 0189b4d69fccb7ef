"""Shapes World: the built-in text-video world.

Everything here follows the contract in docs/shapes-world.md. Pixel quantities are given
for 64x64 frames and scale linearly with the frame size, so the same scene can be drawn
at any multiple of 8. Rendering is plain numpy on whole frame stacks, cheap enough to
generate training data on the fly instead of reading it from disk.
"""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import IterableDataset, get_worker_info

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
    "white": (240, 240, 240),
    "cyan": (40, 210, 220),
}
BACKGROUNDS = {"black": (10, 10, 10), "gray": (110, 110, 110), "navy": (20, 25, 70)}
SHAPES = ("circle", "square", "triangle")
STYLES = ("solid", "outlined")
# Per-frame change (dx, dy, dhalf) at 64x64.
MOTIONS = {
    "moves left": (-2.0, 0.0, 0.0),
    "moves right": (2.0, 0.0, 0.0),
    "moves up": (0.0, -2.0, 0.0),
    "moves down": (0.0, 2.0, 0.0),
    "stays still": (0.0, 0.0, 0.0),
    "grows": (0.0, 0.0, 0.6),
    "shrinks": (0.0, 0.0, -0.6),
}
HELD_OUT = frozenset({("green", "triangle"), ("purple", "square"), ("orange", "circle"), ("cyan", "triangle")})
TRAIN_PAIRS = tuple((c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELD_OUT)
ALL_PAIRS = tuple((c, s) for c in COLOURS for s in SHAPES)
FPS = 8
CLIP_FRAMES = 11

HALF = 7.0  # nominal half-size at 64x64
OUTLINE = 2  # outline width at 64x64
MARGIN = 1.0  # pixels at any size: keeps the one-pixel border (the checker's background sample) clean

# Paraphrases for training captions; the first entry is the canonical word.
_SHAPE_WORDS = {"circle": ("circle", "ball"), "square": ("square", "box"), "triangle": ("triangle",)}
_MOTION_WORDS = {
    "moves left": ("moves left", "slides left", "goes to the left"),
    "moves right": ("moves right", "slides right", "goes to the right"),
    "moves up": ("moves up", "slides up", "goes up"),
    "moves down": ("moves down", "slides down", "goes down"),
    "stays still": ("stays still", "does not move", "stays in place"),
    "grows": ("grows", "gets bigger"),
    "shrinks": ("shrinks", "gets smaller"),
}


@dataclass(frozen=True)
class Scene:
    """The object at frame 0. x, y (centre) and half (half-size) are pixels at the render size.

    motion None means a still image (images carry no motion in their caption).
    """

    colour: str
    shape: str
    motion: str | None
    background: str
    style: str = "solid"
    _: KW_ONLY
    x: float
    y: float
    half: float

    def __post_init__(self):
        for value, allowed in ((self.colour, COLOURS), (self.shape, SHAPES), (self.background, BACKGROUNDS),
                               (self.style, STYLES), (self.motion, (*MOTIONS, None))):
            if value not in allowed:
                raise ValueError(f"unknown value {value!r}; expected one of {list(allowed)}")


def _check_size(size: int) -> float:
    if size <= 0 or size % 8:
        raise ValueError(f"frame size must be a positive multiple of 8, got {size}")
    return size / 64


def _offsets(steps: list[str], scale: float) -> np.ndarray:
    """(T, 3) offsets of (x, y, half) from frame 0 for T-1 per-frame motions."""
    deltas = np.array([MOTIONS[m] for m in steps], np.float32).reshape(-1, 3) * scale
    return np.concatenate([np.zeros((1, 3), np.float32), np.cumsum(deltas, 0)])


def _start(rng: np.random.Generator, offsets: np.ndarray, size: int) -> tuple[float, float, float]:
    """A frame-0 state whose whole path stays inside the frame; the smallest size along it is nominal."""
    scale = size / 64
    half = HALF * scale - offsets[:, 2].min()
    halves = half + offsets[:, 2] + MARGIN
    centre = []
    for axis in (0, 1):
        lo = np.max(halves - offsets[:, axis])
        hi = np.min(size - halves - offsets[:, axis])
        if lo > hi:
            raise ValueError(f"a {len(offsets)}-frame motion does not fit in a {size}x{size} frame")
        centre.append(float(rng.uniform(lo, hi)))
    return centre[0], centre[1], float(half)


def _erode(mask: np.ndarray, k: int) -> np.ndarray:
    """Binary erosion of (..., H, W) masks by a (2k+1)-square, i.e. k erosions by 3x3."""
    for axis in (-2, -1):
        pad = [(0, 0)] * mask.ndim
        pad[axis] = (k, k)
        mask = sliding_window_view(np.pad(mask, pad), 2 * k + 1, axis=axis).all(-1)
    return mask


def _draw(shape: str, style: str, rgb: np.ndarray, states: np.ndarray, background: str, size: int) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of one object with per-frame colour (T, 3) and state (T, 3) = x, y, half.

    Pixels are sampled at their centres, without anti-aliasing: half-covered edge pixels would
    sit exactly on the checker's half-contrast threshold and make its shape reading flip.
    """
    centres = np.arange(size, dtype=np.float32) + 0.5
    dx = centres[None, None, :] - states[:, 0, None, None]
    dy = centres[None, :, None] - states[:, 1, None, None]
    h = np.maximum(states[:, 2, None, None], 0)
    if shape == "circle":
        mask = dx * dx + dy * dy <= h * h
    elif shape == "square":
        mask = (np.abs(dx) <= h) & (np.abs(dy) <= h)
    else:  # isosceles, apex at the top centre, base along the bottom of the box
        mask = (dy <= h) & (2 * np.abs(dx) <= dy + h)
    if style == "outlined":
        mask = mask & ~_erode(mask, max(1, round(OUTLINE * size / 64)))
    frames = np.empty((*mask.shape, 3), np.uint8)
    frames[:] = BACKGROUNDS[background]
    t, y, x = np.nonzero(mask)
    frames[t, y, x] = rgb[t]
    return frames


def render(scene: Scene, num_frames: int = CLIP_FRAMES, size: int = 64) -> np.ndarray:
    """Frames (num_frames, size, size, 3) uint8 of a scene; the scene's pixels are at this size."""
    scale = _check_size(size)
    steps = [scene.motion or "stays still"] * (num_frames - 1)
    states = np.float32([scene.x, scene.y, scene.half]) + _offsets(steps, scale)
    rgb = np.tile(np.uint8(COLOURS[scene.colour]), (num_frames, 1))
    return _draw(scene.shape, scene.style, rgb, states, scene.background, size)


def _pick(rng: np.random.Generator, options):
    options = tuple(options)
    return options[rng.integers(len(options))]


def caption(scene: Scene, canonical: bool = True, rng: np.random.Generator | None = None,
            with_background: bool | None = None) -> str:
    """`a {colour} [outlined ]{shape}[ {motion}][ on a {background} background]`.

    Paraphrases (canonical=False) need rng. with_background=None: a coin flip with rng, else included.
    """
    if not canonical and rng is None:
        raise ValueError("paraphrased captions need an rng")
    if with_background is None:
        with_background = rng is None or rng.random() < 0.5
    shape = scene.shape if canonical else _pick(rng, _SHAPE_WORDS[scene.shape])
    text = f"a {scene.colour} {'outlined ' if scene.style == 'outlined' else ''}{shape}"
    if scene.motion is not None:
        text += " " + (scene.motion if canonical else _pick(rng, _MOTION_WORDS[scene.motion]))
    if with_background:
        text += f" on a {scene.background} background"
    return text


def _alternatives(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_SHAPE_OF = {w: s for s, words in _SHAPE_WORDS.items() for w in words}
_MOTION_OF = {w: m for m, words in _MOTION_WORDS.items() for w in words}
_CAPTION_RE = re.compile(
    rf"(?:a|an|the) (?P<colour>{_alternatives(COLOURS)}) (?P<outlined>outlined )?"
    rf"(?P<shape>{_alternatives(_SHAPE_OF)})(?: (?P<motion>{_alternatives(_MOTION_OF)}))?"
    rf"(?: on an? (?P<background>{_alternatives(BACKGROUNDS)}) background)?"
)


def parse_caption(text: str) -> dict:
    """dict(colour, shape, motion, background, style) of a Shapes World caption (canonical or paraphrased)."""
    m = _CAPTION_RE.fullmatch(" ".join(text.lower().split()).rstrip("."))
    if m is None:
        raise ValueError(
            f"not a Shapes World caption: {text!r}. Expected 'a <colour> [outlined ]<shape>[ <motion>]"
            f"[ on a <background> background]' with colour in {list(COLOURS)}, shape in {list(SHAPES)}, "
            f"motion in {list(MOTIONS)}, background in {list(BACKGROUNDS)}")
    return {
        "colour": m["colour"],
        "shape": _SHAPE_OF[m["shape"]],
        "motion": _MOTION_OF[m["motion"]] if m["motion"] else None,
        "background": m["background"],
        "style": "outlined" if m["outlined"] else "solid",
    }


def sample_video_scene(rng: np.random.Generator, size: int = 64, num_frames: int = CLIP_FRAMES,
                       split: str = "train") -> Scene:
    """A solid moving object; split 'train' avoids HELD_OUT pairs, 'heldout' uses only them, 'any' all."""
    pairs = {"train": TRAIN_PAIRS, "heldout": tuple(sorted(HELD_OUT)), "any": ALL_PAIRS}[split]
    colour, shape = _pick(rng, pairs)
    motion = _pick(rng, MOTIONS)
    background = _pick(rng, BACKGROUNDS)
    x, y, half = _start(rng, _offsets([motion] * (num_frames - 1), _check_size(size)), size)
    return Scene(colour, shape, motion, background, x=x, y=y, half=half)


def sample_image_scene(rng: np.random.Generator, size: int = 64) -> Scene:
    """Any colour, shape, background and style (held-out pairs and outlines included); no motion."""
    colour, shape = _pick(rng, ALL_PAIRS)
    style = _pick(rng, STYLES)
    background = _pick(rng, BACKGROUNDS)
    x, y, half = _start(rng, _offsets([], _check_size(size)), size)
    return Scene(colour, shape, None, background, style, x=x, y=y, half=half)


def sample_story_clip(rng: np.random.Generator, size: int = 64, num_frames: int = CLIP_FRAMES,
                      paraphrase: bool = False) -> tuple[np.ndarray, str, int]:
    """(frames, caption, change_frame): the motion or the colour changes at change_frame (1..T-2).

    The caption describes what happens from change_frame on, which is what a continuation
    prompt means; both the colour-shape pairs are training pairs.
    """
    scale = _check_size(size)
    colour, shape = _pick(rng, TRAIN_PAIRS)
    motion = _pick(rng, MOTIONS)
    background = _pick(rng, BACKGROUNDS)
    change = int(rng.integers(1, num_frames - 1))
    new_colour, new_motion = colour, motion
    if rng.random() < 0.5:
        new_motion = _pick(rng, [m for m in MOTIONS if m != motion])
    else:
        new_colour = _pick(rng, [c for c, s in TRAIN_PAIRS if s == shape and c != colour])
    # Frame t >= change is frame t-1 moved by the new motion, so the path is continuous.
    offsets = _offsets([motion] * (change - 1) + [new_motion] * (num_frames - change), scale)
    states = np.float32(_start(rng, offsets, size)) + offsets
    rgb = np.uint8([COLOURS[colour]] * change + [COLOURS[new_colour]] * (num_frames - change))
    frames = _draw(shape, "solid", rgb, states, background, size)
    after = Scene(new_colour, shape, new_motion, background, x=0, y=0, half=0)
    return frames, caption(after, not paraphrase, rng), change


def sample_video(rng: np.random.Generator, size: int = 64, num_frames: int = CLIP_FRAMES,
                 story_fraction: float = 0.2, paraphrase: bool = True) -> tuple[np.ndarray, str]:
    """One training video (T, H, W, 3) uint8 and its caption: a story clip with story_fraction."""
    if rng.random() < story_fraction:
        frames, text, _ = sample_story_clip(rng, size, num_frames, paraphrase)
        return frames, text
    scene = sample_video_scene(rng, size, num_frames)
    return render(scene, num_frames, size), caption(scene, not paraphrase, rng)


def sample_image(rng: np.random.Generator, size: int = 64, paraphrase: bool = True) -> tuple[np.ndarray, str]:
    """One training image (1, H, W, 3) uint8 and its caption."""
    scene = sample_image_scene(rng, size)
    return render(scene, 1, size), caption(scene, not paraphrase, rng)


def sample_batch(rng: np.random.Generator, n_videos: int, n_images: int, size: int = 64,
                 num_frames: int = CLIP_FRAMES, story_fraction: float = 0.2, paraphrase: bool = True):
    """(videos (B, T, H, W, 3) uint8, video captions, images (B, 1, H, W, 3) uint8, image captions)."""
    videos = [sample_video(rng, size, num_frames, story_fraction, paraphrase) for _ in range(n_videos)]
    images = [sample_image(rng, size, paraphrase) for _ in range(n_images)]

    def stack(items, t):
        return np.stack([f for f, _ in items]) if items else np.zeros((0, t, size, size, 3), np.uint8)

    return stack(videos, num_frames), [c for _, c in videos], stack(images, 1), [c for _, c in images]


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (3, T, H, W) in [-1, 1], the layout the models take."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1)


class ShapesWorld(IterableDataset):
    """An endless stream of Shapes World training items, generated in memory.

    Yields {"video": (3, T, H, W) float in [-1, 1] (T = 1 for images), "caption", "is_image"}.
    The stream is fixed by seed and differs between DataLoader workers.
    """

    def __init__(self, size: int = 64, num_frames: int = CLIP_FRAMES, image_fraction: float = 0.2,
                 story_fraction: float = 0.2, seed: int = 0, paraphrase: bool = True):
        _check_size(size)
        self.size, self.num_frames, self.seed, self.paraphrase = size, num_frames, seed, paraphrase
        self.image_fraction, self.story_fraction = image_fraction, story_fraction

    def __iter__(self):
        worker = get_worker_info()
        rng = np.random.default_rng([self.seed, worker.id if worker else 0])
        while True:
            is_image = bool(rng.random() < self.image_fraction)
            if is_image:
                frames, text = sample_image(rng, self.size, self.paraphrase)
            else:
                frames, text = sample_video(rng, self.size, self.num_frames, self.story_fraction, self.paraphrase)
            yield {"video": frames_to_tensor(frames), "caption": text, "is_image": is_image}
