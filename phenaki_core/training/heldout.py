"""How well tokenizers reconstruct clips they never trained on: PSNR over every whole clip of
a captioned video folder (held-out footage, say), one figure per tokenizer.

    python -m phenaki_core.training.heldout FOLDER TOKENIZER [TOKENIZER ...]
"""
import argparse


def folder_clips(folder, size: int, frames: int = 11, fps: float = 8):
    """uint8 (N, T, size, size, 3): each video of the folder cut into consecutive whole clips."""
    import numpy as np

    from ..data.folders import VideoFolderDataset, read_clip

    videos = VideoFolderDataset(folder, size, frames, fps)
    seconds = frames / fps
    clips = []
    for (path, _), duration in zip(videos.items, videos.durations):
        n = max(1, int((duration + 1 / fps) // seconds))
        clips += [read_clip(path, frames, fps, size, k * seconds) for k in range(n)]
    return np.stack(clips)


def heldout_psnr(tokenizer, folder, frames: int = 11, fps: float = 8) -> tuple[float, int]:
    """(PSNR in dB over all of the folder's clips, how many clips)."""
    from ..eval.tokenizer_eval import psnr, reconstruct

    truth = folder_clips(folder, tokenizer.config.image_size, frames, fps)
    return psnr(reconstruct(tokenizer.eval(), truth), truth), len(truth)


def main():
    from ..models import CViViT

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    p.add_argument("tokenizers", nargs="+")
    p.add_argument("--frames", type=int, default=11)
    p.add_argument("--fps", type=float, default=8)
    args = p.parse_args()
    for path in args.tokenizers:
        value, n = heldout_psnr(CViViT.from_pretrained(path), args.folder, args.frames, args.fps)
        print(f"{path}: PSNR {value:.2f} dB over {n} held-out clips")


if __name__ == "__main__":
    main()
