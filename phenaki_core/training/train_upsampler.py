"""Train a TokenUpsampler: the shipped tokenizer's tokens of 64-pixel Shapes World renders in,
the same scenes rendered exactly at `scale` times the size as targets.

Decoder-only by construction: the tokenizer only tokenizes (frozen, no gradient), so its
tokens, and the transformer trained on them, stay valid. The upsampler's trunk starts from
the tokenizer's decoder and trains with its new head. Each step draws a few random frames
of each clip at full size (the head works frame by frame; the trunk sees every token), so
a step costs a fraction of drawing whole 256-pixel clips.

Under accelerate like the other trainers, with the shared checkpointing, resume, budget and
curves (common.py). Torch is imported only when training starts, so the arguments can be
listed without it.
"""
import argparse


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--out", required=True, help="run folder: checkpoints, logs, the exported upsampler")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--steps", type=int, default=None, help="stop at this step")
    p.add_argument("--minutes", type=float, default=None, help="stop after this wall time")
    p.add_argument("--tokenizer", default=None,
                   help="the C-ViViT folder whose tokens it draws (default: the shipped model's vqvae)")
    p.add_argument("--scale", type=int, default=4, help="output size / the tokenizer's frame size")
    p.add_argument("--channels", type=int, default=48, help="width of the per-frame upsampling network")
    p.add_argument("--blocks", type=int, default=2, help="residual blocks in the per-frame upsampling network")
    p.add_argument("--batch-videos", type=_positive, default=8)
    p.add_argument("--batch-images", type=_non_negative, default=4)
    p.add_argument("--still-fraction", type=float, default=0.5, help="images also seen as still clips")
    p.add_argument("--frames-per-clip", type=_positive, default=3, help="frames of each clip drawn at full size a step")
    p.add_argument("--object-weight", type=float, default=8.0)
    p.add_argument("--lr", type=float, default=5e-4, help="learning rate of the new upsampling network")
    # At the full rate the trunk, already a trained decoder, drifted: the loss rose for 80 steps.
    p.add_argument("--trunk-lr-scale", type=float, default=0.1,
                   help="the trunk's learning rate (the tokenizer's decoder it starts from) as a share of --lr")
    p.add_argument("--lr-decay", action="store_true", help="cosine-decay the learning rate over this run's budget")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--checkpoint-minutes", type=float, default=3)
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


# -- paired data: one scene, rendered at the token size and at the target size -----------------

def scaled(scene, factor: int):
    """The same scene in the pixels of a frame `factor` times larger (Scene holds render-size pixels)."""
    from dataclasses import replace

    return replace(scene, x=scene.x * factor, y=scene.y * factor, half=scene.half * factor)


def render_pair(scene, num_frames: int, size: int = 64, scale: int = 4):
    """(frames at size, frames at size * scale), uint8 (T, H, W, 3), of the same scene."""
    from ..data import shapes_world as sw

    return sw.render(scene, num_frames, size), sw.render(scaled(scene, scale), num_frames, size * scale)


def story_pair(rng, size: int = 64, scale: int = 4, num_frames: int = 11):
    """A story clip (the motion or the colour changes part way) at both sizes, drawn as
    shapes_world.sample_story_clip draws it, from the same path scaled."""
    import numpy as np

    from ..data import shapes_world as sw

    colour, shape = sw._pick(rng, sw.TRAIN_PAIRS)
    motion = sw._pick(rng, sw.MOTIONS)
    background = sw._pick(rng, sw.BACKGROUNDS)
    change = int(rng.integers(1, num_frames - 1))
    new_colour, new_motion = colour, motion
    if rng.random() < 0.5:
        new_motion = sw._pick(rng, [m for m in sw.MOTIONS if m != motion])
    else:
        new_colour = sw._pick(rng, [c for c, s in sw.TRAIN_PAIRS if s == shape and c != colour])
    offsets = sw._offsets([motion] * (change - 1) + [new_motion] * (num_frames - change), size / 64)
    states = np.float32(sw._start(rng, offsets, size)) + offsets
    rgb = np.uint8([sw.COLOURS[colour]] * change + [sw.COLOURS[new_colour]] * (num_frames - change))
    return (sw._draw(shape, "solid", rgb, states, background, size),
            sw._draw(shape, "solid", rgb, states * scale, background, size * scale))


