"""Train C-ViViT: L2 (object pixels weighted up), the quantizer's loss (none for FSQ), and
an adversarial loss after a warm-up, under accelerate (one script for a laptop, a GPU box
or a cluster: `accelerate launch -m phenaki_core.cli train-tokenizer ...`).

Images train it too, as one-frame videos, and as still clips (the image repeated), so
the tubelet path also learns what only images show (outlined shapes).
"""
import argparse
import json
import time

from .arguments import add_run_arguments, run_as_script


def add_arguments(p: argparse.ArgumentParser):
    add_run_arguments(p, batch_videos=16, batch_images=8)
    p.add_argument("--init", default=None,
                   help="start from this CViViT folder's weights, wherever this config has the same shapes")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--still-fraction", type=float, default=0.5, help="images also seen as still clips")
    p.add_argument("--object-weight", type=float, default=8.0)
    p.add_argument("--adv-start", type=int, default=3000, help="step at which the adversarial loss starts")
    # 0.05 let the discriminator's gradients swamp L2 here (L2 rose 5x within 100 steps).
    p.add_argument("--adv-weight", type=float, default=0.01)
    p.add_argument("--perceptual", default=None, help="TorchScript feature network for a perceptual loss (optional)")
    p.add_argument("--perceptual-weight", type=float, default=0.1)
    p.add_argument("--decoder-only", action="store_true",
                   help="train the decoder alone: the tokens, and so a transformer trained on them, stay valid")
    p.add_argument("--per-frame", action="store_true", help="train the per-frame baseline (Table 3)")
    p.add_argument("--prior", default=None,
                   help="a pipeline folder on these tokens: its transformer redraws some of the tokens the decoder "
                        "learns from (--decoder-only), so it learns to draw what samples mean (prior_tokens.py)")
    p.add_argument("--prior-rows", type=float, default=0.5, help="share of clips and images decoded from redrawn tokens")
    p.add_argument("--prior-share", type=float, default=0.3, help="the largest share of a clip's tokens redrawn")
    p.add_argument("--motion-weight", type=float, default=1.0,
                   help="weight of the motion head's moved first frame alone against the later frames")
    # The head's own drawing reconstructs a solid moving object as well as the moved first
    # frame does, so without a push the blend has no reason to move what the first frame
    # shows; and only the moved first frame carries a look no training video has.
    p.add_argument("--prefer-motion", type=float, default=0.02,
                   help="cost of the share of the object the head draws itself rather than moves from the first frame")


def build_model(args):
    from ..models import CViViT

    # An --init folder's architecture is the starting point, so continuing a tokenizer keeps
    # what it has (its motion head, say) unless --config changes it.
    start = {k: v for k, v in CViViT.load_config(args.init).items() if not k.startswith("_")} if args.init else {}
    config = {**start, "image_size": args.size, **(json.loads(args.config) if args.config else {})}
    return CViViT.per_frame_baseline(**config) if args.per_frame else CViViT(**config)


