"""The `phenaki` command: generate, evaluate, and the training commands.

Building the parser imports no torch: `phenaki --help` and each command's `--help` answer
at once. A training command's module is imported only when that command is named, and
everything that can be checked before the model loads is checked first: each mistake is
one `error:` line and exit status 2, never a traceback, never after a render.
"""
import argparse
import importlib
import importlib.util
import math
import os
import sys
from pathlib import Path

from .pipelines.defaults import DEFAULT_GUIDANCE, DEFAULT_STEPS
from .runtime import DEVICES, DTYPES

# Commands whose modules are heavy (torch, accelerate): name, module, one-line help. Each
# module has add_arguments(parser) and main(args); one that is not installed is not listed.
LAZY_COMMANDS = (
    ("train-tokenizer", "phenaki_core.training.train_tokenizer", "train C-ViViT, the video tokenizer"),
    ("train-transformer", "phenaki_core.training.train_transformer",
     "train the MaskGIT transformer on a frozen tokenizer"),
    ("tokenize", "phenaki_core.training.tokenize", "turn a dataset into token shards for the transformer"),
    ("train-upsampler", "phenaki_core.training.train_upsampler",
     "train a decoder that draws a tokenizer's tokens at a larger size"),
)
MAX_STEPS = 64
MAX_GUIDANCE = 20.0
SEED_LIMIT = 2**31


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("phenaki-studio")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """--version, reading the installed version only when asked (importlib.metadata costs 0.1 s)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"phenaki {_version()}")  # on stdout, as argparse's own version action prints
        parser.exit()


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _command_named(argv: list[str]) -> str | None:
    """The subcommand on the command line: the first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    argv = sys.argv[1:] if argv is None else argv
    from .io import RESAMPLE_CHOICES, VIDEO_SUFFIXES
    from .model_folder import DEFAULT_MODEL
    from .story.timeline import MAX_SEGMENT_FRAMES

    parser = argparse.ArgumentParser(prog="phenaki", description="Phenaki: text to video of any length.",
                                     formatter_class=_Formatter)
    parser.add_argument("--version", action=_VersionAction, help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = _command_named(argv)
    parser.commands = sub.choices  # name -> its parser, so errors name the command

    p = sub.add_parser("generate", formatter_class=_Formatter,
                       help="render prompts (a story) to .mp4, .gif, .npy or .png",
                       description="Render one or more prompts as one continuous video, with a sidecar "
                                   "<out>.story.json that renders the same frames again.")
    p.add_argument("--prompt", action="append", metavar="TEXT",
                   help="a segment's prompt; repeat for a story, one per segment, in order")
    p.add_argument("--story", default=None, metavar="SIDECAR", help="a .story.json sidecar to render again exactly")
    p.add_argument("--init", default=None, metavar="FILE", help="an image to animate or a video to continue")
    p.add_argument("--frames", type=int, default=None,
                   help=f"frames per segment, 1 to {MAX_SEGMENT_FRAMES} (default: one clip of the model)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first segment (segment i: seed + i), below 2^31")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"MaskGIT sampling steps, 1 to {MAX_STEPS}")
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE,
                   help=f"classifier-free guidance scale, 0 to {MAX_GUIDANCE:g}")
    p.add_argument("--model", default=None, metavar="FOLDER", help=f"pipeline folder (default: {DEFAULT_MODEL.name}, shipped)")
    p.add_argument("--out", default="outputs/story.mp4", metavar="FILE",
                   help=f"output file; its suffix picks the format: {', '.join(VIDEO_SUFFIXES)}")
    p.add_argument("--fps", type=float, default=None, help="frame rate of the file (default: the model's, 8)")
    p.add_argument("--size", type=int, default=None,
                   help="frame side in pixels: drawn from the story's tokens by the model's learned decoder when "
                        "the model draws that size, else its frames upscaled by --resample")
    p.add_argument("--resample", default=None, choices=RESAMPLE_CHOICES + ("bicubic",),
                   help="upscaling filter: nearest is pixel-crisp, lanczos smooth (default: nearest); giving it "
                        "upscales even where the model could draw --size itself")
    p.add_argument("--device", default="auto", help=f"where to run: {', '.join(DEVICES)} or cuda:N; auto takes a CUDA GPU "
                                                    "when there is one")
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="weights' dtype; auto: float32 on the CPU, bfloat16 on a GPU that has it")
    p.add_argument("--bf16", action="store_true", help="the same as --dtype bfloat16")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress and no sidecar path on stderr")
    p.set_defaults(run=_generate, check=_check_generate)

    p = sub.add_parser("evaluate", formatter_class=_Formatter,
                       help="score a model on Shapes World; writes a Markdown report")
    p.add_argument("--model", default=None, metavar="FOLDER", help="pipeline folder (default: the shipped model)")
    p.add_argument("--out", default="outputs/eval", metavar="FOLDER", help="where the report and samples go")
    p.add_argument("--n", type=int, default=64, help="clips per set")
    p.add_argument("--seed", type=int, default=0, help="seed of the prompts and the sampling")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="MaskGIT sampling steps")
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, help="classifier-free guidance scale")
    p.add_argument("--video-only-model", default=None, help="Table 2: the same transformer trained on video only")
    p.add_argument("--per-frame-tokenizer", default=None, help="Table 3: per-frame baseline tokenizer folder")
    p.add_argument("--cvivit-baseline", default=None, help="Table 3: C-ViViT trained on the same budget")
    p.add_argument("--device", default="auto", help=f"where to run: {', '.join(DEVICES)} or cuda:N")
    p.set_defaults(run=_evaluate, check=_check_evaluate)

    for name, module, help_text in LAZY_COMMANDS:
        if not _module_exists(module):
            continue
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_Formatter)
        if name == named:  # only the command that runs pays for its imports
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(run=mod.main, check=None)
    return parser


