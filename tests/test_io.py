import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from phenaki_core import Segment, Story, StoryError
from phenaki_core.data import shapes_world as sw
from phenaki_core.io import export_story, frame_strip, load_init_frames, load_sidecar, read_video, upscale, write_video


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
    frames = read_video(write_video(clip[:, :31, :29], tmp_path / "odd.mp4")).astype(int)
    assert frames.shape[1:3] == (32, 30)
    assert np.abs(frames[:, :31, :29] - clip[:, :31, :29]).mean() < 12  # the picture where it was
    # the padding repeats the last row and column (lossy, so nearly)
    assert np.abs(frames[:, 31] - frames[:, 30]).mean() < 12 and np.abs(frames[:, :, 29] - frames[:, :, 28]).mean() < 12


def test_gif_npy_and_png_strip(tmp_path, clip):
    with Image.open(write_video(clip, tmp_path / "clip.gif", fps=8)) as gif:
        assert gif.n_frames == 11 and gif.info["loop"] == 0 and gif.size == (32, 32)
        assert abs(gif.info["duration"] - 125) <= 10  # 8 fps, in the GIF format's 10 ms steps
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    assert np.array_equal(np.stack(frames), clip)  # two flat colours: a GIF's palette keeps them exactly
    npy = write_video(clip, tmp_path / "clip.npy", size=64)
    saved = np.load(npy)
    assert saved.dtype == np.uint8 and np.array_equal(saved, clip.repeat(2, axis=1).repeat(2, axis=2))
    with Image.open(write_video(clip, tmp_path / "strip.png", max_frames=4)) as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), frame_strip(clip, 4))


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


def test_refused_writes_leave_nothing_and_overwrites_leave_one_file(tmp_path, clip):
    for name in ("a.mp4", "a.gif", "a.npy", "a.png"):
        write_video(clip, tmp_path / name)
    write_video(clip[::-1].copy(), tmp_path / "a.npy")  # overwriting is fine too
    assert np.array_equal(np.load(tmp_path / "a.npy"), clip[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4", "a.npy", "a.png"]
    with pytest.raises(ValueError, match="must end in one of"):
        write_video(clip, tmp_path / "a.avi")
    with pytest.raises(ValueError, match="uint8"):
        write_video(clip.astype(np.float32), tmp_path / "b.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4", "a.npy", "a.png"]


class Killed(BaseException):
    """The process dying in the middle of a write (a BaseException, as KeyboardInterrupt is)."""


def _dies_half_way(path):
    """The writer had written half of the file when the process died."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    raise Killed(f"killed while writing {Path(path).name}")


def _crash_mid_write(monkeypatch, suffix):
    """Make the writer of `suffix` write half of its file, then die."""
    import phenaki_core.io as io_mod

    if suffix in (".mp4", ".gif"):
        name = "_write_mp4" if suffix == ".mp4" else "_write_gif"
        real = getattr(io_mod, name)

        def writer(frames, path, fps):
            real(frames, path, fps)
            _dies_half_way(path)
        monkeypatch.setattr(io_mod, name, writer)
    elif suffix == ".npy":
        real_save = np.save

        def save(f, array, *a, **k):
            real_save(f, array, *a, **k)
            f.flush()
            _dies_half_way(f.name)
        monkeypatch.setattr(io_mod.np, "save", save)
    elif suffix == ".png":
        real_save = Image.Image.save

        def save(image, fp, *a, **k):
            real_save(image, fp, *a, **k)
            _dies_half_way(fp)
        monkeypatch.setattr(Image.Image, "save", save)
    else:  # the sidecar
        real_write = Path.write_text

        def write_text(self, data, *a, **k):
            real_write(self, data, *a, **k)
            _dies_half_way(self)
        monkeypatch.setattr(Path, "write_text", write_text)


def _readable(path):
    suffix = path.suffix
    if suffix == ".npy":
        return np.load(path)
    if suffix == ".json":
        return json.loads(path.read_text())
    if suffix == ".mp4":
        return read_video(path)
    with Image.open(path) as image:
        image.load()
        return np.asarray(image)


@pytest.mark.parametrize("name", ["a.mp4", "a.gif", "a.npy", "a.png"])
def test_writes_are_atomic_when_the_writer_dies_half_way(tmp_path, clip, monkeypatch, name):
    """A crash in the middle of a write leaves the old file whole (or no file), never half
    of the new one, and no temporary file beside it."""
    target = tmp_path / name
    write_video(clip, target)
    old = target.read_bytes()
    fresh = tmp_path / f"new{target.suffix}"

    _crash_mid_write(monkeypatch, target.suffix)
    for path in (target, fresh):
        with pytest.raises(Killed):
            write_video(clip[::-1].copy(), path)
    monkeypatch.undo()

    assert target.read_bytes() == old, f"{name} was changed by a write that died half way"
    _readable(target)  # still the whole old file
    assert not fresh.exists(), "a write that died half way left a file where none was"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name], "temporary files left behind"


def test_sidecar_writes_are_atomic_when_the_writer_dies_half_way(tmp_path, clip, monkeypatch):
    story = Story([Segment("a red circle moves right", 11, seed=3)])
    video, sidecar = export_story(clip, story, tmp_path / "s.npy")
    old = sidecar.read_bytes()
    _crash_mid_write(monkeypatch, ".json")
    with pytest.raises(Killed):
        export_story(clip, Story([Segment("a blue square moves up", 11, seed=4)]), video)
    monkeypatch.undo()
    assert sidecar.read_bytes() == old and load_sidecar(sidecar)[0] == story
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npy", "s.story.json"], "temporary files left behind"


def test_load_init_frames_from_an_image_and_a_video(tmp_path, clip):
    Image.fromarray(np.zeros((40, 60, 3), np.uint8) + 200).save(tmp_path / "still.png")
    still = load_init_frames(tmp_path / "still.png", 32)
    assert still.shape == (1, 32, 32, 3) and still.dtype == np.uint8 and (still == 200).all()

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
    assert export == {"fps": 8, "size": None, "resample": "nearest", "learned": False}
    _, plain = export_story(clip, story, tmp_path / "p.mp4")
    assert load_sidecar(plain)[1] is None


def test_sidecar_with_malformed_export_settings_is_a_clear_error(tmp_path, clip):
    _, sidecar = export_story(clip, Story([Segment("a red circle moves right", 11)]), tmp_path / "s.mp4", size=96)
    data = json.loads(sidecar.read_text())
    data["export"]["size"] = "big"
    sidecar.write_text(json.dumps(data))
    with pytest.raises(StoryError, match="export settings"):
        load_sidecar(sidecar)
