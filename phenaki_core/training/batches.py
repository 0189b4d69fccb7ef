"""Training batches from Shapes World (rendered on the fly) or from users' folders.

Both trainers read the same `Batch`: videos and images kept apart (an image is a
one-frame video for the tokenizer and a first-frame-only target for the transformer),
plus, per video, how many leading frames come before what its caption describes (story
clips: the frames before the change), so continuation is trained as it is used.
"""
import itertools
import multiprocessing
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

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


@dataclass
class TokenBatch:
    """A batch as the transformer trains on it: videos' tokens (B, T', g, g), images' first-frame
    tokens (B, 1, g, g), their captions, and each video's frames before its caption applies."""
    videos: torch.Tensor
    video_captions: list[str]
    images: torch.Tensor
    image_captions: list[str]
    context_frames: torch.Tensor


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


class StepBatches(Dataset):
    """Batch number `i` of a run as a pure function of (seed, i): what a step sees depends on
    nothing but its number, so a resumed run starts at its step and sees what an unbroken
    run saw there, however many workers render ahead. `draw(rng, i)` makes the batch from
    a generator seeded by (seed..., i)."""

    def __init__(self, seed, draw):
        self.seed, self.draw = tuple(np.atleast_1d(seed).tolist()), draw

    def __len__(self):  # endless: the sampler, not the length, says which batches are drawn
        return sys.maxsize

    def __getitem__(self, i: int) -> Batch:
        return self.draw(np.random.default_rng([*self.seed, i]), i)


def step_batches(seed, draw, start: int = 0, workers: int = 0) -> Iterator[Batch]:
    """Batches start, start + 1, ... of `StepBatches(seed, draw)`; with `workers`, that many
    processes draw ahead (in order: a DataLoader hands batches back in sampler order)."""
    data = StepBatches(seed, draw)
    if workers == 0:
        return (data[i] for i in itertools.count(start))
    # Its own generator: a DataLoader otherwise draws its workers' base seed from torch's global
    # RNG, and a resumed run, whose global RNG state is restored before the loader starts,
    # would then draw its masks from a stream shifted by one.
    # Workers come from a forkserver, not a fork of this process: a fork copies whatever locks
    # this process's other threads hold at that instant (a web server's, a render's, OpenMP's),
    # and a worker that then needs one waits forever. The forkserver is a fresh, single-threaded
    # process (Python 3.14 made it the default for this reason). Windows has only spawn, its default.
    context = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else None
    loader = DataLoader(data, batch_size=None, sampler=itertools.count(start), num_workers=workers,
                        multiprocessing_context=context, pin_memory=torch.cuda.is_available(),
                        prefetch_factor=4, generator=torch.Generator())
    return iter(loader)


class _ShapesWorldDraw:
    def __init__(self, *stream_args):
        self.stream_args = stream_args

    def __call__(self, rng: np.random.Generator, i: int) -> Batch:
        return next(_shapes_world_stream(rng, *self.stream_args))


def shapes_world_batches(seed, n_videos: int, n_images: int, size: int = 64,
                         num_frames: int = sw.CLIP_FRAMES, story_fraction: float = 0.2,
                         workers: int = 0, start: int = 0) -> Iterator[Batch]:
    """Endless rendered batches, from batch `start` on. `seed` is an int or a tuple (the run's
    seed and the process index, say). workers=0 renders in this process; a GPU outruns one
    core's renderer, so there `workers` processes render ahead of it."""
    draw = _ShapesWorldDraw(n_videos, n_images, size, num_frames, story_fraction)
    return step_batches(seed, draw, start, workers)


class _FolderDraw:
    """A batch of a folder's videos (and images): each epoch a fresh permutation of the folder
    by (seed, epoch), read on from where the last batch stopped, so every item is seen once an
    epoch; a video's clip starts where the batch's generator says."""

    def __init__(self, seed, videos, images, n_videos: int, n_images: int, size: int):
        self.seed, self.videos, self.images = tuple(np.atleast_1d(seed).tolist()), videos, images
        self.n_videos, self.n_images, self.size = n_videos, n_images, size

    def _indices(self, i: int, n: int, length: int, which: int) -> list[int]:
        positions = range(i * n, (i + 1) * n)
        perms = {}
        for p in positions:
            epoch = p // length
            if epoch not in perms:
                perms[epoch] = np.random.default_rng([*self.seed, which, epoch]).permutation(length)
        return [int(perms[p // length][p % length]) for p in positions]

    def __call__(self, rng: np.random.Generator, i: int) -> Batch:
        videos = [self.videos.clip(j, rng.random()) for j in self._indices(i, self.n_videos, len(self.videos), 0)]
        if self.images is not None and self.n_images:
            images = [self.images[j] for j in self._indices(i, self.n_images, len(self.images), 1)]
        else:
            images = []
        stack = lambda items: torch.stack([x["video"] for x in items])
        return Batch(stack(videos), [v["caption"] for v in videos],
                     stack(images) if images else torch.zeros(0, 3, 1, self.size, self.size),
                     [x["caption"] for x in images], torch.zeros(len(videos), dtype=torch.long))


def folder_batches(video_dir: str, image_dir: str | None, n_videos: int, n_images: int, size: int,
                   num_frames: int, fps: float, seed=0, workers: int = 2, start: int = 0) -> Iterator[Batch]:
    """Endless batches of a captioned video folder (and image folder), from batch `start` on."""
    from ..data.folders import ImageFolderDataset, VideoFolderDataset

    videos = VideoFolderDataset(video_dir, size, num_frames, fps)
    images = ImageFolderDataset(image_dir, size) if image_dir and n_images else None
    draw = _FolderDraw(seed, videos, images, n_videos, n_images if images is not None else 0, size)
    return step_batches(seed, draw, start, workers)