def paired_batches(seed: int, n_videos: int, n_images: int, size: int = 64, scale: int = 4,
                   num_frames: int = 11, story_fraction: float = 0.2):
    """Endless (videos, videos_large, images, images_large): uint8 (B, 3, T, H, W) tensors, the
    same mix as the tokenizer's training stream (plain and story clips, solid and outlined images)."""
    import numpy as np
    import torch

    from ..data import shapes_world as sw

    rng = np.random.default_rng(seed)
    stack = lambda frames: torch.from_numpy(np.stack(frames)).permute(0, 4, 1, 2, 3)
    while True:
        small, large = [], []
        for _ in range(n_videos):
            if rng.random() < story_fraction:
                a, b = story_pair(rng, size, scale, num_frames)
            else:
                a, b = render_pair(sw.sample_video_scene(rng, size, num_frames), num_frames, size, scale)
            small.append(a)
            large.append(b)
        images = [render_pair(sw.sample_image_scene(rng, size), 1, size, scale) for _ in range(n_images)]
        empty = lambda s: torch.zeros(0, 3, 1, s, s, dtype=torch.uint8)
        yield (stack(small), stack(large),
               stack([a for a, _ in images]) if images else empty(size),
               stack([b for _, b in images]) if images else empty(size * scale))


# -- training ------------------------------------------------------------------------------------

def main(args):
    import time

    import torch
    from accelerate import Accelerator
    from tqdm import tqdm

    from ..models import CViViT
    from ..models.upsampler import TokenUpsampler
    from ..pipelines.default import DEFAULT_MODEL
    from .batches import on_device
    from .common import Budget, ema_copy, lr_schedule, make_ema
    from .run import Run

    if args.threads:
        torch.set_num_threads(args.threads)
    acc = Accelerator(mixed_precision=args.mixed_precision)
    torch.manual_seed(args.seed + acc.process_index)
    tokenizer = CViViT.from_pretrained(args.tokenizer or str(DEFAULT_MODEL / "vqvae")).eval().requires_grad_(False)
    model = TokenUpsampler.from_tokenizer(tokenizer, scale=args.scale, channels=args.channels, blocks=args.blocks)
    head = [p for n, p in model.named_parameters() if n.startswith("up.")]
    trunk = [p for n, p in model.named_parameters() if not n.startswith("up.")]
    opt = torch.optim.AdamW([{"params": head, "lr": args.lr}, {"params": trunk, "lr": args.lr * args.trunk_lr_scale}],
                            betas=(0.9, 0.99), weight_decay=0.0)
    budget = Budget(args.steps, args.minutes)
    schedule = lr_schedule(opt, budget, 100, args.lr_decay)  # per group: the trunk keeps its fraction
    ema = make_ema(model, decay=0.999)
    args.report_to = "none"
    model, opt, schedule = acc.prepare(model, opt, schedule)
    run = Run(acc, args, "phenaki-upsampler", ema)  # the shared run folder: accelerate's save_state
    step = run.resume() if args.resume else 0
    tokenizer.to(acc.device)
    ema.to(acc.device)

    size, frames = tokenizer.config.image_size, 11
    batches = paired_batches(args.seed * 1000 + step + acc.process_index,  # a resumed run sees new data
                             args.batch_videos, args.batch_images, size, args.scale, frames)
    probe = fixed_probe(size, args.scale)
    bar = tqdm(total=args.steps, initial=step, disable=not acc.is_local_main_process, dynamic_ncols=True)
    t0 = time.time()
    while not budget.done(step):
        v_small, v_large, i_small, i_large = next(batches)
        n_still = int(len(i_small) * args.still_fraction)  # images also as still clips: the tubelet path
        v_small = torch.cat([v_small, i_small[:n_still].expand(-1, -1, frames, -1, -1)])
        v_large = torch.cat([v_large, i_large[:n_still].expand(-1, -1, frames, -1, -1)])
        with torch.no_grad():
            tokens_v = tokenizer.tokenize(on_device(v_small, acc.device))
            tokens_i = tokenizer.tokenize(on_device(i_small, acc.device)) if len(i_small) else None
        pick = torch.rand(len(v_small), frames).argsort(1)[:, : args.frames_per_clip].sort(1).values
        chosen = lambda v, pick=pick: on_device(v[torch.arange(len(v))[:, None], :, pick].permute(0, 2, 1, 3, 4),
                                                acc.device)
        with acc.autocast():
            rec_v = object_weighted_l2(model(tokens_v, pick.to(acc.device)), chosen(v_large), chosen(v_small),
                                       args.object_weight)
            rec = rec_v
            if tokens_i is not None:
                rec_i = object_weighted_l2(model(tokens_i), on_device(i_large, acc.device), on_device(i_small, acc.device),
                                           args.object_weight)
                rec = (rec_v * len(v_small) + rec_i * len(i_small)) / (len(v_small) + len(i_small))
        opt.zero_grad(set_to_none=True)
        acc.backward(rec)
        acc.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        ema.step(acc.unwrap_model(model).parameters())
        step = run.position.step = step + 1
        record = {"step": step, "l2": rec.item()}
        bar.update(1)
        bar.set_postfix(l2=f"{rec.item():.4f}")
        if step % args.eval_every == 0 and acc.is_main_process:
            record.update(probe_psnr(ema_copy(ema, acc.unwrap_model(model)), tokenizer, probe))
            acc.print(f"step {step}: PSNR at {size * args.scale}: learned {record['psnr']:.2f} dB, "
                      f"bicubic upscale {record['psnr_bicubic']:.2f} dB")
        run.log({**record, "time": time.time() - t0})
        if run.save_due():
            save(run, model, ema)
    save(run, model, ema)
    run.end()
    bar.close()


