"""The token upsampler against plain upscaling of the 64-pixel decode: quality and cost, one run.

    python bench/bench_upsampler.py [--upsampler FOLDER] [--n 48] [--stories 6] [--out docs/bench_upsampler.md]

1. Reconstructions of ground-truth Shapes World clips (seen and held-out compositions) and
   outlined images, tokenized at 64 by the shipped tokenizer: PSNR at 256 against the exact
   256-pixel render of the same scene, for the learned decoder and for nearest, bicubic and
   Lanczos (PIL) upscales of the 64-pixel decode; and the checker on each, at 64 and at 256.
2. Sampled clips (the evaluation's seen and held-out prompts, and stories planned as the
   evaluation plans them): the checker on the shipped 64-pixel frames and on the same tokens
   drawn at 256 by the learned decoder.
3. Cost: decoding one clip at 64 and at 256, and one 11-frame clip end to end (sampling and
   decoding) at 64 and at 256, in this run, with their ratios.
4. Side-by-side strips (bicubic upscale of the 64-pixel decode | learned 256 | exact 256)
   written to docs/figures/upsampler-*.png.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from phenaki_core.data import shapes_world as sw
from phenaki_core.eval.checker import (
    ATTRIBUTES,
    check_clip,
    check_continuity,
    summarize,
)
from phenaki_core.eval.evaluate import CONTEXT_FRAMES, StoryPlanner, clip_prompts
from phenaki_core.eval.tokenizer_eval import psnr, to_float, to_uint8
from phenaki_core.models.upsampler import TokenUpsampler, redraw_segment, to_frames
from phenaki_core.pipelines import load_pipeline
from phenaki_core.pipelines.default import DEFAULT_MODEL
from phenaki_core.story import Segment, Story, render_segment
from phenaki_core.training.train_upsampler import render_pair

UPSCALERS = {"nearest": Image.NEAREST, "bicubic": Image.BICUBIC, "Lanczos": Image.LANCZOS}


def upscale(frames: np.ndarray, size: int, method: str) -> np.ndarray:
    """uint8 (..., H, W, 3) -> (..., size, size, 3) with PIL's `method`."""
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = np.stack([np.asarray(Image.fromarray(f).resize((size, size), UPSCALERS[method])) for f in flat])
    return out.reshape(*frames.shape[:-3], size, size, 3)