# -- checks before anything loads ---------------------------------------------------------------
def _check_out(parser, out: str):
    from .io import VIDEO_SUFFIXES

    path = Path(out)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        parser.error(f"--out {out}: the file name must end in one of {', '.join(VIDEO_SUFFIXES)}")
    if path.is_dir():
        parser.error(f"--out {out} is a folder; give a file name")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the folder is made: its nearest existing parent must allow it
        folder = folder.parent
    if not folder.is_dir():
        parser.error(f"--out {out}: {folder} is not a folder")
    try:  # the one sure test is to write: permissions, read-only mounts and /proc all answer it
        probe = folder / f".phenaki-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        parser.error(f"--out {out}: cannot write in {folder} ({e.strerror or e})")
    if path.exists() and not os.access(path, os.W_OK):
        parser.error(f"--out {out} exists and is not writable")


def _check_model(parser, model):
    from .model_folder import ModelLoadError, check_model_folder

    try:
        check_model_folder(model)
    except ModelLoadError as e:
        parser.error(f"--model: {e}")


def _check_generate(parser, args):
    from .story.timeline import MAX_PROMPT_CHARS, MAX_SEGMENT_FRAMES

    if args.story and args.prompt:
        parser.error("give either --prompt or --story, not both")
    if not args.story and not args.prompt:
        parser.error("give at least one --prompt, or --story story.json")
    if args.story and not Path(args.story).is_file():
        parser.error(f"--story {args.story}: no such file")
    if args.init and not Path(args.init).is_file():
        parser.error(f"--init {args.init}: no such file")
    for i, prompt in enumerate(args.prompt or [], 1):
        if not prompt.strip():
            parser.error(f"--prompt {i} is empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            parser.error(f"--prompt {i} is {len(prompt)} characters; at most {MAX_PROMPT_CHARS}")
    if args.frames is not None and not 1 <= args.frames <= MAX_SEGMENT_FRAMES:
        parser.error(f"--frames must be 1 to {MAX_SEGMENT_FRAMES}, got {args.frames}")
    if not 0 <= args.seed or args.seed + len(args.prompt or [None]) > SEED_LIMIT:
        parser.error(f"--seed must be from 0 to {SEED_LIMIT - len(args.prompt or [None])} "
                     f"(one seed a segment, each below 2^31), got {args.seed}")
    if not 1 <= args.steps <= MAX_STEPS:
        parser.error(f"--steps must be 1 to {MAX_STEPS}, got {args.steps}")
    if not math.isfinite(args.guidance) or not 0 <= args.guidance <= MAX_GUIDANCE:
        parser.error(f"--guidance must be a finite number from 0 to {MAX_GUIDANCE:g}, got {args.guidance}")
    if args.fps is not None and (not math.isfinite(args.fps) or args.fps <= 0 or args.fps > 240):
        parser.error(f"--fps must be a number above 0 and at most 240, got {args.fps}")
    if args.size is not None:
        from .io import MAX_SIZE

        if not 1 <= args.size <= MAX_SIZE:
            parser.error(f"--size must be 1 to {MAX_SIZE} pixels, got {args.size}")
    _check_out(parser, args.out)
    _check_model(parser, args.model)
    if args.bf16:
        if args.dtype not in ("auto", "bfloat16"):
            parser.error("--bf16 and --dtype disagree; give one")
        args.dtype = "bfloat16"
    _check_device(parser, args)


def _check_evaluate(parser, args):
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    if not 1 <= args.steps <= MAX_STEPS:
        parser.error(f"--steps must be 1 to {MAX_STEPS}, got {args.steps}")
    if not math.isfinite(args.guidance):
        parser.error(f"--guidance must be a finite number, got {args.guidance}")
    _check_model(parser, args.model)
    _check_device(parser, args)


def _check_device(parser, args):
    from .runtime import resolve_device

    try:
        args.device = resolve_device(args.device)
    except ValueError as e:
        parser.error(str(e))


# -- the commands ---------------------------------------------------------------------------------
class _Progress:
    """A bar over the whole story, in sampling steps (frames and clips done, elapsed, ETA),
    on stderr when it is a terminal; else one line per segment; nothing when quiet."""

    def __init__(self, pipe, story, quiet: bool, init=None):
        self.quiet, self.n = quiet, len(story.segments)
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            steps = pipe.scheduler.num_timesteps(story.num_inference_steps)
            clips = sum(pipe.clips_needed(s.frames, story.context_frames,
                                          continues=s.transition == "continue" and (i > 0 or init is not None))
                        for i, s in enumerate(story.segments))
            self.bar = tqdm(total=clips * steps, unit="step", file=sys.stderr, dynamic_ncols=True,
                            desc=f"segment 1/{self.n}", bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                                                 "steps [{elapsed}<{remaining}]")

    def on_step(self, segment, clip, clips, step, steps):
        if self.bar is not None:
            self.bar.set_description_str(f"segment {segment + 1}/{self.n}, clip {clip + 1}/{clips}", refresh=False)
            self.bar.update()

    def on_segment_done(self, i, rendered):
        if self.bar is None and not self.quiet:
            print(f"segment {i + 1}/{self.n}: {len(rendered.frames)} frames", file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _generate(parser, args):
    from dataclasses import replace

    from .io import export_story, load_init_frames, load_sidecar
    from .pipelines import load_pipeline
    from .runtime import keep_freed_memory, resolve_dtype
    from .story import RenderCancelled, Segment, Story, StoryError, StoryRenderer

    export = {}
    if args.story:  # read before the model loads: a bad sidecar costs nothing
        try:
            story, init, export = load_sidecar(args.story)
        except (ValueError, OSError) as e:
            parser.error(f"--story {args.story}: {e}")
    keep_freed_memory()
    try:
        pipe = load_pipeline(args.model, device=args.device, dtype=resolve_dtype(args.dtype, args.device))
    except ValueError as e:  # ModelLoadError included: a folder that passed the quick check yet does not load
        parser.error(str(e))
    model, revision = pipe.model_name, pipe.revision
    try:
        if args.story:
            if story.model_revision not in (None, revision):
                print(f"warning: {args.story} was rendered with {story.model} (revision {story.model_revision}); "
                      f"this is {model} (revision {revision}), so the frames will differ", file=sys.stderr)
        else:
            for i, prompt in enumerate(args.prompt, 1):  # the text encoder owns the limit: ask it
                if pipe.prompt_tokens(prompt) > pipe.max_prompt_tokens:
                    parser.error(f"--prompt {i} is {pipe.prompt_tokens(prompt)} tokens; the text encoder reads "
                                 f"{pipe.max_prompt_tokens}, so the rest would be ignored: shorten it")
            frames = args.frames or pipe.clip_frames
            story = Story([Segment(p, frames, args.seed + i, "continue") for i, p in enumerate(args.prompt)],
                          num_inference_steps=args.steps, guidance_scale=args.guidance)
            init = load_init_frames(args.init, pipe.frame_size, story.context_frames) if args.init else None
        story = replace(story, model=model, model_revision=revision)  # what this render used
        story.validate(pipe.clip_frames, pipe.temporal_patch_size)
    except (StoryError, ValueError, OSError) as e:
        parser.error(str(e))
    renderer = StoryRenderer(pipe, story, init)
    progress = _Progress(pipe, story, args.quiet, init)
    try:
        renderer.render(on_step=progress.on_step, on_segment_done=progress.on_segment_done)
    except (KeyboardInterrupt, RenderCancelled):
        progress.close()
        print("error: interrupted; nothing was written", file=sys.stderr)
        sys.exit(130)
    progress.close()
    # A re-rendered sidecar keeps its export settings unless the command line overrides them.
    size, resample, learned = _export_size(pipe, args, export)
    if size not in (None, pipe.frame_size) and not args.quiet:
        print(f"size {size}: drawn by the model's learned decoder from the story's tokens" if learned else
              f"size {size}: the model's {pipe.frame_size}-pixel frames upscaled ({resample})", file=sys.stderr)
    frames = renderer.frames(size) if learned else renderer.frames()
    video, sidecar = export_story(frames, story, args.out, fps=args.fps or export.get("fps") or pipe.fps,
                                  size=size, resample=resample, init_frames=init, learned=learned)
    print(video)
    if not args.quiet:
        print(sidecar, file=sys.stderr)


def _export_size(pipe, args, export: dict) -> tuple[int | None, str, bool]:
    """(size, plain filter, whether the model draws it): the model's learned decoder draws a
    size it draws itself (pipe.drawn_sizes) unless a plain filter was asked for, by --resample
    or by a sidecar whose export was upscaled (every sidecar written before the decoder was:
    re-rendering reproduces its frames; --size on the command line asks anew). The filter is
    also what the sidecar keeps for a model without the decoder."""
    size = args.size or export.get("size")
    resample = args.resample or export.get("resample") or "nearest"
    asked_plain = args.resample is not None or (args.size is None and not export.get("learned"))
    learned = size is not None and size != pipe.frame_size and size in pipe.drawn_sizes and not asked_plain
    return size, resample, learned


def _evaluate(parser, args):
    from .eval.evaluate import evaluate
    from .models import CViViT
    from .pipelines import load_pipeline

    pipe = load_pipeline(args.model, device=args.device)
    video_only = load_pipeline(args.video_only_model, device=args.device) if args.video_only_model else None
    per_frame = CViViT.from_pretrained(args.per_frame_tokenizer) if args.per_frame_tokenizer else None
    baseline = CViViT.from_pretrained(args.cvivit_baseline) if args.cvivit_baseline else None
    evaluate(pipe, args.out, n=args.n, seed=args.seed, steps=args.steps, guidance=args.guidance,
             video_only_pipe=video_only, per_frame_tokenizer=per_frame, cvivit_baseline=baseline)
    print(Path(args.out) / "report.md")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    sub = parser.commands[args.command]
    if args.check is not None:
        args.check(sub, args)
        args.run(sub, args)
    else:  # a training command: its module parses and runs itself
        from .runtime import keep_freed_memory

        keep_freed_memory()
        args.run(args)


if __name__ == "__main__":
    main()
