"""How far a redraw from re-tokenized frames is from the redraw from the sampled tokens, at 256.

    python bench/bench_redraw.py [--upsampler FOLDER] [--n 6] [--seed 0]

The studio keeps a take's 64-pixel frames, not its tokens, so an export at a size the model
draws (`PhenakiPipeline.redraw`) tokenizes those frames again, clip by clip, and draws the
new tokens. The story engine and the pipeline's own `height=` draw the tokens that were
sampled. This measures the gap between the two: sampled clips of the default model (the
evaluation's seen prompts), one clip each and one continued video (17 frames: two sampled
clips, which the redraw cuts into chunks of 11 and 6, not where the clips began), each drawn at
the upsampler's size both ways; PSNR of one against the other. For scale, the same against a
bicubic upscale of the 64-pixel frames, and the tokenizer's own round trip at 64.

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
from phenaki_core.eval.evaluate import clip_prompts
from phenaki_core.eval.tokenizer_eval import psnr
from phenaki_core.models.upsampler import TokenUpsampler, to_frames, upscale_video
from phenaki_core.pipelines import PhenakiPipeline, load_pipeline


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upsampler", default=None, help="a TokenUpsampler folder (default: untrained, from the tokenizer)")
    ap.add_argument("--n", type=int, default=6, help="sampled clips")
    ap.add_argument("--seed", type=int, default=0)
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


if __name__ == "__main__":
    main()
