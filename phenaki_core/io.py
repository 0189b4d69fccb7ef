"""Frames in and out: videos, GIFs, frame strips, story exports and init frames.

Frames are uint8 arrays (T, H, W, 3) everywhere. Every write goes to a temporary file in
the destination folder and is renamed into place, so a crash or a full disk never leaves
a half-written video where a player or the studio would pick it up.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import secrets
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

VIDEO_SUFFIXES = (".mp4", ".gif", ".npy", ".png")
# Nearest keeps the model's pixels crisp (Shapes World's flat colours and hard edges);
# Lanczos is the smooth look; bicubic stays readable for sidecars written before Lanczos.
RESAMPLE = {"nearest": Image.NEAREST, "lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC}
RESAMPLE_CHOICES = ("nearest", "lanczos")  # what the CLI and the studio offer
MAX_SIZE = 4096  # longest side an export may be upscaled to
INIT_FPS = 8  # init frames continue a story, which runs at the model's 8 fps


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"expected uint8 frames (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}")
    return frames


def _check_upscale(size: int | None, resample: str):
    if resample not in RESAMPLE:
        raise ValueError(f"resample must be one of {list(RESAMPLE)}, got {resample!r}")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_SIZE):
        raise ValueError(f"size must be a number of pixels from 1 to {MAX_SIZE}, got {size!r}")


def _check_fps(fps: float):
    if not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")


def upscale(frames: np.ndarray, size: int | None, resample: str = "nearest") -> np.ndarray:
    """Resize so the longer side is `size` (aspect kept); None keeps the frames as they are.

    Nearest keeps Shapes World's flat colours and hard edges; Lanczos is smooth.
    """
    frames = _check_frames(frames)
    _check_upscale(size, resample)
    h, w = frames.shape[1:3]
    if size is None or size == max(h, w):
        return frames
    k = size / max(h, w)
    out = (max(1, round(w * k)), max(1, round(h * k)))
    return np.stack([np.asarray(Image.fromarray(f).resize(out, RESAMPLE[resample])) for f in frames])


def frame_strip(frames: np.ndarray, max_frames: int = 12) -> np.ndarray:
    """One image (H, n*W, 3): at most max_frames frames, evenly spaced, side by side."""
    frames = _check_frames(frames)
    keep = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(int))
    return np.concatenate(frames[keep], axis=1)


@contextlib.contextmanager
def _atomic(path: Path):
    """Yields a temporary path beside `path` (same suffix, so writers pick the format) and
    renames it over `path` only when the block succeeds."""
    # Not mkstemp: its 0600 mode would survive the rename and hide exports from other users.
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_mp4(frames: np.ndarray, path: Path, fps: float):
    """H.264 through PyAV, one packet per frame given, frame i at time i/fps.

    Not moviepy: its writer samples the clip at `np.arange(0, int(duration * fps))` with
    duration = n / fps as a float (moviepy 2.1, Clip.iter_frames), and n / fps * fps falls
    just under n for many lengths (19 / 24 * 24 = 18.999...), so the last frame was dropped
    at 12, 24 and 25 fps. PyAV takes the frames themselves, with exact timestamps."""
    # yuv420p halves the chroma resolution, so H.264 needs even sides: repeat the last row/column.
    h, w = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    import av  # PyAV loads when a video is written or read, not when the CLI builds its parser

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = 1 / rate
        stream.options = {"crf": "18"}
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def gif_durations(n: int, fps: float) -> list[int]:
    """Per-frame GIF delays in ms. GIF counts in hundredths of a second and browsers show
    delays under 2 as 10, so frame i starts at round(100 * i / fps) hundredths (at least 2
    apart): 8 fps alternates 120 and 130 ms and keeps time, where one rounded delay drifts."""
    starts = [round(100 * i / fps) for i in range(n + 1)]
    return [10 * max(2, b - a) for a, b in zip(starts, starts[1:])]


def _write_gif(frames: np.ndarray, path: Path, fps: float):
    """Every frame, looping. Pillow stores a run of identical frames as one frame shown for
    their summed time: what is seen, and when, is exactly the frames given."""
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=gif_durations(len(images), fps), loop=0)


def write_video(frames: np.ndarray, path: str | Path, fps: float = 8, size: int | None = None,
                resample: str = "nearest", max_frames: int = 12) -> Path:
    """Write frames by the path's suffix: .mp4 (H.264, plays in browsers), .gif (loops
    forever), .npy (the raw uint8 array) or .png (a strip of at most max_frames frames)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"cannot write {path.name}: the file name must end in one of {', '.join(VIDEO_SUFFIXES)}")
    _check_fps(fps)
    frames = upscale(frames, size, resample)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic(path) as tmp:
        suffix = path.suffix.lower()
        if suffix == ".mp4":
            _write_mp4(frames, tmp, fps)
        elif suffix == ".gif":
            _write_gif(frames, tmp, fps)
        elif suffix == ".npy":
            with open(tmp, "wb") as f:  # a file object, or np.save would append a second .npy
                np.save(f, frames)
        else:
            Image.fromarray(frame_strip(frames, max_frames)).save(tmp, format="PNG")
    return path


