"""Train a TokenUpsampler: the shipped tokenizer's tokens of 64-pixel Shapes World renders in,
the same scenes rendered exactly at `scale` times the size as targets.

Decoder-only by construction: the tokenizer only tokenizes, and the upsampler's trunk (a copy
of the tokenizer's decoder) stays frozen, so the tokens, the transformer trained on them and
the 64-pixel drawing all stay as shipped; only the per-frame head learns. Because the trunk is
frozen, its per-pixel features are computed once for a bank of paired clips and images, and
each step trains the head on random crops of them (half centred on the object, where all the
error is): thousands of steps an hour on a CPU, where drawing whole clips managed hundreds.

The loss is L1, not L2: an edge's exact place within a 64-pixel pixel is uncertain, and the
L2-best answer to an uncertain edge is a blend of both colours (a soft edge, as bicubic
draws), while the L1-best is the likelier colour, a hard edge. Crisp frames are the point.

Under accelerate like the other trainers, with the shared checkpointing, resume, budget and
curves (common.py, run.py). Torch is imported only when training starts, so the arguments
can be listed without it.
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
    p.add_argument("--bank-clips", type=_positive, default=1000,
                   help="paired clips whose features are computed once and cropped from (about 0.4 MB a frame)")
    p.add_argument("--bank-images", type=_non_negative, default=800, help="paired images in the bank")
    p.add_argument("--still-fraction", type=float, default=0.5, help="bank images also seen as still clips")
    p.add_argument("--crop", type=_positive, default=32, help="crop side at the token frame's size")
    p.add_argument("--margin", type=_non_negative, default=4,
                   help="crop border left out of the loss: the network's zero padding at a crop's edge is not the frame's")
    p.add_argument("--batch-crops", type=_positive, default=48)
    p.add_argument("--object-weight", type=float, default=8.0)
    p.add_argument("--loss", default="l1", choices=["l1", "l2"], help="l1 draws hard edges, l2 the soft average")
    p.add_argument("--lr", type=float, default=1e-3)
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
    from tqdm import tqdm

    from ..models import CViViT
    from ..models.upsampler import TokenUpsampler
    from ..pipelines.default import DEFAULT_MODEL
    from .common import Budget, lr_schedule, make_ema
    from .feature_bank import DrawHead, FeatureBank
    from .run import Run, make_accelerator

    if args.threads:
        torch.set_num_threads(args.threads)
    args.report_to, args.grad_accum = getattr(args, "report_to", "none"), 1
    acc = make_accelerator(args)
    torch.manual_seed(args.seed + acc.process_index)
    tokenizer = CViViT.from_pretrained(args.tokenizer or str(DEFAULT_MODEL / "vqvae")).eval().requires_grad_(False)
    upsampler = TokenUpsampler.from_tokenizer(tokenizer, scale=args.scale, channels=args.channels, blocks=args.blocks)
    upsampler.requires_grad_(False).up.requires_grad_(True)  # the trunk is the shipped decoder and stays so
    size = tokenizer.config.image_size
    t_bank = time.time()
    bank = FeatureBank.build(tokenizer, upsampler, args, seed=args.seed * 1000 + acc.process_index)
    acc.print(f"feature bank: {len(bank)} frames in {time.time() - t_bank:.0f} s")

    head = DrawHead(upsampler)
    opt = torch.optim.AdamW(upsampler.up.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    budget = Budget(args.steps, args.minutes)
    schedule = lr_schedule(opt, budget, 200, args.lr_decay)
    ema = make_ema(upsampler.up, decay=0.999)
    head, opt, schedule = acc.prepare(head, opt, schedule)
    run = Run(acc, args, "phenaki-upsampler", ema)  # the shared run folder: accelerate's save_state
    step = run.resume() if args.resume else 0
    ema.to(acc.device)
    bank.to(acc.device)

    probe = fixed_probe(size, args.scale)
    bar = tqdm(total=args.steps, initial=step, disable=not acc.is_local_main_process, dynamic_ncols=True)
    t0 = time.time()
    while not budget.done(step):
        features, target, region = bank.crops(args.batch_crops, args.crop, args.scale)
        with acc.autocast():
            loss = object_weighted_error(head(features), target, region, args.object_weight, args.loss,
                                         args.margin * args.scale)
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        acc.clip_grad_norm_(upsampler.up.parameters(), 1.0)
        opt.step()
        schedule.step()
        ema.step(upsampler.up.parameters())
        step = run.position.step = step + 1
        record = {"step": step, "loss": loss.item()}
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % args.eval_every == 0 and acc.is_main_process:
            record.update(probe_psnr(exported(upsampler, ema), tokenizer, probe))
            acc.print(f"step {step}: PSNR at {size * args.scale}: learned {record['psnr']:.2f} dB, "
                      f"bicubic upscale {record['psnr_bicubic']:.2f} dB")
        run.log({**record, "time": time.time() - t0})
        if run.save_due():
            save(run, upsampler, ema)
    save(run, upsampler, ema)
    run.end()
    bar.close()


def exported(upsampler, ema):
    """A frozen copy of the upsampler with the head's EMA weights: what evaluates and ships."""
    import copy

    copy_ = copy.deepcopy(upsampler).eval().requires_grad_(False)
    ema.copy_to(copy_.up.parameters())
    return copy_


def object_weighted_error(recon, target, region, object_weight: float, loss: str = "l1", margin: int = 0):
    """L1 (or L2) at the large size with the object and a ring around it (`region`, found on
    the small render, (B, 1, h, w)) weighted up, spread over the large frame; `margin` large
    pixels at each side of a crop left out (the network pads a crop's edge with zeros)."""
    import torch.nn.functional as F

    err = (recon.float() - target.float())
    err = err.abs() if loss == "l1" else err**2
    scale = target.shape[-1] // region.shape[-1]
    weights = 1.0 + (object_weight - 1.0) * F.interpolate(region.float(), scale_factor=scale, mode="nearest")
    if margin:
        err, weights = err[..., margin:-margin, margin:-margin], weights[..., margin:-margin, margin:-margin]
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


def save(run, upsampler, ema):
    """The checkpoint (every process), then the head's EMA weights in the component that ships."""
    run.save()
    if run.acc.is_main_process:
        exported(upsampler, ema).save_pretrained(run.dir / "upsampler")
        run.plot(["loss", "psnr", "psnr_bicubic"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    main(parser.parse_args())
