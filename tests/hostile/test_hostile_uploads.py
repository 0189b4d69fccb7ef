"""Uploads and exports within bounds: a hostile file is refused on its header (before any
decoding or resizing), with a plain message, the project unchanged, the upload gone from
Gradio's cache, and this process's memory within its bound while it happens."""
from __future__ import annotations

import os

import numpy as np
import pytest
from gradio_client import handle_file
from hostile_files import (
    bmp_header,
    gif_header,
    jpeg_header,
    many_frame_gif,
    png_header,
    real_png,
    truncated_png,
    video,
)
from hostile_helpers import PeakRSS, add, client, project_state, refused, summary

from app.project import ProjectError

pytestmark = pytest.mark.hostile("memory")
MEMORY_BOUND_MB = 48  # refusing a hostile upload costs its header, not its pixels

TOO_BIG = r"at most 4096 x 4096|too many pixels"
ASPECT = r"times longer than wide"
UNREADABLE = r"not an image or a video the studio can read|could not be decoded"

IMAGES = {  # name: (file bytes, suffix, what the message says)
    "png 1x60000 (312 bytes)": (lambda: real_png(1, 60000), ".png", TOO_BIG),
    "png 60000x1": (lambda: real_png(60000, 1), ".png", TOO_BIG),
    "png 1x1000000": (lambda: real_png(1, 1_000_000), ".png", TOO_BIG),
    "png 20000x20000 header": (lambda: png_header(20000, 20000), ".png", TOO_BIG),
    "png 65535x65535 header": (lambda: png_header(65535, 65535), ".png", TOO_BIG),
    "png 4097x4097 header": (lambda: png_header(4097, 4097), ".png", TOO_BIG),
    "png 4097x100 header": (lambda: png_header(4097, 100), ".png", TOO_BIG),
    "png 100x4097 header": (lambda: png_header(100, 4097), ".png", TOO_BIG),
    "png 4096x4097 header": (lambda: png_header(4096, 4097), ".png", TOO_BIG),
    "png 9000x9000 header": (lambda: png_header(9000, 9000), ".png", TOO_BIG),
    "png 64x600 aspect": (lambda: real_png(64, 600), ".png", ASPECT),
    "png 1x9 aspect": (lambda: real_png(1, 9), ".png", ASPECT),
    "png 4000x100 aspect": (lambda: png_header(4000, 100), ".png", ASPECT),
    "png 0x0 header": (lambda: png_header(0, 0), ".png", UNREADABLE),
    "png as .mp4": (lambda: png_header(20000, 20000), ".mp4", TOO_BIG),
    "bmp 30000x30000 header": (lambda: bmp_header(30000, 30000), ".bmp", TOO_BIG),
    "bmp 5000x10 header": (lambda: bmp_header(5000, 10), ".bmp", TOO_BIG),
    "gif 65535x65535 header": (lambda: gif_header(65535, 65535), ".gif", TOO_BIG),
    "gif 5000x5000 header": (lambda: gif_header(5000, 5000), ".gif", TOO_BIG),
    "gif 2100 frames": (lambda: many_frame_gif(2100), ".gif", r"2100 frames"),
    "jpeg 60000x60000 header": (lambda: jpeg_header(60000, 60000), ".jpg", TOO_BIG),
    "jpeg 8000x100 header": (lambda: jpeg_header(8000, 100), ".jpg", TOO_BIG),
    "jpeg 20x400 aspect": (lambda: jpeg_header(20, 400), ".jpg", ASPECT),
    "truncated png": (truncated_png, ".png", UNREADABLE),
    "empty file": (lambda: b"", ".png", r"empty"),
    "text as png": (lambda: b"this is not an image", ".png", UNREADABLE),
    "html as png": (lambda: b"<html><img src=http://example.com/x.png></html>", ".png", UNREADABLE),
    "svg with script": (lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", ".svg",
                        UNREADABLE),
    "zip bytes": (lambda: b"PK\x03\x04" + b"\x00" * 100, ".zip", UNREADABLE),
    "pdf bytes": (lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + b"0" * 100, ".pdf", UNREADABLE),
    "elf bytes": (lambda: b"\x7fELF" + bytes(range(256)), ".mp4", UNREADABLE),
    "random bytes": (lambda: np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), ".mp4",
                     UNREADABLE),
    "json as mp4": (lambda: b'{"format": "phenaki-studio-project/1"}', ".mp4", UNREADABLE),
}

