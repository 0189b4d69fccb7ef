"""The `phenaki` command: train-tokenizer, train-transformer, evaluate, generate."""
import argparse
import sys
from dataclasses import replace
from pathlib import Path


def _generate(args):
    import torch

    from .io import export_story, load_init_frames, load_sidecar
    from .pipelines import Segment, Story, StoryError, StoryRenderer, load_pipeline

    pipe = load_pipeline(args.model, device=args.device, dtype=torch.bfloat16 if args.bf16 else None)
    model, revision = Path(pipe.name_or_path).resolve().name, pipe.revision
    init, export = None, {}
    try:
        if args.story:
            story, init, export = load_sidecar(args.story)
            if story.model_revision not in (None, revision):
                print(f"warning: {args.story} was rendered with {story.model} (revision {story.model_revision}); "
                      f"this is {model} (revision {revision}), so the frames will differ", file=sys.stderr)
        else:
            if not args.prompt:
                raise StoryError("give at least one --prompt, or --story story.json")
            story = Story([Segment(p, args.frames, args.seed + i, "continue") for i, p in enumerate(args.prompt)],
                          num_inference_steps=args.steps, guidance_scale=args.guidance)
            if args.init:
                init = load_init_frames(args.init, pipe.frame_size, story.context_frames)
        story = replace(story, model=model, model_revision=revision)  # what this render used
        story.validate(pipe.clip_frames, pipe.vqvae.config.temporal_patch_size)
    except (ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    renderer = StoryRenderer(pipe, story, init)
    n = len(story.segments)
    renderer.render(on_segment_done=lambda i, r: print(f"segment {i + 1}/{n}: {len(r.frames)} frames", file=sys.stderr))
    # A re-rendered sidecar keeps its export settings unless the command line overrides them.
    video, sidecar = export_story(renderer.frames(), story, args.out, fps=args.fps or export.get("fps") or pipe.fps,
                                  size=args.size or export.get("size"),
                                  resample=args.resample or export.get("resample") or "nearest", init_frames=init)
    print(video)
    print(sidecar, file=sys.stderr)


def _evaluate(args):
    from .eval.evaluate import evaluate
    from .models import CViViT
    from .pipelines import load_pipeline

    pipe = load_pipeline(args.model)
    video_only = load_pipeline(args.video_only_model) if args.video_only_model else None
    per_frame = CViViT.from_pretrained(args.per_frame_tokenizer) if args.per_frame_tokenizer else None
    baseline = CViViT.from_pretrained(args.cvivit_baseline) if args.cvivit_baseline else None
    evaluate(pipe, args.out, n=args.n, seed=args.seed, steps=args.steps, guidance=args.guidance,
             video_only_pipe=video_only, per_frame_tokenizer=per_frame, cvivit_baseline=baseline)
    print(Path(args.out) / "report.md")


def main(argv=None):
    from .pipelines import DEFAULT_GUIDANCE
    from .runtime import keep_freed_memory
    from .training import train_tokenizer, train_transformer

    keep_freed_memory()

    parser = argparse.ArgumentParser(prog="phenaki", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train-tokenizer", help="train C-ViViT")
    train_tokenizer.add_arguments(p)
    p.set_defaults(run=train_tokenizer.main)

    p = sub.add_parser("train-transformer", help="train the MaskGIT transformer on a frozen tokenizer")
    train_transformer.add_arguments(p)
    p.set_defaults(run=train_transformer.main)

    p = sub.add_parser("evaluate", help="score a model on Shapes World; writes a Markdown report")
    p.add_argument("--model", default=None, help="pipeline folder (default: the shipped model)")
    p.add_argument("--out", default="outputs/eval")
    p.add_argument("--n", type=int, default=64, help="clips per set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--video-only-model", default=None, help="Table 2: the same transformer trained on video only")
    p.add_argument("--per-frame-tokenizer", default=None, help="Table 3: per-frame baseline tokenizer folder")
    p.add_argument("--cvivit-baseline", default=None, help="Table 3: C-ViViT trained on the same budget")
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("generate", help="render prompts (a story) to .mp4, .gif or .npy")
    p.add_argument("--prompt", action="append", help="one per story segment, in order")
    p.add_argument("--story", default=None, help="a story sidecar JSON to re-render exactly")
    p.add_argument("--init", default=None, help="an image to animate or a video to continue")
    p.add_argument("--frames", type=int, default=11, help="frames per segment")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--model", default=None, help="pipeline folder (default: the shipped model)")
    p.add_argument("--out", default="outputs/story.mp4")
    p.add_argument("--fps", type=int, default=None)
    p.add_argument("--size", type=int, default=None, help="upscale the output to this side")
    p.add_argument("--resample", default=None, choices=["nearest", "bicubic"], help="upscaling filter (default: nearest)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true")
    p.set_defaults(run=_generate)

    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
