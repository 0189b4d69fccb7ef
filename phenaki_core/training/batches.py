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
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..data import shapes_world as sw


@dataclass
class Batch:
    videos: torch.Tensor  # (B, 3, T, H, W): float in [-1, 1], or uint8 0..255 (rendered: 4x less to move)
    video_captions: list[str]
    images: torch.Tensor  # (B, 3, 1, H, W), the same
    image_captions: list[str]
    context_frames: torch.Tensor  # (B,) frames before the caption applies; 0 for plain clips

    def with_stills(self, fraction: float) -> "Batch":
        """The first `fraction` of the images also as still clips (the image repeated over
        the clip, under the image's caption), appended to the videos as plain clips: what
        only images show then reaches the temporal frames too."""
        n = int(len(self.images) * fraction)
        if n == 0:
            return self
        stills = self.images[:n].expand(-1, -1, self.videos.shape[2], -1, -1)
        return Batch(torch.cat([self.videos, stills]), self.video_captions + self.image_captions[:n],
                     self.images, self.image_captions,
                     torch.cat([self.context_frames, torch.zeros(n, dtype=self.context_frames.dtype)]))


def on_device(frames: torch.Tensor, device) -> torch.Tensor:
    """A batch's videos or images on `device` as float in [-1, 1]; uint8 converts there."""
    frames = frames.to(device, non_blocking=True)
    return frames if frames.is_floating_point() else frames.float().div_(127.5).sub_(1)


def _shapes_world_stream(rng: np.random.Generator, n_videos: int, n_images: int, size: int,
                         num_frames: int, story_fraction: float) -> Iterator[Batch]:
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
        uint8 = lambda frames: torch.from_numpy(np.stack(frames)).permute(0, 4, 1, 2, 3)
        yield Batch(
            uint8(videos), captions,
            uint8([f for f, _ in images]) if images else torch.zeros(0, 3, 1, size, size, dtype=torch.uint8),
            [c for _, c in images], torch.tensor(context),
        )


class _ShapesWorldWorkers(IterableDataset):
    """Each DataLoader worker renders whole batches from its own stream of the seed."""

    def __init__(self, seed: int, *stream_args):
        self.seed, self.stream_args = seed, stream_args

    def __iter__(self):
        worker = get_worker_info()
        return _shapes_world_stream(np.random.default_rng([self.seed, worker.id]), *self.stream_args)


def shapes_world_batches(seed: int, n_videos: int, n_images: int, size: int = 64,
                         num_frames: int = sw.CLIP_FRAMES, story_fraction: float = 0.2,
                         workers: int = 0) -> Iterator[Batch]:
    """Endless rendered batches. workers=0 renders in this process; a GPU outruns one
    core's renderer, so there `workers` processes render ahead of it."""
    args = (n_videos, n_images, size, num_frames, story_fraction)
    if workers == 0:
        return _shapes_world_stream(np.random.default_rng(seed), *args)
    loader = DataLoader(_ShapesWorldWorkers(seed, *args), batch_size=None, num_workers=workers,
                        pin_memory=torch.cuda.is_available(), prefetch_factor=4, persistent_workers=True)
    return iter(loader)


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
