"""Exports hold exactly the frames given, at every frame rate the studio and the CLI offer."""
import av
import numpy as np
import pytest
from PIL import Image

from phenaki_core.io import gif_durations, read_video, write_video

FPS = (8, 12, 24, 25, 30, 60)
LENGTHS = (1, 2, 11, 19, 22, 49)


def moving(n):
    """A bar sweeping over a background that brightens frame by frame: every frame differs, so
    order and count are both checked (a Shapes World object would leave the frame and freeze)."""
    clip = np.zeros((n, 32, 32, 3), np.uint8)
    for i in range(n):
        clip[i] = (40 + 4 * i) % 256
        clip[i, :, (5 * i) % 28: (5 * i) % 28 + 4] = (230, 30, 30)
    return clip


@pytest.mark.parametrize("fps", FPS)
def test_mp4_holds_every_frame_in_order(tmp_path, fps):
    for n in LENGTHS:
        clip = moving(n)
        path = write_video(clip, tmp_path / f"{n}.mp4", fps=fps)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.average_rate == fps
            frames = [f for f in container.decode(video=0)]
        assert len(frames) == n, (fps, n, len(frames))
        assert [round(float(f.time) * fps) for f in frames] == list(range(n))
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in frames]).astype(int)
        # Each decoded frame is closest to the frame given at its place.
        errors = np.abs(decoded[:, None] - clip[None].astype(int)).mean(axis=(2, 3, 4))
        assert (errors.argmin(1) == np.arange(n)).all() or n == 1 and errors.max() < 12


@pytest.mark.parametrize("fps", FPS)
def test_gif_holds_every_frame_and_keeps_time(tmp_path, fps):
    for n in LENGTHS:
        clip = moving(n)
        path = write_video(clip, tmp_path / f"{n}.gif", fps=fps)
        assert len(read_video(path)) == n, (fps, n)
        with Image.open(path) as gif:
            shown = []
            for i in range(gif.n_frames):
                gif.seek(i)
                shown.append((np.asarray(gif.convert("RGB")), gif.info["duration"]))
        assert sum(d for _, d in shown) == sum(gif_durations(n, fps))
        assert all(np.abs(f.astype(int) - c).mean() < 2 for (f, _), c in zip(shown, clip))  # palette rounding only


def test_gif_runs_of_identical_frames_are_shown_for_their_whole_time(tmp_path):
    clip = np.concatenate([moving(3)[:1].repeat(4, axis=0), moving(3)[1:]])  # 4 identical frames, then 2 more
    path = write_video(clip, tmp_path / "still.gif", fps=8)
    with Image.open(path) as gif:
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
    times = gif_durations(6, 8)
    assert durations == [sum(times[:4]), times[4], times[5]]


def test_gif_delays_keep_the_clock():
    assert sum(gif_durations(8, 8)) == 1000 and set(gif_durations(8, 8)) == {120, 130}  # 1 s in 8 frames
    assert sum(gif_durations(25, 25)) == 1000 and set(gif_durations(25, 25)) == {40}
    assert sum(gif_durations(30, 30)) == 1000
    assert min(gif_durations(60, 60)) == 20  # GIF cannot show frames faster than 50 per second
