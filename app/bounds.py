"""What the studio accepts, checked before the work: uploads by their header, exports by
frames x size, and the settings the server must launch with.

Every check here reads only a file's header (Pillow's `Image.open(...).size` without
`.load()`, PyAV's stream info without decoding), so a hostile file costs a few kilobytes
of memory to refuse. The figures below are the studio's own; app.py asks `launch_kwargs()`
for them instead of keeping copies. Each message is plain text and says what to do.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import av
from PIL import Image, UnidentifiedImageError

from .project import ProjectError

MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # Gradio refuses larger uploads before they reach an event
MAX_UPLOAD_TEXT = "200 MB"
MAX_PROJECT_FILE_BYTES = 8 * 1024 * 1024
# An image is decoded once (RGBA at worst: 4 bytes a pixel), then scaled so its shorter side
# is the model's frame size: 4096 x 4096 is 64 MB decoded; an aspect ratio of 8 keeps the
# scaled copy small (64 x 512 at 64 px).
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_ASPECT = 8.0
# A video is never decoded whole (only its last frames), but one decoded frame is
# width x height x 3 bytes, and a header claiming millions of frames is a lie or a trap.
MAX_VIDEO_SIDE = 4096
MAX_VIDEO_FRAMES = 30 * 60 * 60  # an hour at 30 fps
MAX_GIF_FRAMES = 2000
# An export holds its frames upscaled to the export size, and the writers copy them again:
# the H.264 path pads them (one copy), the GIF path makes palette images and quantises (about
# two): the budget counts the copies.
EXPORT_BUDGET_BYTES = 768 * 1024 * 1024
EXPORT_COPIES = {"mp4": 2, "gif": 3, "npy": 1}  # measured: bench/bench_hostile_memory.py
# Takes drawn by the model's learned decoder, kept per session so the player does not draw the
# whole story again after each new segment: 64 MB holds about 30 eleven-frame takes at 256.
DRAWN_CACHE_BYTES = 64 * 1024 * 1024
PREVIEW_SIZE = 256  # the longer side of the in-page previews when the budget allows
PLAYER_MIN, PLAYER_MAX = 512, 720  # the whole-story player: the export size, within these
SESSION_MAX_AGE_DAYS = 30  # a session folder untouched this long is deleted
EVENT_CONCURRENCY = {"edit": 4, "files": 2, "render": 1}  # events running at once, by kind


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def check_upload_size(path: str | Path, limit: int = MAX_UPLOAD_BYTES, text: str = MAX_UPLOAD_TEXT) -> int:
    try:
        size = os.path.getsize(path)
    except OSError:
        raise ProjectError("the upload could not be read: upload the file again") from None
    if size > limit:
        raise ProjectError(f"the file is {_mb(size)}; at most {text} can be uploaded: use a smaller file")
    if size == 0:
        raise ProjectError("the file is empty: upload the image or video again")
    return size


def _check_shape(w: int, h: int, what: str, max_side: int, max_pixels: int | None = None):
    if w < 1 or h < 1:
        raise ProjectError(f"the {what} has no pixels ({w} x {h}): use another file")
    if max(w, h) > max_side or (max_pixels is not None and w * h > max_pixels):
        raise ProjectError(f"the {what} is {w} x {h} pixels; at most {max_side} x {max_side} is accepted: "
                           "scale it down and upload it again")
    aspect = max(w, h) / min(w, h)
    if aspect > MAX_ASPECT:
        raise ProjectError(f"the {what} is {w} x {h} pixels, {aspect:.0f} times longer than wide; at most "
                           f"{MAX_ASPECT:g} to 1 is accepted: crop it closer to a square")


def check_init_upload(path: str | Path) -> str:
    """'image' or 'video' for an upload the studio can start a story from, after checking its
    header against the bounds above; ProjectError (plain text, no path) otherwise."""
    check_upload_size(path)
    try:
        with Image.open(path) as im:  # reads the header only
            w, h = im.size
            fmt = im.format
            _check_shape(w, h, "image", MAX_IMAGE_SIDE, MAX_IMAGE_PIXELS)
            if fmt == "GIF":
                frames = getattr(im, "n_frames", 1)  # walks the frame headers, one frame in memory
                if frames > MAX_GIF_FRAMES:
                    raise ProjectError(f"the GIF has {frames} frames; at most {MAX_GIF_FRAMES}: shorten it")
                if frames > 1:
                    return "video"
            return "image"
    except Image.DecompressionBombError:
        raise ProjectError(f"the image has far too many pixels (over {Image.MAX_IMAGE_PIXELS // 10**6} million); "
                           f"at most {MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE} is accepted: scale it down") from None
    except ProjectError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        pass  # not an image Pillow knows: perhaps a video
    _check_video_header(path)
    return "video"


def _check_video_header(path):
    unreadable = ProjectError("this file is not an image or a video the studio can read: "
                              "upload a PNG or JPEG image, or an MP4, WebM or GIF video")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise unreadable
            stream = container.streams.video[0]
            w, h = stream.codec_context.width or 0, stream.codec_context.height or 0
            if not (w and h):  # FFmpeg opens almost anything (a text file is "tty"): no size, no video
                raise unreadable
            _check_shape(w, h, "video", MAX_VIDEO_SIDE)
            frames = stream.frames or 0
            if not frames:  # many containers do not say: estimate from the duration and rate
                seconds = float(stream.duration * stream.time_base) if stream.duration else \
                    (container.duration or 0) / av.time_base
                frames = seconds * float(stream.average_rate or stream.guessed_rate or 0)
            if not math.isfinite(frames) or frames > MAX_VIDEO_FRAMES:
                raise ProjectError(f"the video is too long (about {frames:.0f} frames); at most {MAX_VIDEO_FRAMES} "
                                   "frames: upload just its last seconds")
    except ProjectError:
        raise
    except Exception:  # noqa: BLE001  PyAV raises many kinds for a broken file; none of their text is for the user
        raise unreadable from None


def export_bytes(frames: int, size: int | None, frame_size: int, fmt: str) -> int:
    """Bytes an export of `frames` frames at `size` pixels (None: as generated) holds at its peak."""
    side = frame_size if size is None else size
    return frames * side * side * 3 * EXPORT_COPIES.get(fmt, 2)


def check_export(frames: int, size: int | None, frame_size: int, fmt: str):
    need = export_bytes(frames, size, frame_size, fmt)
    if need <= EXPORT_BUDGET_BYTES:
        return
    fit = math.isqrt(EXPORT_BUDGET_BYTES // max(1, frames * 3 * EXPORT_COPIES.get(fmt, 2)))
    hint = (f"set the export size to {fit} pixels or less (Settings tab)" if fit >= 16
            else "export fewer segments, or export raw frames (npy)")
    raise ProjectError(f"this export is too large: {frames} frames at {size or frame_size} pixels need about "
                       f"{_mb(need)}, and the studio allows {_mb(EXPORT_BUDGET_BYTES)}: {hint}")


def preview_size(frames: int, frame_size: int) -> int:
    """The in-page preview's size: PREVIEW_SIZE when the budget allows, smaller for long clips,
    never below the frames' own size (which needs no copy)."""
    fit = math.isqrt(EXPORT_BUDGET_BYTES // max(1, frames * 3 * EXPORT_COPIES["mp4"]))
    return max(frame_size, min(PREVIEW_SIZE, fit))


def player_size(frames: int, frame_size: int, export_size: int) -> int:
    """The whole-story player's size: the export setting's (what will be exported), at least
    PLAYER_MIN so it reads on the page, at most PLAYER_MAX, and smaller for a story too long
    for the memory budget."""
    fit = math.isqrt(EXPORT_BUDGET_BYTES // max(1, frames * 3 * EXPORT_COPIES["mp4"]))
    return max(frame_size, min(max(PLAYER_MIN, int(export_size)), PLAYER_MAX, fit))


def redraw_fits(frames: int, drawn_size: int, player: int, frame_size: int) -> bool:
    """Whether the player may draw its frames at `drawn_size` (the model's learned decoder)
    before upscaling them to `player` pixels: both copies within the budget, and no drawing
    larger than the player shows."""
    need = export_bytes(frames, player, frame_size, "mp4") + export_bytes(frames, drawn_size, frame_size, "npy")
    return drawn_size <= player and need <= EXPORT_BUDGET_BYTES


def allowed_hosts(host: str) -> list[str]:
    """Host header values the server answers: a local bind answers only local names (a DNS
    rebinding page cannot reach it); a wider bind answers the names in PHENAKI_ALLOWED_HOSTS
    (comma-separated) or, when that is unset, any name."""
    extra = [h.strip() for h in os.environ.get("PHENAKI_ALLOWED_HOSTS", "").split(",") if h.strip()]
    if host in ("127.0.0.1", "localhost", "::1"):
        return ["127.0.0.1", "localhost", "::1", "[::1]", *extra]
    return extra or ["*"]


def launch_kwargs(host: str = "127.0.0.1") -> dict:
    """What app.py passes to `demo.launch(...)`: the upload limit, and a Host header check
    (Gradio has no setting for it; Starlette's TrustedHostMiddleware does it through app_kwargs)."""
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    return {"max_file_size": MAX_UPLOAD_BYTES,
            "app_kwargs": {"middleware": [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host))]}}
