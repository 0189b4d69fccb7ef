"""Users' own training data: folders of captioned videos and images.

A folder holds the media and a `captions.csv` (columns file,caption) or `captions.jsonl`
({"file": ..., "caption": ...} per line) naming them. Items come out in the same format as
ShapesWorld, so training code cannot tell the sources apart.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from .shapes_world import CLIP_FRAMES, FPS, frames_to_tensor


def load_captions(root: str | Path) -> list[tuple[Path, str]]:
    """(path, caption) for every file the folder's caption file lists."""
    root = Path(root)
    csv_path, jsonl_path = root / "captions.csv", root / "captions.jsonl"
    if csv_path.is_file():
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"file", "caption"} <= set(reader.fieldnames or ()):
                raise ValueError(f"{csv_path} needs the columns file,caption; it has {reader.fieldnames}")
            rows = [(r["file"], r["caption"]) for r in reader]
    elif jsonl_path.is_file():
        rows = []
        for number, line in enumerate(jsonl_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                rows.append((item["file"], item["caption"]))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                expected = '{"file": ..., "caption": ...}'
                raise ValueError(f"{jsonl_path}:{number}: expected {expected}, got {line!r}") from e
    else:
        raise FileNotFoundError(f"{root} has no captions.csv or captions.jsonl beside its files")

    items = []
    for name, text in rows:
        path = root / (name or "")
        if not name or not path.is_file():
            raise FileNotFoundError(f"{path} is listed in the captions of {root} but is not a file")
        if not (text or "").strip():
            raise ValueError(f"{path} has an empty caption")
        items.append((path, text.strip()))
    if not items:
        raise ValueError(f"the captions in {root} list no files")
    return items


def _resize_crop(image: Image.Image, size: int) -> np.ndarray:
    """Scale the shorter side to size, then take the centre square: RGB uint8 (size, size, 3)."""
    w, h = image.size
    k = size / min(w, h)
    w, h = max(size, round(w * k)), max(size, round(h * k))
    image = image.convert("RGB").resize((w, h), Image.BICUBIC)
    left, top = (w - size) // 2, (h - size) // 2
    return np.array(image.crop((left, top, left + size, top + size)))  # a writable copy, as torch wants


def read_clip(path: str | Path, num_frames: int, fps: float, size: int, start: float = 0.0) -> np.ndarray:
    """num_frames frames (T, size, size, 3) uint8 at fps from start seconds on.

    Each output frame is the source frame nearest in time, so any source rate is resampled
    (frames repeat past the end of a short video). Only a window around the clip is decoded.
    """
    out = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            stream = container.streams.video[0]
            origin = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
            targets = origin + start + np.arange(num_frames) / fps
            if start > 0:
                container.seek(int(targets[0] / stream.time_base), stream=stream)  # lands on the keyframe before
            prev = prev_time = prev_array = None
            for frame in container.decode(stream):
                t = frame.time
                if t is None:  # no timestamp, so no place in time to resample from
                    continue
                # The previous frame is the nearest for every target up to the midpoint (ties
                # keep it; the epsilon makes that hold despite float timestamps).
                while prev is not None and len(out) < num_frames and targets[len(out)] <= (prev_time + t) / 2 + 1e-6:
                    prev_array = _resize_crop(prev.to_image(), size) if prev_array is None else prev_array
                    out.append(prev_array)
                if len(out) == num_frames:
                    break
                prev, prev_time, prev_array = frame, t, None
            if prev is None:
                raise ValueError(f"{path} has no decodable frames")
            if len(out) < num_frames:
                last = _resize_crop(prev.to_image(), size) if prev_array is None else prev_array
                out += [last] * (num_frames - len(out))
    except av.error.FFmpegError as e:
        raise ValueError(f"cannot read the video {path}: {e}") from e
    return np.stack(out)


def _duration(path: Path) -> float:
    """Seconds from the first to the last frame, or 0 when the file does not say."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.duration is not None:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = (container.duration or 0) / av.time_base
            rate = float(stream.average_rate or 0)
            return max(0.0, seconds - (1 / rate if rate else 0))
    except (av.error.FFmpegError, IndexError) as e:
        raise ValueError(f"cannot read the video {path}: {e}") from e


class VideoFolderDataset(Dataset):
    """Captioned videos from a folder, as random clips of num_frames at fps.

    The clip start is drawn with torch's RNG, which DataLoader seeds per worker.
    """

    def __init__(self, root: str | Path, size: int = 64, num_frames: int = CLIP_FRAMES, fps: float = FPS):
        self.items = load_captions(root)
        self.size, self.num_frames, self.fps = size, num_frames, fps
        self.durations = [_duration(path) for path, _ in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.clip(index, float(torch.rand(())))

    def clip(self, index: int, where: float) -> dict:
        """The clip starting `where` (0 to 1) of the way into the video's slack: the trainers
        pick it from a generator seeded by the step, so a resumed run reads the same clips."""
        path, text = self.items[index]
        slack = max(0.0, self.durations[index] - (self.num_frames - 1) / self.fps)
        frames = read_clip(path, self.num_frames, self.fps, self.size, where * slack)
        return {"video": frames_to_tensor(frames), "caption": text, "is_image": False}


class ImageFolderDataset(Dataset):
    """Captioned images from a folder, as one-frame videos."""

    def __init__(self, root: str | Path, size: int = 64):
        self.items = load_captions(root)
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        path, text = self.items[index]
        try:
            with Image.open(path) as image:
                frame = _resize_crop(image, self.size)
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"cannot read the image {path}: {e}") from e
        return {"video": frames_to_tensor(frame[None]), "caption": text, "is_image": True}


class JointDataset(IterableDataset):
    """An endless mix of videos and images, image_fraction of them images (the paper's 80/20).

    Item choice is fixed by seed and differs between DataLoader workers. image_ds may be None
    for video-only training.
    """

    def __init__(self, video_ds: Dataset, image_ds: Dataset | None = None, image_fraction: float = 0.2, seed: int = 0):
        if image_ds is None and image_fraction > 0:
            raise ValueError("image_fraction > 0 needs an image dataset")
        self.video_ds, self.image_ds, self.image_fraction, self.seed = video_ds, image_ds, image_fraction, seed

    def __iter__(self):
        worker = get_worker_info()
        rng = np.random.default_rng([self.seed, worker.id if worker else 0])
        while True:
            ds = self.image_ds if rng.random() < self.image_fraction else self.video_ds
            yield ds[int(rng.integers(len(ds)))]
