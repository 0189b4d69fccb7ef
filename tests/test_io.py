import json

import av
import numpy as np
import pytest
from PIL import Image

from phenaki_core import Segment, Story, StoryError
from phenaki_core.data import shapes_world as sw
from phenaki_core.io import (export_story, frame_strip, load_init_frames, load_sidecar, read_video, upscale,
                             write_video)


@pytest.fixture(scope="module")
def clip():
    """A moving object, so first and last frames differ (and GIF writers cannot merge frames)."""
    return sw.render(sw.Scene("red", "square", "moves right", "gray", x=8.0, y=16.0, half=3.5), 11, 32)


def test_mp4_round_trip_is_browser_playable_h264(tmp_path, clip):
    path = write_video(clip, tmp_path / "clip.mp4", fps=8)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == 8
    frames = read_video(path)
    assert frames.shape == clip.shape
    assert np.abs(frames.astype(int) - clip).mean() < 12  # lossy, but the same picture


def test_mp4_pads_odd_sides_to_even(tmp_path, clip):
    frames = read_video(write_video(clip[:, :31, :29], tmp_path / "odd.mp4"))
    assert frames.shape[1:3] == (32, 30)


def test_gif_npy_and_png_strip(tmp_path, clip):
    with Image.open(write_video(clip, tmp_path / "clip.gif", fps=8)) as gif:
        assert gif.n_frames > 1 and gif.info["loop"] == 0 and gif.size == (32, 32)
    npy = write_video(clip, tmp_path / "clip.npy", size=64)
    saved = np.load(npy)
    assert saved.dtype == np.uint8 and saved.shape == (11, 64, 64, 3)
    with Image.open(write_video(clip, tmp_path / "strip.png", max_frames=4)) as png:
        assert png.size == (4 * 32, 32)


def test_frame_strip_spaces_frames_evenly(clip):
    strip = frame_strip(clip, max_frames=3)
    assert np.array_equal(strip, np.concatenate([clip[0], clip[5], clip[10]], axis=1))
    assert frame_strip(clip[:2], max_frames=12).shape == (32, 64, 3)


def test_upscale_nearest_replicates_pixels_exactly(clip):
    big = upscale(clip, 96)
    assert np.array_equal(big, clip.repeat(3, axis=1).repeat(3, axis=2))
    assert upscale(clip, None) is clip
    assert upscale(clip, 64, "bicubic").shape == (11, 64, 64, 3)
    smooth = upscale(clip, 96, "lanczos")
    assert smooth.shape == big.shape and not np.array_equal(smooth, big)  # edges blend instead of stepping
    with pytest.raises(ValueError, match="resample"):
        upscale(clip, 64, "sinc")


def test_writes_are_atomic_and_check_the_suffix(tmp_path, clip):
    for name in ("a.mp4", "a.gif", "a.npy", "a.png"):
        write_video(clip, tmp_path / name)
    write_video(clip, tmp_path / "a.npy")  # overwriting is fine too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4", "a.npy", "a.png"]
    with pytest.raises(ValueError, match="must end in one of"):
        write_video(clip, tmp_path / "a.avi")
    with pytest.raises(ValueError, match="uint8"):
        write_video(clip.astype(np.float32), tmp_path / "b.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4", "a.npy", "a.png"]


def test_load_init_frames_from_an_image_and_a_video(tmp_path, clip):
    Image.fromarray(np.zeros((40, 60, 3), np.uint8) + 200).save(tmp_path / "still.png")
    still = load_init_frames(tmp_path / "still.png", 32)
    assert still.shape == (1, 32, 32, 3) and still.dtype == np.uint8

    write_video(clip, tmp_path / "clip.mp4", fps=8)
    tail = load_init_frames(tmp_path / "clip.mp4", 32, max_frames=5)
    assert tail.shape == (5, 32, 32, 3)
    # The LAST five frames: the object sits where it is at the end of the clip.
    assert np.abs(tail[-1].astype(int) - clip[-1]).mean() < np.abs(tail[-1].astype(int) - clip[0]).mean()


def test_load_init_frames_rejects_garbage(tmp_path):
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match="is not an image or a video we can read"):
        load_init_frames(junk, 32)


def test_export_story_writes_a_sidecar_that_reads_back(tmp_path, clip):
    story = Story(segments=[Segment("a red circle moves left", 6, 3), Segment("a red circle grows", 6, 4, "cut")],
                  num_inference_steps=8, guidance_scale=2.5)
    video, sidecar = export_story(clip, story, tmp_path / "story.mp4", fps=8, size=64, resample="nearest")
    assert video.is_file() and sidecar.name == "story.story.json"
    assert Story.from_json(sidecar.read_text()) == story
    assert '"resample": "nearest"' in sidecar.read_text()


def test_sidecar_carries_the_start_frames_exactly(tmp_path, clip):
    story = Story([Segment("a red circle moves right", 11, seed=3)])
    _, sidecar = export_story(clip, story, tmp_path / "s.mp4", init_frames=clip[-5:])
    again, init, export = load_sidecar(sidecar)
    assert again == story and np.array_equal(init, clip[-5:])
    assert export == {"fps": 8, "size": None, "resample": "nearest"}
    _, plain = export_story(clip, story, tmp_path / "p.mp4")
    assert load_sidecar(plain)[1] is None


def test_sidecar_with_malformed_export_settings_is_a_clear_error(tmp_path, clip):
    _, sidecar = export_story(clip, Story([Segment("a red circle moves right", 11)]), tmp_path / "s.mp4", size=96)
    data = json.loads(sidecar.read_text())
    data["export"]["size"] = "big"
    sidecar.write_text(json.dumps(data))
    with pytest.raises(StoryError, match="export settings"):
        load_sidecar(sidecar)
