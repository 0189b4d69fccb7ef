import json

import av
import numpy as np
import pytest
import torch
from PIL import Image

from phenaki_core.data.folders import ImageFolderDataset, JointDataset, VideoFolderDataset, read_clip

STEP = 5  # brightness added per source frame, so a frame's value tells its index


def write_video(path, fps, n_frames, width, height):
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "0"} if codec == "libx264" else {"qscale": "1"}
        for i in range(n_frames):
            frame = np.full((height, width, 3), 20 + STEP * i, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def source_index(frames) -> np.ndarray:
    """The source frame index of each frame, read back from its brightness.

    frames: uint8 (T, H, W, 3) from read_clip, or a dataset's float (3, T, H, W) tensor.
    """
    if isinstance(frames, torch.Tensor):
        frames = (frames.permute(1, 2, 3, 0).numpy() + 1) * 127.5
    return (frames.mean((1, 2, 3)) - 20) / STEP


@pytest.fixture(scope="module")
def video_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "a.mp4", 24, 48, 80, 48)  # 2 s at 24 fps, wide
    write_video(root / "b.mp4", 12, 30, 40, 56)  # 2.5 s at 12 fps, tall
    (root / "captions.csv").write_text('file,caption\na.mp4,a dog runs\nb.mp4,"a cat, sleeping"\n')
    return root


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for name, colour in (("x.png", (255, 0, 0)), ("y.png", (0, 0, 255))):
        Image.new("RGB", (50, 30), colour).save(root / name)
    (root / "captions.jsonl").write_text(
        "\n".join(json.dumps({"file": n, "caption": f"a {n} picture"}) for n in ("x.png", "y.png")) + "\n")
    return root


def test_video_folder_items(video_root):
    torch.manual_seed(0)
    ds = VideoFolderDataset(video_root, size=32, num_frames=11, fps=8)
    assert len(ds) == 2
    for i, caption in enumerate(["a dog runs", "a cat, sleeping"]):
        item = ds[i]
        v = item["video"]
        assert item["caption"] == caption and item["is_image"] is False
        assert v.shape == (3, 11, 32, 32) and v.dtype == torch.float32
        assert v.min() >= -1 and v.max() <= 1


def test_fps_resampling_takes_the_nearest_frame(video_root):
    # 24 fps -> 8 fps keeps every third source frame.
    idx = source_index(read_clip(video_root / "a.mp4", 11, 8, 32))
    assert np.abs(idx - 3 * np.arange(11)).max() < 0.5
    # 12 fps -> 8 fps: frame k at k/8 s is source frame round(1.5 k); ties keep the earlier frame.
    idx = source_index(read_clip(video_root / "b.mp4", 11, 8, 32))
    expected = np.floor(1.5 * np.arange(11))
    assert np.abs(idx - expected).max() < 0.5
    # A clip longer than the video repeats its last frame.
    idx = source_index(read_clip(video_root / "b.mp4", 11, 2, 32))
    assert np.abs(idx[-3:] - 29).max() < 0.5


def test_random_starts_stay_inside_the_video(video_root):
    torch.manual_seed(1)
    ds = VideoFolderDataset(video_root, size=16, num_frames=11, fps=8)
    starts = set()
    for _ in range(12):
        idx = source_index(ds[0]["video"])
        assert np.abs(np.diff(idx) - 3).max() < 0.5 and idx[-1] <= 47.5
        starts.add(round(idx[0]))
    assert len(starts) > 1


def test_image_folder_items(image_root):
    ds = ImageFolderDataset(image_root, size=24)
    item = ds[1]
    assert item["caption"] == "a y.png picture" and item["is_image"] is True
    assert item["video"].shape == (3, 1, 24, 24)
    assert torch.allclose(item["video"][:, 0, 12, 12], torch.tensor([-1.0, -1.0, 1.0]))


def test_joint_ratio(video_root, image_root):
    joint = JointDataset(VideoFolderDataset(video_root, 16, 3, 8), ImageFolderDataset(image_root, 16), 0.2, seed=0)
    items = [item for item, _ in zip(joint, range(500))]
    share = sum(i["is_image"] for i in items) / len(items)
    assert 0.15 < share < 0.25
    assert {i["video"].shape[1] for i in items} == {1, 3}


def test_clear_errors(tmp_path, video_root):
    with pytest.raises(FileNotFoundError, match="captions"):
        VideoFolderDataset(tmp_path)
    (tmp_path / "captions.csv").write_text("file,caption\nmissing.mp4,hello\n")
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        VideoFolderDataset(tmp_path)
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    (tmp_path / "captions.csv").write_text("file,caption\nbroken.mp4,hello\n")
    with pytest.raises(ValueError, match="broken.mp4"):
        VideoFolderDataset(tmp_path)
    (tmp_path / "captions.csv").write_text("name,text\nbroken.mp4,hello\n")
    with pytest.raises(ValueError, match="file,caption"):
        VideoFolderDataset(tmp_path)
    (tmp_path / "captions.csv").unlink()
    (tmp_path / "broken.png").write_bytes(b"nope")
    (tmp_path / "captions.jsonl").write_text('{"file": "broken.png", "caption": "x"}\n')
    with pytest.raises(ValueError, match="broken.png"):
        ImageFolderDataset(tmp_path)[0]
    with pytest.raises(ValueError, match="image dataset"):
        JointDataset(VideoFolderDataset(video_root))