VIDEOS = {  # name: (w, h, frames, pts step, codec, suffix, message)
    "video 16x4100": (16, 4100, 1, 1, "mpeg4", ".mp4", TOO_BIG),
    "video 4112x4112": (4112, 4112, 1, 1, "mpeg4", ".mp4", TOO_BIG),
    "video 4112x64 aspect": (4112, 64, 1, 1, "mpeg4", ".mp4", TOO_BIG),
    "video 1024x64 aspect": (1024, 64, 1, 1, "mpeg4", ".mp4", ASPECT),
    "video claims 10 hours": (64, 64, 2, 30 * 3600 * 10, "libx264", ".mkv", r"too long"),
}


def make(tmp_path, name):
    if name in IMAGES:
        data, suffix, _ = IMAGES[name]
        path = tmp_path / f"upload{suffix}"
        path.write_bytes(data())
        return path
    w, h, n, step, codec, suffix, _ = VIDEOS[name]
    return video(tmp_path / f"upload{suffix}", w, h, n, step, codec)


def expected(name):
    return IMAGES[name][2] if name in IMAGES else VIDEOS[name][6]


ALL = [*IMAGES, *VIDEOS]


@pytest.mark.parametrize("name", ALL)
def test_header_check_refuses_before_decoding(tmp_path, name):
    import re

    from app import bounds

    path = make(tmp_path, name)
    with PeakRSS() as mem, pytest.raises(ProjectError) as e:
        bounds.check_init_upload(path)
        # a file whose header passes must then fail to decode, as the studio would try
        from phenaki_core.io import load_init_frames
        try:
            load_init_frames(path, size=32)
        except (ValueError, OSError):
            raise ProjectError("this file could not be decoded") from None
    assert re.search(expected(name), str(e.value)), str(e.value)
    assert mem.mb < MEMORY_BOUND_MB, f"{mem.mb:.0f} MB to refuse {name}"


@pytest.fixture(scope="module")
def uploader(studio):
    url, root, _ = studio
    c = client(url)
    add(c, "a red circle moves right", seed=2)
    return c, root


@pytest.mark.parametrize("name", ALL)
def test_upload_refused_through_the_api(uploader, upload_dir, tmp_path, name):
    """The issue's case: a 312-byte 1x60000 PNG grew the server from 883 to 1874 MB."""
    import re

    c, root = uploader
    path = make(tmp_path, name)
    before = project_state(summary(c))
    with PeakRSS() as mem:
        msg = refused(c, 1, handle_file(str(path)), api_name="/set_init", root=root)
    assert re.search(expected(name), msg), msg
    assert mem.mb < MEMORY_BOUND_MB, f"{mem.mb:.0f} MB to refuse {name}"
    assert project_state(summary(c)) == before
    left = [p for p in upload_dir.rglob(path.name) if p.is_file()]
    assert not left, f"the refused upload is still in Gradio's cache: {left}"


def test_good_upload_is_used_and_leaves_the_cache(uploader, upload_dir, tmp_path):
    c, _ = uploader
    path = tmp_path / "fine.png"
    path.write_bytes(real_png(300, 200))
    s = c.predict(1, handle_file(str(path)), api_name="/set_init")[0]
    assert s["init_frames"] == 1
    assert not [p for p in upload_dir.rglob("fine.png") if p.is_file()]
    assert c.predict(1, api_name="/clear_init")[0]["init_frames"] == 0