@torch.no_grad()
def draw_both(pipe, up, tokens: torch.Tensor, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(the shipped 64-pixel frames, the learned 256-pixel frames) of the same tokens."""
    small, large = [], []
    for i in range(0, len(tokens), batch):
        t = tokens[i: i + batch]
        small.append(to_uint8(pipe.vqvae.detokenize(t)))
        large.append(to_uint8(up.detokenize(t)))
    return np.concatenate(small), np.concatenate(large)


def soft_share(drawn: np.ndarray, truth: np.ndarray, low: float = 0.15, high: float = 0.85) -> float:
    """How soft the edges are: pixels drawn as a blend of the object's and the background's colour
    (15% to 85% of the way from one to the other), per object pixel of the exact render. Shapes
    World frames hold two colours, so the exact render scores 0; a 4-pixel-wide soft edge scores
    about 4 x the outline's length over the area."""
    soft = total = 0
    for d, t in zip(drawn.reshape(-1, *drawn.shape[-3:]).astype(np.float32),
                    truth.reshape(-1, *truth.shape[-3:]).astype(np.float32)):
        background = np.median(np.concatenate([t[0], t[-1], t[:, 0], t[:, -1]]), 0)
        is_object = np.abs(t - background).sum(-1) > 30
        if not is_object.any():
            continue
        towards = np.median(t[is_object], 0) - background
        share = ((d - background) @ towards) / (towards @ towards)
        soft += int(((share > low) & (share < high)).sum())
        total += int(is_object.sum())
    return soft / max(total, 1)


def score(clips, prompts) -> dict:
    return summarize([check_clip(c, p) for c, p in zip(clips, prompts)])


# -- 1. reconstructions ----------------------------------------------------------------------
def reconstructions(pipe, up, n_videos: int, n_images: int, seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng([seed, 27])
    sets = {"seen": [sw.sample_video_scene(rng, split="train") for _ in range(n_videos)],
            "held-out": [sw.sample_video_scene(rng, split="heldout") for _ in range(n_videos)]}
    outlined = []
    while len(outlined) < n_images:
        s = sw.sample_image_scene(rng)
        if s.style == "outlined":
            outlined.append(s)
    sets["outlined images"] = outlined
    rows, shown = {}, {}
    for name, scenes in sets.items():
        frames = 1 if name == "outlined images" else sw.CLIP_FRAMES
        pairs = [render_pair(s, frames, 64, up.config.scale) for s in scenes]
        truth64, truth = np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])
        with torch.no_grad():
            tokens = torch.cat([pipe.vqvae.tokenize(to_float(truth64[i: i + 8])) for i in range(0, len(truth64), 8)])
        decoded, learned = draw_both(pipe, up, tokens)
        prompts = [sw.caption(s) for s in scenes]
        row = {"n": len(scenes), "psnr 64 (decode vs 64 render)": psnr(decoded, truth64),
               "psnr learned": psnr(learned, truth), "soft learned": soft_share(learned, truth)}
        upscaled = {}
        for method in UPSCALERS:
            upscaled[method] = upscale(decoded, truth.shape[-2], method)
            row[f"psnr {method}"] = psnr(upscaled[method], truth)
            row[f"soft {method}"] = soft_share(upscaled[method], truth)
        # What upscaling alone can reach: the exact 64-pixel render (no tokenizer error) upscaled.
        row["psnr exact 64 bicubic"] = psnr(upscale(truth64, truth.shape[-2], "bicubic"), truth)
        row["checker 64"] = score(decoded, prompts)
        row["checker 256 learned"] = score(learned, prompts)
        row["checker 256 bicubic"] = score(upscaled["bicubic"], prompts)
        row["checker 256 exact render"] = score(truth, prompts)
        rows[name] = row
        shown[name] = (upscaled["bicubic"][:3], learned[:3], truth[:3])
    return rows, shown


# -- 2. sampled clips ------------------------------------------------------------------------
def sampled(pipe, up, n: int, n_stories: int, seed: int, steps: int) -> tuple[dict, dict]:
    rows, shown = {}, {}
    for name, split, key in (("seen", "train", 0), ("held-out", "heldout", 1)):
        prompts = clip_prompts(np.random.default_rng([seed, key]), n, split)
        tokens = []
        for start in range(0, n, 16):
            generator = torch.Generator().manual_seed(seed + start)
            tokens.append(pipe.sample_tokens(prompts[start: start + 16], None, steps, generator=generator))
        small, large = draw_both(pipe, up, torch.cat(tokens))
        rows[name] = {"checker 64": score(small, prompts), "checker 256 learned": score(large, prompts)}
        shown[name] = (upscale(small[:3], large.shape[-2], "bicubic"), large[:3], None)
    rows["stories"], shown["stories"] = stories(pipe, up, n_stories, seed, steps)
    return rows, shown


def story_frames_at(up, vqvae, rendered, had_context: bool) -> np.ndarray:
    """A rendered segment's frames drawn again at 256 from its tokens. Every clip render_segment
    makes continues the last CONTEXT_FRAMES frames (trimmed to 1 + k * tubelet), except a first
    clip that continues nothing."""
    tp = vqvae.config.temporal_patch_size
    tail = 1 + (CONTEXT_FRAMES - 1) // tp * tp
    skips = [0 if i == 0 and not had_context else tail for i in range(len(rendered.tokens))]
    return redraw_segment(vqvae, rendered.tokens, skips, rendered.segment.frames, up.output_size, up)


