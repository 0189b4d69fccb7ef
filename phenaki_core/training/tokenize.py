"""`phenaki tokenize`: encode a dataset once with a frozen tokenizer into token shards
(token_shards.py), for `train-transformer --tokens` to train on without encoding every step.

The dataset is a captioned video folder (every video cut into consecutive clips), an image
folder, or Shapes World (`--clips N`). Launched with accelerate, each process encodes its
share and writes its own shards; the main process writes the index.

    phenaki tokenize --tokenizer RUN/cvivit --videos clips/ --out tokens/
    accelerate launch --multi_gpu --num_processes 2 -m phenaki_core.training.tokenize ...
"""
import argparse

from .arguments import at_least, run_as_script


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--tokenizer", required=True, help="folder of the frozen CViViT that encodes (save_pretrained)")
    p.add_argument("--out", required=True, help="folder for the shards and their index.json")
    p.add_argument("--videos", default=None, help="folder of captioned videos (default: Shapes World)")
    p.add_argument("--images", default=None, help="folder of captioned images")
    p.add_argument("--clips", type=at_least(1), default=1024, help="Shapes World: clips to render and encode")
    p.add_argument("--image-count", type=at_least(0), default=256, help="Shapes World: images to render and encode")
    p.add_argument("--story-fraction", type=float, default=0.2, help="Shapes World: share of story clips")
    p.add_argument("--frames", type=int, default=11)
    p.add_argument("--fps", type=float, default=8)
    p.add_argument("--batch", type=at_least(1), default=32, help="clips encoded at a time")
    p.add_argument("--shard-size", type=at_least(1), default=2000, help="samples a shard")
    p.add_argument("--seed", type=int, default=0)


def _folder_items(args, size):
    """(kind, dataset, index, start seconds) for every clip of every video and every image."""
    from ..data.folders import ImageFolderDataset, VideoFolderDataset

    items = []
    if args.videos:
        videos = VideoFolderDataset(args.videos, size, args.frames, args.fps)
        clip_seconds = args.frames / args.fps
        for i, duration in enumerate(videos.durations):
            n = max(1, int((duration + 1 / args.fps) // clip_seconds))  # whole clips; a short video gives one
            items += [("video", videos, i, k * clip_seconds) for k in range(n)]
    if args.images:
        images = ImageFolderDataset(args.images, size)
        items += [("image", images, i, 0.0) for i in range(len(images))]
    return items


def _folder_batches(args, size, process, processes):
    """This process's share of a folder's clips and images, `--batch` at a time."""
    from ..data.folders import read_clip
    from ..data.shapes_world import frames_to_tensor

    items = _folder_items(args, size)[process::processes]
    for b in range(0, len(items), args.batch):
        chunk = items[b:b + args.batch]
        out = []
        for kind, ds, i, start in chunk:
            if kind == "video":
                path, caption = ds.items[i]
                frames = frames_to_tensor(read_clip(path, args.frames, args.fps, size, start))
                out.append((kind, frames, caption, 0))
            else:
                item = ds[i]
                out.append((kind, item["video"], item["caption"], 0))
        yield [(k, c, ctx) for k, _, c, ctx in out], [x for _, x, _, _ in out]


def _shapes_world_batches(args, size, process, processes):
    """Shapes World batches b = process, process + processes, ...: clips and images in the
    proportion asked, rendered from (seed, b) as the trainers render theirs."""
    import math

    from .batches import shapes_world_batches

    n_batches = math.ceil(args.clips / args.batch)
    per_batch = math.ceil(args.image_count / n_batches)
    for b in range(process, n_batches, processes):
        n_v = min(args.batch, args.clips - b * args.batch)
        n_i = max(0, min(per_batch, args.image_count - b * per_batch))
        batch = next(shapes_world_batches((args.seed, 1), args.batch, per_batch, size, args.frames,
                                          args.story_fraction, start=b))
        meta = [("video", c, int(k)) for c, k in zip(batch.video_captions[:n_v], batch.context_frames[:n_v])]
        meta += [("image", c, 0) for c in batch.image_captions[:n_i]]
        frames = list(batch.videos[:n_v]) + list(batch.images[:n_i])
        yield meta, frames


def main(args):
    import json
    from pathlib import Path

    import torch
    import webdataset as wds
    from accelerate import Accelerator
    from accelerate.utils import gather_object
    from tqdm import tqdm

    from ..models import CViViT
    from .batches import on_device
    from .run import weights_digest
    from .token_shards import INDEX, encode_sample

    acc = Accelerator(cpu=not torch.accelerator.is_available())

    out = Path(args.out)
    try:
        tokenizer = CViViT.from_pretrained(args.tokenizer).eval().requires_grad_(False).to(acc.device)
    except (OSError, ValueError) as e:
        raise SystemExit(f"--tokenizer {args.tokenizer}: {e}") from e
    size = tokenizer.config.image_size
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("tokens-*.tar"):  # a fresh set: stale shards would mix with the new ones
            old.unlink()
    acc.wait_for_everyone()
    try:
        batches = (_folder_batches(args, size, acc.process_index, acc.num_processes) if args.videos or args.images
                   else _shapes_world_batches(args, size, acc.process_index, acc.num_processes))
        counts = {"video": 0, "image": 0}
        pattern = str(out / f"tokens-{acc.process_index:03d}-%06d.tar")
        with wds.ShardWriter(pattern, maxcount=args.shard_size, verbose=0) as sink:
            for meta, frames in tqdm(batches, disable=not acc.is_local_main_process, desc="tokenize"):
                videos = [f for (kind, _, _), f in zip(meta, frames) if kind == "video"]
                images = [f for (kind, _, _), f in zip(meta, frames) if kind == "image"]
                with torch.no_grad():  # in full precision: the very tokens the tokenizer gives
                    v_tokens = tokenizer.tokenize(on_device(torch.stack(videos), acc.device)) if videos else None
                    if images:
                        stills = torch.stack(images).expand(-1, -1, args.frames, -1, -1)
                        i_tokens = tokenizer.tokenize(on_device(torch.stack(images), acc.device))
                        s_tokens = tokenizer.tokenize(on_device(stills, acc.device))
                vi = ii = 0
                for kind, caption, context in meta:
                    key = f"{acc.process_index:03d}{counts['video'] + counts['image']:09d}"
                    if kind == "video":
                        sample = encode_sample(key, v_tokens[vi].cpu().numpy(), caption,
                                               {"kind": "video", "context_frames": context})
                        vi += 1
                    else:
                        sample = encode_sample(key, i_tokens[ii].cpu().numpy(), caption, {"kind": "image"},
                                               still=s_tokens[ii].cpu().numpy())
                        ii += 1
                    sink.write(sample)
                    counts[kind] += 1
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from e
    totals = gather_object([counts])
    acc.wait_for_everyone()
    if acc.is_main_process:
        shards = sorted(p.name for p in out.glob("tokens-*.tar"))
        index = {"tokenizer": str(args.tokenizer), "tokenizer_digest": weights_digest(tokenizer),
                 "tokenizer_config": {k: v for k, v in tokenizer.config.items() if not k.startswith("_")},
                 "frames": args.frames, "fps": args.fps, "source": args.videos or args.images or "shapes-world",
                 "videos": sum(c["video"] for c in totals), "images": sum(c["image"] for c in totals),
                 "shards": shards}
        (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")
        print(f"{index['videos']} clips and {index['images']} images in {len(shards)} shards: {out}")


if __name__ == "__main__":
    run_as_script(add_arguments, main, __doc__)
