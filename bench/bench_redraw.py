"""How far a redraw from re-tokenized frames is from the redraw from the sampled tokens, at 256.

    python bench/bench_redraw.py [--upsampler FOLDER] [--n 6] [--seed 0]

Frames that lost their tokens (a take from a bundle written before takes kept them, or from
another tokenizer) are drawn at a size the model draws by tokenizing them again, clip by clip
(`PhenakiPipeline.redraw`), and drawing the new tokens. The story engine and the pipeline's own `height=` draw the tokens that were
sampled. This measures the gap between the two: sampled clips of the default model (the
evaluation's seen prompts), one clip each and one continued video (17 frames: two sampled
clips, which the redraw cuts into chunks of 11 and 6, not where the clips began), each drawn at
the upsampler's size both ways; PSNR of one against the other. For scale, the same against a
bicubic upscale of the 64-pixel frames, and the tokenizer's own round trip at 64.

Then what that path costs: on ground-truth Shapes
World clips (seen compositions, rendered at 64 and exactly at the upsampler's size), PSNR
against the exact large render of the learned drawing from the clip's tokens, of the learned
drawing of its 64-pixel decode tokenized again (the path for frames without tokens), and of bicubic and
nearest upscales of that 64-pixel decode (PIL, as bench_upsampler.py), pooled over the clips.

--upsampler: a TokenUpsampler folder (a training run's `upsampler/`); default: a fresh one
from the shipped tokenizer (its untrained head draws the tokenizer's frames upscaled bilinearly).
"""
import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from PIL import Image

from phenaki_core.data import shapes_world as sw
from phenaki_core.eval.evaluate import clip_prompts
from phenaki_core.eval.tokenizer_eval import psnr
from phenaki_core.models.upsampler import TokenUpsampler, to_frames, upscale_video
from phenaki_core.pipelines import PhenakiPipeline, load_pipeline
from phenaki_core.training.train_upsampler import render_pair


def pil_upscale(frames: np.ndarray, size: int, method) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), method)) for f in frames])


def ground_truth(pipe, n: int, seed: int):
    """Pooled PSNR at the upsampler's size against exact renders, four ways."""
    rng, up = np.random.default_rng(seed + 1), pipe.upsampler
    drawn = {"learned from the clip's tokens": [], "learned from re-tokenized 64-px frames": [],
             "bicubic upscale of the 64-px decode": [], "nearest upscale of the 64-px decode": []}
    truths = []
    for _ in range(n):
        small, large = render_pair(sw.sample_video_scene(rng, split="train"), sw.CLIP_FRAMES, pipe.frame_size,
                                   up.config.scale)
        tokens = pipe.encode_frames(small)
        decoded = pipe.decode_tokens(tokens)[0]
        for name, frames in zip(drawn, (pipe.decode_tokens(tokens, up.output_size)[0], pipe.redraw(decoded, up.output_size),
                                        pil_upscale(decoded, up.output_size, Image.BICUBIC),
                                        pil_upscale(decoded, up.output_size, Image.NEAREST))):
            drawn[name].append(frames)
        truths.append(large)
    truth = np.stack(truths)
    print(f"ground truth, {n} seen clips of {sw.CLIP_FRAMES} frames, PSNR at {up.output_size} against the exact render:")
    for name, frames in drawn.items():
        print(f"  {name}: {psnr(np.stack(frames), truth):.2f} dB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upsampler", default=None, help="a TokenUpsampler folder (default: untrained, from the tokenizer)")
    ap.add_argument("--n", type=int, default=6, help="sampled clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--truth", type=int, default=16, help="ground-truth clips")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    base = load_pipeline()
    up = (TokenUpsampler.from_pretrained(args.upsampler) if args.upsampler
          else TokenUpsampler.from_tokenizer(base.vqvae)).eval()
    pipe = PhenakiPipeline(**{k: v for k, v in base.components.items() if k != "upsampler"}, upsampler=up)
    pipe.set_progress_bar_config(disable=True)
    size = up.output_size
    prompts = clip_prompts(np.random.default_rng(args.seed), args.n)
    print(f"upsampler: {args.upsampler or 'untrained (from the tokenizer)'}; {args.n} clips + 1 continued video; "
          f"drawn at {size}")

    rows = []
    for i, prompt in enumerate(prompts + [prompts[0]]):
        frames_n = 11 if i < len(prompts) else 17
        kw = dict(num_frames=frames_n, generator=torch.Generator().manual_seed(args.seed + i))
        small = pipe(prompt, output_type="np", **kw).frames[0]
        small = (small * 255).round().astype(np.uint8)
        kw["generator"] = torch.Generator().manual_seed(args.seed + i)
        from_tokens = (pipe(prompt, output_type="np", height=size, **kw).frames[0] * 255).round().astype(np.uint8)
        retokenized = pipe.redraw(small, size)
        bicubic = to_frames(upscale_video(torch.from_numpy(small).permute(3, 0, 1, 2)[None].float() / 127.5 - 1,
                                          size, "bicubic"))[0]
        round_trip = pipe.decode_tokens(pipe.encode_frames(small[:11]))[0]
        rows.append(dict(frames=frames_n, retok=psnr(retokenized, from_tokens), bicubic=psnr(bicubic, from_tokens),
                         trip=psnr(round_trip, small[:11])))
        r = rows[-1]
        print(f"{frames_n:3d} frames  re-tokenized vs tokens {r['retok']:6.2f} dB   bicubic-64 vs tokens "
              f"{r['bicubic']:6.2f} dB   tokenizer round trip at 64 {r['trip']:6.2f} dB   ({prompt})")
    clips = [r for r in rows if r["frames"] == 11]
    for name, key in (("re-tokenized redraw vs redraw from the sampled tokens", "retok"),
                      ("bicubic upscale of the 64-px frames vs redraw from the sampled tokens", "bicubic"),
                      ("tokenizer round trip of the 64-px frames, at 64", "trip")):
        values = [r[key] for r in clips]
        print(f"{name}: mean {statistics.mean(values):.2f} dB, median {statistics.median(values):.2f}, "
              f"worst {min(values):.2f} over {len(clips)} clips; the 17-frame video: {rows[-1][key]:.2f} dB")
    ground_truth(pipe, args.truth, args.seed)


if __name__ == "__main__":
    main()