def stories(pipe, up, n_stories: int, seed: int, steps: int) -> tuple[dict, tuple]:
    """The evaluation's stories (evaluate._stories): at every switch, continuity and the new
    frames on prompt, judged on the 64-pixel frames and on the same tokens drawn at 256."""
    rng = np.random.default_rng([seed, 8])
    segment_frames = pipe.clip_frames - CONTEXT_FRAMES
    judged = {"64": ([], []), "256": ([], [])}
    first_story = None
    for _ in range(n_stories):
        planner = StoryPlanner(rng, int(rng.integers(4, 9)), segment_frames)
        story = Story([], num_inference_steps=steps, context_frames=CONTEXT_FRAMES)
        rendered, frames = [], None
        for i in range(planner.n_segments):
            prompt = planner.next_prompt(None if frames is None else frames[-1])
            story.segments.append(Segment(prompt, segment_frames, int(rng.integers(2**31)), "continue"))
            rendered.append(render_segment(pipe, story, i, frames))
            frames = np.concatenate([r.frames for r in rendered])
        large = [story_frames_at(up, pipe.vqvae, r, i > 0) for i, r in enumerate(rendered)]
        for size, segs in (("64", [r.frames for r in rendered]), ("256", large)):
            for before, after, prompt in zip(segs, segs[1:], planner.prompts[1:]):
                judged[size][0].append(check_continuity(before[-1], after[0]))
                judged[size][1].append(check_clip(after, prompt))
        if first_story is None:
            small = np.concatenate([r.frames for r in rendered])
            first_story = (upscale(small[None, ::4], large[0].shape[-2], "bicubic"),
                           np.concatenate(large)[None, ::4], None)
    row = {}
    for size, (continuous, results) in judged.items():
        both = [c and r.follows for c, r in zip(continuous, results)]
        row[f"checker {size}" if size == "64" else "checker 256 learned"] = {
            **summarize(results), "continuous": float(np.mean(continuous)), "both": float(np.mean(both))}
    return row, first_story


# -- 3. cost ---------------------------------------------------------------------------------
def side_by_side(fast, slow, repeats: int) -> tuple[float, float, float]:
    """Medians of `fast` and `slow` timed in alternating pairs (the order flips every pair, so
    a busy spell on the machine falls on both), and the median of the pairs' ratios."""
    fast(), slow()  # warm-up
    pairs = []
    for i in range(repeats):
        times = {}
        for name, fn in ((("fast", fast), ("slow", slow)) if i % 2 == 0 else (("slow", slow), ("fast", fast))):
            t0 = time.perf_counter()
            fn()
            times[name] = time.perf_counter() - t0
        pairs.append((times["fast"], times["slow"]))
    fast_t, slow_t = (statistics.median(t) for t in zip(*pairs))
    return fast_t, slow_t, statistics.median(s / f for f, s in pairs)


@torch.no_grad()
def cost(pipe, up, steps: int, repeats: int) -> dict:
    generator = lambda: torch.Generator().manual_seed(0)
    tokens = pipe.sample_tokens(["a red circle moves right"], None, steps, generator=generator())
    decode64, decode256, decode_ratio = side_by_side(lambda: pipe.vqvae.detokenize(tokens),
                                                     lambda: up.detokenize(tokens), repeats)
    clip = lambda draw: to_frames(draw(pipe.sample_tokens(["a red circle moves right"], None, steps,
                                                          generator=generator())))
    clip64, clip256, clip_ratio = side_by_side(lambda: clip(pipe.vqvae.detokenize), lambda: clip(up.detokenize),
                                               repeats)
    return {"decode 64": decode64, "decode 256": decode256, "decode ratio": decode_ratio,
            "clip 64": clip64, "clip 256": clip256, "clip ratio": clip_ratio,
            "threads": torch.get_num_threads(), "repeats": repeats}


