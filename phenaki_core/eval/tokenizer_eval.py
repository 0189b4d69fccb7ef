"""How well a video tokenizer reconstructs: PSNR, temporal flicker, and whether its
reconstructions of ground-truth Shapes World clips still pass the checker (the ceiling
for anything the transformer generates through it)."""
from dataclasses import replace

import numpy as np
import torch

from ..data import shapes_world as sw
from .checker import check_clip, summarize


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(B, 3, T, H, W) in [-1, 1] -> uint8 (B, T, H, W, 3)."""
    return ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()


def to_float(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def flicker(recon: np.ndarray, truth: np.ndarray) -> float:
    """Mean |frame-to-frame change of the reconstruction - that of the truth|, in 0-255 units:
    what a per-frame tokenizer adds as shimmer between frames."""
    dr = np.diff(recon.astype(np.float32), axis=-4)
    dt = np.diff(truth.astype(np.float32), axis=-4)
    return float(np.abs(dr - dt).mean())


@torch.no_grad()
def reconstruct(model, frames: np.ndarray, batch: int = 16) -> np.ndarray:
    out = []
    for i in range(0, len(frames), batch):
        video = to_float(frames[i: i + batch]).to(model.device, model.dtype)
        out.append(to_uint8(model.detokenize(model.tokenize(video))))
    return np.concatenate(out)


def tokenizer_report(model, n_videos: int = 64, n_images: int = 32, seed: int = 1234, size: int | None = None) -> dict:
    """Checker pass rates of reconstructions (seen videos, held-out videos, outlined images), PSNR, flicker;
    and outlined videos, which no training clip shows: the ceiling of the outlined evaluation set."""
    size = size or model.config.image_size
    rng = np.random.default_rng(seed)
    report = {}
    for name, split in (("seen", "train"), ("heldout", "heldout")):
        scenes = [sw.sample_video_scene(rng, size, sw.CLIP_FRAMES, split=split) for _ in range(n_videos)]
        truth = np.stack([sw.render(s, sw.CLIP_FRAMES, size) for s in scenes])
        recon = reconstruct(model, truth)
        results = [check_clip(r, sw.caption(s)) for r, s in zip(recon, scenes)]
        report[name] = summarize(results)
        report[f"{name}_psnr"] = psnr(recon, truth)
        report[f"{name}_flicker"] = flicker(recon, truth)
    scenes = []
    while len(scenes) < n_images:
        s = sw.sample_image_scene(rng, size)
        if s.style == "outlined":
            scenes.append(s)
    truth = np.stack([sw.render(s, 1, size) for s in scenes])
    recon = reconstruct(model, truth)
    report["outlined_images"] = summarize([check_clip(r, sw.caption(s)) for r, s in zip(recon, scenes)])
    scenes = [replace(sw.sample_video_scene(rng, size, sw.CLIP_FRAMES), style="outlined") for _ in range(n_images)]
    recon = reconstruct(model, np.stack([sw.render(s, sw.CLIP_FRAMES, size) for s in scenes]))
    report["outlined_videos"] = summarize([check_clip(r, sw.caption(s)) for r, s in zip(recon, scenes)])
    return report