def export_story(frames: np.ndarray, story, path: str | Path, fps: float = 8, size: int | None = None,
                 resample: str = "nearest", init_frames: np.ndarray | None = None,
                 learned: bool = False) -> tuple[Path, Path]:
    """The video and, beside it, `<stem>.story.json`: the story, the frames it started from
    (if any, as PNGs) and the export settings: enough to render the same frames again.
    `learned`: the frames were drawn at `size` by the model itself (its upsampler), not
    upscaled; the sidecar says so, and keeps `resample` for a model that cannot draw it.
    Returns (video path, sidecar path)."""
    video = write_video(frames, path, fps, size, resample)
    sidecar = video.with_name(f"{video.stem}.story.json")
    data = {**story.to_dict(), "export": {"fps": fps, "size": size, "resample": resample, "learned": bool(learned)}}
    if init_frames is not None:
        data["init_frames"] = [_png_base64(f) for f in init_frames]
    with _atomic(sidecar) as tmp:
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return video, sidecar


def read_video(path: str | Path) -> np.ndarray:
    """Every frame of a video file as uint8 (T, H, W, 3)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.error.FFmpegError as e:
        raise ValueError(f"cannot read the video {path}: {e}") from e
    if not frames:
        raise ValueError(f"{path} has no decodable frames")
    return np.stack(frames)


def load_init_frames(path: str | Path, size: int, max_frames: int = 5) -> np.ndarray:
    """Frames a story can start from, resized (shorter side) and centre-cropped to size x size:
    an image gives one frame, a video its last max_frames frames at 8 fps."""
    from .data.folders import (  # torch: only when a file is read
        _duration,
        _resize_crop,
        read_clip,
    )

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with Image.open(path) as image:
            if getattr(image, "n_frames", 1) == 1:  # an animated GIF is a video: decode it as one
                return _resize_crop(image, size)[None]
    except (UnidentifiedImageError, OSError):
        pass
    try:
        seconds = _duration(path)
        n = max(1, min(max_frames, 1 + math.floor(seconds * INIT_FPS + 1e-6)))
        return read_clip(path, n, INIT_FPS, size, start=max(0.0, seconds - (n - 1) / INIT_FPS))
    except ValueError as e:
        raise ValueError(f"{path.name} is not an image or a video we can read ({e})") from None


def _png_base64(frame: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def load_sidecar(path: str | Path):
    """(Story, start frames or None, export settings) from a `.story.json` that export_story
    wrote; the export settings are {"fps", "size", "resample", "learned"}, each None where it
    is missing (sidecars written before the learned decoder have no "learned": upscaled)."""
    from .story.timeline import Story, StoryError

    text = Path(path).read_text(encoding="utf-8")
    story = Story.from_json(text)
    data = json.loads(text)
    saved = data.get("export") or {}
    if not isinstance(saved, dict):
        raise StoryError(f"the sidecar's export settings are malformed: {saved!r}")
    export = {k: saved.get(k) for k in ("fps", "size", "resample", "learned")}
    try:  # checked now, not after minutes of rendering
        if export["learned"] not in (None, True, False):
            raise ValueError(f"learned must be true or false, got {export['learned']!r}")
        if export["fps"] is not None:
            _check_fps(export["fps"])
        _check_upscale(export["size"], export["resample"] or "nearest")
    except ValueError as e:
        raise StoryError(f"the sidecar's export settings are malformed: {e}") from None
    encoded = data.get("init_frames")
    if encoded is None:
        return story, None, export
    try:
        frames = [np.asarray(Image.open(io.BytesIO(base64.b64decode(e, validate=True))).convert("RGB")) for e in encoded]
        return story, np.stack(frames), export
    except (ValueError, TypeError, OSError) as e:
        raise StoryError(f"the sidecar's start frames are unreadable: {e}") from None
