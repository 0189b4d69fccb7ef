"""Token shards: a dataset encoded once by a frozen tokenizer, for the transformer to train on.

WebDataset's format, the field's common one for streaming training data: plain POSIX tar
files, each sample a few members sharing a key (`KEY.tokens.npy`, `KEY.txt`, `KEY.json`,
and for images `KEY.still.npy`, the image as a still clip), read in order, shard by shard,
from a disk or a bucket without an index. Any tar reader opens them; the `webdataset`
package writes and reads them here. Beside the shards, `index.json` names the tokenizer
(its config and a digest of its weights) so tokens are never paired with another one.

Reading is a function of (seed, epoch) and the batch number, so a resumed run reads on
exactly where it stopped: every epoch visits the shards in an order drawn from the seed,
each process reads its own share, and a buffer shuffles samples within it.
"""
import io
import itertools
import json
from pathlib import Path

import numpy as np

INDEX = "index.json"
SHUFFLE_BUFFER = 1000


def encode_sample(key: str, tokens: np.ndarray, caption: str, meta: dict, still: np.ndarray | None = None) -> dict:
    def npy(array):
        buffer = io.BytesIO()
        np.save(buffer, array.astype(np.int16 if array.max(initial=0) < 2**15 else np.int32))
        return buffer.getvalue()

    sample = {"__key__": key, "tokens.npy": npy(tokens), "txt": caption.encode(), "json": json.dumps(meta).encode()}
    if still is not None:
        sample["still.npy"] = npy(still)
    return sample


def read_index(folder) -> dict:
    path = Path(folder) / INDEX
    if not path.is_file():
        raise SystemExit(f"{folder} holds no token shards ({INDEX} is missing): write them with `phenaki tokenize`")
    return json.loads(path.read_text())


def _samples(urls: list[str]):
    import webdataset as wds

    # The shards are split between processes here (_stream), not by webdataset's splitters.
    yield from wds.WebDataset(urls, shardshuffle=False, empty_check=False, nodesplitter=None,
                              workersplitter=None).decode()


def _stream(folder: Path, shards: list[str], kind: str, seed: int, process: int, processes: int):
    """Endless samples of one kind ("video" or "image") for this process, epoch after epoch."""
    for epoch in itertools.count():
        rng = np.random.default_rng([seed, 0 if kind == "video" else 1, epoch])
        order = [str(folder / shards[i]) for i in rng.permutation(len(shards))]
        # Whole shards per process where there are enough of them; else every process reads
        # them all and keeps every processes-th sample.
        split_shards = len(shards) >= processes
        mine = order[process::processes] if split_shards else order
        buffer, n = [], 0
        for i, sample in enumerate(s for s in _samples(mine) if s["json"]["kind"] == kind):
            if not split_shards and i % processes != process:
                continue
            buffer.append(sample)
            if len(buffer) >= SHUFFLE_BUFFER:
                yield buffer.pop(int(rng.integers(len(buffer))))
            n += 1
        if n == 0:
            raise SystemExit(f"the token shards in {folder} give process {process} no {kind}s to read")
        rng.shuffle(buffer)
        yield from buffer


def shard_batches(folder, tokenizer, n_videos: int, n_images: int, frames: int, seed, process: int,
                  processes: int, start: int = 0, still_fraction: float = 0.0):
    """Endless `TokenBatch`es from token shards, from batch `start` on (the batches before it
    are read and dropped: tokens are small, and so the position needs nothing but the step)."""
    import torch

    from .batches import TokenBatch
    from .run import weights_digest

    folder = Path(folder)
    index = read_index(folder)
    if index["tokenizer_digest"] != weights_digest(tokenizer):
        raise SystemExit(f"the token shards in {folder} were written by another tokenizer ({index['tokenizer']}): "
                         f"train with that --tokenizer, or tokenize again with this one")
    if index["frames"] != frames:
        raise SystemExit(f"the token shards in {folder} hold {index['frames']}-frame clips; give --frames {index['frames']}")
    if index["videos"] == 0:
        raise SystemExit(f"the token shards in {folder} hold no videos")
    if n_images and index["images"] == 0:
        raise SystemExit(f"the token shards in {folder} hold no images: give --batch-images 0")
    seed = int(np.atleast_1d(seed)[0])
    videos = _stream(folder, index["shards"], "video", seed, process, processes)
    images = _stream(folder, index["shards"], "image", seed, process, processes) if n_images else iter(())
    n_stills = int(n_images * still_fraction)
    for i in itertools.count():
        v = [next(videos) for _ in range(n_videos)]
        im = [next(images) for _ in range(n_images)]
        if i < start:
            continue
        stack = lambda arrays: torch.from_numpy(np.stack(arrays).astype(np.int64))
        video_tokens = stack([s["tokens.npy"] for s in v] + [s["still.npy"] for s in im[:n_stills]])
        image_tokens = stack([s["tokens.npy"] for s in im]) if im else video_tokens[:0, :1]
        context = [s["json"].get("context_frames", 0) for s in v] + [0] * n_stills
        yield TokenBatch(video_tokens, [s["txt"] for s in v] + [s["txt"] for s in im[:n_stills]],
                         image_tokens, [s["txt"] for s in im], torch.tensor(context, dtype=torch.long))
