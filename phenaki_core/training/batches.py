"""Training batches from Shapes World (rendered on the fly) or from users' folders.

Both trainers read the same `Batch`: videos and images kept apart (an image is a
one-frame video for the tokenizer and a first-frame-only target for the transformer),
plus, per video, how many leading frames come before what its caption describes (story
clips: the frames before the change), so continuation is trained as it is used.
"""
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data import shapes_world as sw


@dataclass
class Batch:
    videos: torch.Tensor  # (B, 3, T, H, W) in [-1, 1]
    video_captions: list[str]
    images: torch.Tensor  # (B, 3, 1, H, W)
    image_captions: list[str]
    context_frames: torch.Tensor  # (B,) frames before the caption applies; 0 for plain clips


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1]."""
    return torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float().div_(127.5).sub_(1)


def shapes_world_batches(seed: int, n_videos: int, n_images: int, size: int = 64,
                         num_frames: int = sw.CLIP_FRAMES, story_fraction: float = 0.2) -> Iterator[Batch]:
    rng = np.random.default_rng(seed)
    while True:
        videos, captions, context = [], [], []
        for _ in range(n_videos):
            if rng.random() < story_fraction:
                frames, text, change = sw.sample_story_clip(rng, size, num_frames, paraphrase=rng.random() < 0.5)
            else:
                scene = sw.sample_video_scene(rng, size, num_frames)
                frames, text, change = sw.render(scene, num_frames, size), sw.caption(scene, rng.random() < 0.5, rng), 0
            videos.append(frames)
            captions.append(text)
            context.append(change)
        images = [sw.sample_image(rng, size, paraphrase=rng.random() < 0.5) for _ in range(n_images)]
        yield Batch(
            _to_tensor(np.stack(videos)), captions,
            _to_tensor(np.stack([f for f, _ in images])) if images else torch.zeros(0, 3, 1, size, size),
            [c for _, c in images], torch.tensor(context),
        )


def folder_batches(video_dir: str, image_dir: str | None, n_videos: int, n_images: int, size: int,
                   num_frames: int, fps: float, seed: int = 0, workers: int = 2) -> Iterator[Batch]:
    from ..data.folders import ImageFolderDataset, VideoFolderDataset

    def loader(ds, n):
        g = torch.Generator().manual_seed(seed)
        while True:
            yield from DataLoader(ds, batch_size=n, shuffle=True, drop_last=True, num_workers=workers, generator=g)

    videos = loader(VideoFolderDataset(video_dir, size, num_frames, fps), n_videos)
    images = loader(ImageFolderDataset(image_dir, size), n_images) if image_dir and n_images else None
    while True:
        v = next(videos)
        i = next(images) if images else {"video": torch.zeros(0, 3, 1, size, size), "caption": []}
        yield Batch(v["video"], list(v["caption"]), i["video"], list(i["caption"]), torch.zeros(len(v["caption"]), dtype=torch.long))