def test_250_mb_upload_refused_and_not_kept(uploader, upload_dir, tmp_path):
    """Gradio refuses it (launch's max_file_size) before any event runs; nothing stays behind."""
    c, _ = uploader
    big = tmp_path / "huge.mp4"
    with open(big, "wb") as f:
        f.truncate(250 * 2**20)  # sparse: costs no disk
    before = project_state(summary(c))
    with PeakRSS() as mem, pytest.raises(Exception) as e:
        c.predict(1, handle_file(str(big)), api_name="/set_init")
    assert "200" in str(e.value) or "large" in str(e.value).lower() or "413" in str(e.value), str(e.value)
    assert mem.mb < 300  # the client reads the file to send it; the server keeps none of it
    assert project_state(summary(c)) == before
    assert not [p for p in upload_dir.rglob("huge*") if p.is_file()]


def test_project_file_over_8_mb_refused(uploader, tmp_path):
    c, root = uploader
    big = tmp_path / "big.json"
    big.write_text('{"format": "phenaki-studio-project/1", "pad": "' + "x" * (9 * 2**20) + '"}')
    before = project_state(summary(c))
    msg = refused(c, handle_file(str(big)), api_name="/load_project", root=root)
    assert "8 MB" in msg
    assert project_state(summary(c)) == before


# -- exports: frames x size within the budget, checked before a single frame is copied -----
EXPORTS = [(4800, 1024, "mp4"), (4800, 1024, "gif"), (4800, 512, "mp4"), (1000, 1024, "mp4"), (200, 1024, "mp4"),
           (200, 1024, "gif"), (130, 1024, "mp4"), (600, 512, "gif"), (2100, 256, "mp4"), (4800 * 500, 64, "npy"),
           (3000, 400, "mp4"), (10**6, 16, "gif")]


@pytest.mark.parametrize("frames, size, fmt", EXPORTS)
def test_export_over_budget_refused(frames, size, fmt):
    from app import bounds

    with pytest.raises(ProjectError, match="too large") as e:
        bounds.check_export(frames, size if fmt != "npy" else None, 64, fmt)
    msg = str(e.value)
    assert "export size" in msg or "fewer segments" in msg, msg
    assert bounds.export_bytes(frames, size if fmt != "npy" else None, 64, fmt) > bounds.EXPORT_BUDGET_BYTES


@pytest.mark.parametrize("frames, size, fmt", [(44, 1024, "mp4"), (44, 1024, "gif"), (4800, 64, "npy"),
                                               (120, 1024, "mp4"), (1000, 256, "gif")])
def test_export_within_budget_allowed(frames, size, fmt):
    from app import bounds

    bounds.check_export(frames, size if fmt != "npy" else None, 64, fmt)


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_long_rendered_story_export_refused_before_copying(tiny_pipe, tmp_path, fmt):
    """A rendered 176-frame story at 1024 px: the original code upscaled every frame (over 1 GB
    with the writer's copy); now the export is refused with the size that fits."""
    from app.render import Studio, new_session_id
    from phenaki_core.story import Segment

    st = Studio(tiny_pipe, new_session_id(), tmp_path / "p", tmp_path / "w", "tiny")
    st.project.set_settings(num_inference_steps=1, export_size=1024)
    st.project.add(Segment("a red circle moves right", 176, 1))
    assert list(st.iter_render())[-1][0] == "done"
    with PeakRSS() as mem, pytest.raises(ProjectError, match="too large") as e:
        st.export(fmt)
    assert "export size" in str(e.value)
    assert mem.mb < MEMORY_BOUND_MB
    assert not list((tmp_path / "w").rglob(f"*.{fmt}"))


def test_long_clip_preview_stays_within_budget():
    from app import bounds

    assert bounds.preview_size(11, 64) == bounds.PREVIEW_SIZE
    big = bounds.preview_size(4800, 64)
    assert 64 <= big < bounds.PREVIEW_SIZE
    assert bounds.export_bytes(4800, big, 64, "mp4") <= bounds.EXPORT_BUDGET_BYTES


def test_launch_kwargs_carry_the_upload_limit():
    from app import bounds

    kw = bounds.launch_kwargs()
    assert kw["max_file_size"] == bounds.MAX_UPLOAD_BYTES == 200 * 2**20
    assert os.path.basename(__file__)  # the suite's server launches with these (see conftest)