def object_weighted_l2(recon, target, small_target, object_weight: float):
    """losses.reconstruction_loss's L2 with the object and a ring around it weighted up, the
    region found on the small render and spread over the large one: the same region (its ring
    scaled), at a sixteenth of the cost of finding it at 256."""
    import torch.nn.functional as F

    from .losses import object_region

    err = (recon.float() - target.float()) ** 2
    scale = target.shape[-1] // small_target.shape[-1]
    region = object_region(small_target)  # (B, 1, T, h, w)
    region = F.interpolate(region.flatten(1, 2), scale_factor=scale, mode="nearest").reshape(
        *region.shape[:3], *target.shape[-2:])
    weights = 1.0 + (object_weight - 1.0) * region
    return (err * weights).sum() / (weights.sum() * err.shape[1])


def fixed_probe(size: int, scale: int, n: int = 6, seed: int = 4321):
    """A few seen clips at both sizes, the same every evaluation, for the curve."""
    import numpy as np

    from ..data import shapes_world as sw

    rng = np.random.default_rng(seed)
    pairs = [render_pair(sw.sample_video_scene(rng, size), sw.CLIP_FRAMES, size, scale) for _ in range(n)]
    return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])


def probe_psnr(model, tokenizer, probe) -> dict:
    import torch

    from ..eval.tokenizer_eval import psnr, to_float, to_uint8
    from ..models.upsampler import upscale_video

    small, large = probe
    was_training = model.training
    model.eval()
    with torch.no_grad():
        tokens = tokenizer.tokenize(to_float(small).to(tokenizer.device))
        learned = to_uint8(model.detokenize(tokens.to(model.device)))
        bicubic = to_uint8(upscale_video(tokenizer.detokenize(tokens), large.shape[-2], "bicubic"))
    model.train(was_training)
    return {"psnr": psnr(learned, large), "psnr_bicubic": psnr(bicubic, large)}


def save(run, model, ema):
    """The checkpoint (every process), then the EMA weights as the component that ships."""
    from .common import ema_copy

    run.save()
    if run.acc.is_main_process:
        ema_copy(ema, run.acc.unwrap_model(model)).save_pretrained(run.dir / "upsampler")
        run.plot(["l2", "psnr", "psnr_bicubic"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    main(parser.parse_args())