def main(args):
    import torch
    from tqdm import tqdm

    from ..eval.tokenizer_eval import tokenizer_report
    from ..models import CViViT, Discriminator
    from . import losses
    from .batches import folder_batches, on_device, shapes_world_batches
    from .common import Budget, ema_copy, lr_schedule, make_ema, warm_start
    from .run import Run, make_accelerator

    acc = make_accelerator(args)
    torch.manual_seed(args.seed + acc.process_index)
    model, disc = build_model(args), Discriminator()
    if args.init:  # e.g. the shipped model's vqvae: training that spans sessions and machines
        fresh = warm_start(model, CViViT.from_pretrained(args.init))
        if fresh:
            acc.print(f"--init: these start fresh (new or reshaped in this config): {', '.join(fresh)}")
    if args.decoder_only:
        for module in (model.embed_image, model.embed_tubelet, model.enc_spatial, model.enc_temporal, model.to_code):
            if module is not None:
                module.requires_grad_(False)
        model.enc_spatial_pos.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    d_opt = torch.optim.AdamW(disc.parameters(), lr=args.lr / 2, betas=(0.5, 0.99))
    budget = Budget(args.steps, args.minutes)
    schedule = lr_schedule(opt, budget, 200, args.lr_decay)
    perceptual = torch.jit.load(args.perceptual).eval().requires_grad_(False) if args.perceptual else None
    prior = load_prior(args, model, acc) if args.prior else None
    model, disc, opt, d_opt, schedule = acc.prepare(model, disc, opt, d_opt, schedule)
    ema = make_ema(acc.unwrap_model(model), decay=0.999)
    run = Run(acc, args, "phenaki-tokenizer", ema)
    step = run.resume() if args.resume else 0

    # Each process its own stream, each step its own batch: resumed, a run sees what it would have.
    seed = (args.seed, acc.process_index)
    start = step * args.grad_accum
    if args.videos:
        batches = folder_batches(args.videos, args.images, args.batch_videos, args.batch_images, args.size,
                                 args.frames, args.fps, seed, workers=args.workers, start=start)
    else:
        batches = shapes_world_batches(seed, args.batch_videos, args.batch_images, args.size, args.frames,
                                       workers=args.workers, start=start)

    bar = tqdm(total=args.steps, initial=step, disable=not acc.is_local_main_process, dynamic_ncols=True)
    t0, first = time.time(), step
    while not run.agree(budget.done(step)):
        sums = {}
        for _ in range(args.grad_accum):
            with acc.accumulate(model, disc):
                record, n_items = tokenizer_step(args, acc, model, disc, opt, d_opt, schedule, next(batches), step,
                                                 perceptual, prior, losses, on_device)
            for k, v in record.items():
                sums[k] = sums.get(k, 0.0) + v / args.grad_accum
        ema.step(acc.unwrap_model(model).parameters())
        record = {"step": step, **sums}
        step = run.position.step = step + 1
        bar.update(1)
        bar.set_postfix(rec=f"{record['l2']:.4f}",
                        items_s=f"{n_items * args.grad_accum * (step - first) / max(time.time() - t0, 1e-6):.0f}")

        if step % args.eval_every == 0 and acc.is_main_process:
            report = tokenizer_report(ema_copy(ema, acc.unwrap_model(model)), n_videos=48, n_images=16)
            record.update(seen=report["seen"]["adherence"], seen_shape=report["seen"]["shape"],
                          outlined=report["outlined_images"]["adherence"],
                          outlined_videos=report["outlined_videos"]["adherence"], psnr=report["seen_psnr"])
            acc.print(f"step {step}: reconstructions pass {record['seen']:.0%} seen "
                      f"(shape {record['seen_shape']:.0%}), outlined images {record['outlined']:.0%}, "
                      f"outlined videos {record['outlined_videos']:.0%}, PSNR {record['psnr']:.1f}")
        run.log({**record, "time": time.time() - t0})
        if run.save_due():
            save(run, model, ema)
    save(run, model, ema)
    run.check_replicas(model)
    run.end()
    bar.close()