# -- 4. strips -------------------------------------------------------------------------------
def crop_box(frame: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of a size x size window centred on what differs from the frame's corner colour."""
    ys, xs = np.nonzero(np.abs(frame.astype(int) - frame[0, 0].astype(int)).sum(-1) > 30)
    cy, cx = (int(ys.mean()), int(xs.mean())) if len(ys) else (frame.shape[0] // 2, frame.shape[1] // 2)
    clip = lambda c: min(max(c - size // 2, 0), frame.shape[0] - size)
    return clip(cy), clip(cx)


def strip_figure(shown: dict, path: Path, frames=(0, 10), rows_per_set: int = 2, crop: int = 128):
    """Per set, a row per clip: at each chosen frame, a crop around the object at full size as
    bicubic | learned | exact (when known), side by side; white gaps between groups."""
    rows = []
    for bicubic, learned, truth in shown.values():
        for i in range(min(rows_per_set, len(learned))):
            cells = []
            for f in [f for f in frames if f < learned.shape[1]] or [0]:
                group = [bicubic[i, f], learned[i, f]] + ([truth[i, f]] if truth is not None else [])
                y, x = crop_box(group[-1], crop)
                group = [g[y: y + crop, x: x + crop] for g in group]
                cells.append(np.concatenate([np.pad(g, ((0, 0), (0, 4), (0, 0)), constant_values=255) for g in group], 1))
            row = np.concatenate([np.pad(c, ((0, 0), (0, 16), (0, 0)), constant_values=255) for c in cells], 1)
            rows.append(np.pad(row, ((0, 8), (0, 0), (0, 0)), constant_values=255))
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, optimize=True)
    return path


# -- report ----------------------------------------------------------------------------------
def pct(x) -> str:
    return f"{100 * x:.1f}%"


def checker_cells(s: dict) -> str:
    return " | ".join([pct(s["adherence"])] + [pct(s[a]) for a in ATTRIBUTES])


def report(recon: dict, samples: dict, costs: dict, figures: dict, args) -> str:
    lines = ["# The token upsampler, measured", "",
             f"- upsampler: `{os.path.relpath(args.upsampler, ROOT)}`; tokenizer and transformer: the shipped model's; seed {args.seed}",
             (f"- reconstructions: {args.n} clips per video set, {args.n // 2} outlined images; sampled: {args.n} prompts "
              f"per set, {args.stories} stories; {args.steps} sampling steps"), "",
             "## Reconstructions: PSNR at 256 against the exact 256-pixel render", "",
             ("| set | n | learned | nearest | bicubic | Lanczos | learned - best upscale | (64 decode vs 64 render) "
              "| (bicubic of the exact 64 render) |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in recon.items():
        best = max(r[f"psnr {m}"] for m in UPSCALERS)
        lines.append(f"| {name} | {r['n']} | {r['psnr learned']:.2f} dB | {r['psnr nearest']:.2f} | {r['psnr bicubic']:.2f} | "
                     f"{r['psnr Lanczos']:.2f} | {r['psnr learned'] - best:+.2f} dB | {r['psnr 64 (decode vs 64 render)']:.2f} | "
                     f"{r['psnr exact 64 bicubic']:.2f} |")
    lines += ["", "## Reconstructions: how soft the edges are", "",
              "Pixels drawn as a blend of object and background colour (15% to 85% of the way), per object pixel "
              "of the exact render; the exact render scores 0.", "",
              "| set | learned | nearest | bicubic | Lanczos |", "|---|---|---|---|---|"]
    for name, r in recon.items():
        lines.append(f"| {name} | {r['soft learned']:.3f} | " + " | ".join(f"{r[f'soft {m}']:.3f}" for m in UPSCALERS) + " |")
    lines += ["", "## The checker on reconstructions", "",
              "| set | drawn as | follows | " + " | ".join(ATTRIBUTES) + " |", "|---|---|---|" + "---|" * len(ATTRIBUTES)]
    for name, r in recon.items():
        for key in ("checker 64", "checker 256 learned", "checker 256 bicubic", "checker 256 exact render"):
            lines.append(f"| {name} | {key.removeprefix('checker ')} | {checker_cells(r[key])} |")
    lines += ["", "## The checker on sampled clips (the same tokens drawn both ways)", "",
              "| set | drawn as | follows | " + " | ".join(ATTRIBUTES) + " | continuous | continuous and on prompt |",
              "|---|---|---|" + "---|" * len(ATTRIBUTES) + "---|---|"]
    for name, r in samples.items():
        for key in ("checker 64", "checker 256 learned"):
            s = r[key]
            extra = f"{pct(s['continuous'])} | {pct(s['both'])}" if "continuous" in s else " | "
            lines.append(f"| {name} | {key.removeprefix('checker ')} | {checker_cells(s)} | {extra} |")
    c = costs
    lines += ["", f"## Cost (CPU, {c['threads']} threads, {c['repeats']} alternating pairs, medians; one clip of 11 frames)", "",
              "| | at 64 | at 256 | ratio |", "|---|---|---|---|",
              f"| decode | {c['decode 64'] * 1000:.0f} ms | {c['decode 256'] * 1000:.0f} ms | {c['decode ratio']:.2f}x |",
              f"| sample + decode | {c['clip 64']:.2f} s | {c['clip 256']:.2f} s | {c['clip ratio']:.3f}x |",
              "", "## Figures", ""]
    lines += [f"- `{os.path.relpath(p, ROOT)}`: {what}" for what, p in figures.items()]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upsampler", default=str(DEFAULT_MODEL / "upsampler"))
    p.add_argument("--n", type=int, default=48)
    p.add_argument("--stories", type=int, default=6)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "docs" / "bench_upsampler.md"))
    p.add_argument("--figures", default=str(ROOT / "docs" / "figures"))
    p.add_argument("--skip-cost", action="store_true")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    pipe = load_pipeline()
    up = TokenUpsampler.from_pretrained(args.upsampler).eval()
    if not up.matches(pipe.vqvae):
        raise SystemExit(f"{args.upsampler} does not draw the shipped tokenizer's tokens")
    t0 = time.perf_counter()
    costs = None if args.skip_cost else cost(pipe, up, args.steps, args.repeats)
    if costs:
        print(f"cost: decode {costs['decode 64'] * 1000:.0f} ms at 64, {costs['decode 256'] * 1000:.0f} ms at 256 "
              f"({costs['decode ratio']:.2f}x); one clip end to end {costs['clip 64']:.2f} s at 64, "
              f"{costs['clip 256']:.2f} s at 256 ({costs['clip ratio']:.3f}x)", flush=True)
    recon, shown_recon = reconstructions(pipe, up, args.n, args.n // 2, args.seed)
    for name, r in recon.items():
        print(f"{name}: PSNR at 256 learned {r['psnr learned']:.2f}, " + ", ".join(
            f"{m} {r[f'psnr {m}']:.2f}" for m in UPSCALERS) + f"; soft edges learned {r['soft learned']:.3f}, "
            f"bicubic {r['soft bicubic']:.3f}; checker 64 {pct(r['checker 64']['adherence'])}, "
            f"256 learned {pct(r['checker 256 learned']['adherence'])}", flush=True)
    samples, shown_samples = sampled(pipe, up, args.n, args.stories, args.seed, args.steps)
    for name, r in samples.items():
        print(f"sampled {name}: checker 64 {pct(r['checker 64']['adherence'])}, "
              f"256 learned {pct(r['checker 256 learned']['adherence'])}", flush=True)
    figures = {
        "reconstructions (two rows each: seen, held-out, outlined images); frames 0 and 10, each as a 128-pixel crop "
        "around the object at 256: bicubic upscale of the 64-pixel decode | learned 256 | exact 256 render": strip_figure(shown_recon, Path(args.figures) / "upsampler-reconstructions.png"),
        "sampled clips (two rows each: seen, held-out; then one story, every 4th frame); frames 0 and 10 as 128-pixel "
            "crops at 256: bicubic upscale of the 64-pixel frame | learned 256":
            strip_figure(shown_samples, Path(args.figures) / "upsampler-samples.png"),
    }
    if costs is None:
        costs = {"decode 64": float("nan"), "decode 256": float("nan"), "decode ratio": float("nan"),
                 "clip 64": float("nan"), "clip 256": float("nan"), "clip ratio": float("nan"),
                 "threads": torch.get_num_threads(), "repeats": 0}
    Path(args.out).write_text(report(recon, samples, costs, figures, args), encoding="utf-8")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
