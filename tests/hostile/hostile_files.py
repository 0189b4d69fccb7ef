"""Hostile upload files, made small: a header may claim a size the file never holds (the
studio must refuse on the header alone), or a tiny file may decode to something huge."""
from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(w: int, h: int) -> bytes:
    """A PNG that claims w x h pixels and holds a few bytes of image data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def bmp_header(w: int, h: int) -> bytes:
    """A 24-bit BMP that claims w x h pixels and holds none of them."""
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 16, 0, 0, 14 + len(info)) + info + b"\x00" * 16


def gif_header(w: int, h: int) -> bytes:
    """A GIF whose screen and one frame claim w x h pixels."""
    buf = io.BytesIO()
    Image.new("P", (2, 2)).save(buf, format="GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", w, h)  # the logical screen
    i = data.index(b",")  # the image descriptor
    data[i + 5:i + 9] = struct.pack("<HH", w, h)
    return bytes(data)


def jpeg_header(w: int, h: int) -> bytes:
    """A JPEG whose frame header (SOF0) claims w x h pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def real_png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def many_frame_gif(n: int) -> bytes:
    buf = io.BytesIO()
    frames = [Image.new("L", (2, 2), (i * 37) % 256) for i in range(n)]  # each unlike the one before
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=20)
    return buf.getvalue()


def video(path: Path, w: int, h: int, frames: int = 2, pts_step: int = 1, codec: str = "mpeg4") -> Path:
    """A real video of `frames` frames of w x h; pts_step spaces their timestamps (in a .mkv,
    which stores no frame count, a huge step makes a two-frame file claim hours at 30 fps)."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.time_base = Fraction(1, 30)
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.zeros((h, w, 3), np.uint8), format="rgb24")
            f.pts = i * pts_step
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def truncated_png() -> bytes:
    data = real_png(64, 64)
    return data[:60]  # the header, then nothing