def tokenizer_step(args, acc, model, disc, opt, d_opt, schedule, b, step, perceptual, prior, losses, on_device):
    """One batch: the tokenizer's losses, its backward and (on the last batch of an
    accumulation) its optimizer step; then the discriminator's, once the adversarial loss is on."""
    import torch

    b = b.with_stills(args.still_fraction)
    clips, images = on_device(b.videos, acc.device), on_device(b.images, acc.device)
    tokens_v = tokens_i = None
    if prior is not None:
        tokens_v, tokens_i = (prior.redraw(acc.unwrap_model(model), x, captions)
                              for x, captions in ((clips, b.video_captions), (images, b.image_captions)))
    with acc.autocast():
        recon_v, _, motion = model(clips, tokens_v)
        recon_i = model(images, tokens_i)[0] if len(images) else None
        rec = losses.reconstruction_loss(recon_v, clips, args.object_weight)
        if recon_i is not None:
            rec_i = losses.reconstruction_loss(recon_i, images, args.object_weight)
            rec = (rec * len(clips) + rec_i * len(images)) / (len(clips) + len(images))
        loss = rec
        if motion is not None:
            motion_rec = losses.motion_loss(motion.moved, clips, args.object_weight)
            drawn = losses.drawn_share(motion.weight, clips)
            loss = loss + args.motion_weight * motion_rec + args.prefer_motion * drawn
        adv_on = step >= args.adv_start
        if adv_on:  # the discriminator judges two random frames a clip (most of the signal, a fraction
            # of the cost) and every image: a look only images show is judged where it is drawn
            judged = torch.randint(clips.shape[2], (2,), device=clips.device)
            fakes = [recon_v[:, :, judged]] + ([recon_i] if recon_i is not None else [])
            # The generator's loss reaches the tokenizer through a frozen discriminator (its own
            # module, outside DDP): the discriminator's gradients are its own loss's alone, and
            # add up over an accumulation without the generator's mixed in.
            judge = acc.unwrap_model(disc).requires_grad_(False)
            loss = loss + args.adv_weight * sum(losses.generator_adv_loss(judge(f)) for f in fakes) / len(fakes)
            judge.requires_grad_(True)
        if perceptual is not None:
            frames = lambda v: v.transpose(1, 2).flatten(0, 1)
            loss = loss + args.perceptual_weight * (perceptual(frames(recon_v)) - perceptual(frames(clips))).pow(2).mean()
    acc.backward(loss)
    if acc.sync_gradients:
        acc.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()  # accelerate's optimizer steps only when the accumulation is complete
    if acc.sync_gradients:
        schedule.step()
    opt.zero_grad(set_to_none=True)
    record = {"loss": loss.item(), "l2": rec.item()}
    if motion is not None:
        record.update(motion_l2=motion_rec.item(), drawn=drawn.item())
    if adv_on:
        with acc.autocast():
            reals = [clips[:, :, judged]] + ([images] if recon_i is not None else [])
            d_loss = sum(losses.hinge_d_loss(disc(r), disc(f.detach())) for r, f in zip(reals, fakes)) / len(fakes)
        acc.backward(d_loss)
        d_opt.step()
        d_opt.zero_grad(set_to_none=True)
        record["d_loss"] = d_loss.item()
    return record, len(clips) + len(images)


class Prior:
    """A frozen transformer and its text encoder, redrawing tokens for the decoder to learn from."""

    def __init__(self, pipe, acc, rows: float, share: float):
        from .common import TextCache

        self.transformer = pipe.transformer.eval().requires_grad_(False).to(acc.device)
        self.text, self.autocast = TextCache(pipe.text_encoder), acc.autocast
        self.rows, self.share = rows, share

    def redraw(self, tokenizer, frames, captions):
        import torch

        from .prior_tokens import redraw_tokens

        if len(frames) == 0:
            return None
        with torch.no_grad():  # in full precision: the very tokens the transformer trained on
            tokens = tokenizer.tokenize(frames)
        rows = torch.rand(len(tokens), device=tokens.device) < self.rows
        states, mask = self.text(captions, tokens.device)
        with self.autocast():
            return redraw_tokens(self.transformer, tokens, states, mask, self.share, rows)


def load_prior(args, model, acc) -> Prior:
    import torch

    from ..pipelines import PhenakiPipeline
    from .batches import on_device, shapes_world_batches

    if not args.decoder_only:
        raise SystemExit("--prior redraws this tokenizer's tokens, so its encoder must stay as it is: give --decoder-only")
    pipe = PhenakiPipeline.from_pretrained(args.prior)
    probe = shapes_world_batches(0, 4, 0, args.size, args.frames)
    clips = on_device(next(probe).videos, "cpu")
    with torch.no_grad():
        same = torch.equal(pipe.vqvae.tokenize(clips), model.tokenize(clips))
    if not same:
        raise SystemExit(f"--prior {args.prior}: its tokenizer's tokens differ from this one's (--init the same vqvae)")
    return Prior(pipe, acc, args.prior_rows, args.prior_share)


def save(run, model, ema):
    """The checkpoint (every process) and, from the main process alone, the EMA weights that ship."""
    run.save()
    if run.acc.is_main_process:
        from .common import ema_copy

        ema_copy(ema, run.acc.unwrap_model(model)).save_pretrained(run.dir / "cvivit")
        run.plot(["l2", "motion_l2", "drawn", "d_loss", "seen", "outlined", "outlined_videos", "psnr"])


if __name__ == "__main__":
    run_as_script(add_arguments, main, __doc__)
