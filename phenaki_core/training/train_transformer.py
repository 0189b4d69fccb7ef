"""Train the MaskGIT transformer on a frozen tokenizer's tokens, under accelerate.

Masked-token cross-entropy with the cosine mask ratio; 10% of prompts dropped to the
null text (for classifier-free guidance); images as first frames whose loss covers the
first frame only; continuation: story clips keep the frames before their change as a
frozen, unscored prefix, and some plain clips keep a K-frame prefix, so "frozen past plus
a new prompt" is a situation the model has trained on.

Images can also train as still clips (the image repeated over the clip,
`--still-fraction`). C-ViViT codes a first frame and a later tubelet with separate
embeddings, so a style seen only in images (Shapes World's outlines) has first-frame
codes but no tubelet codes, and a video in that style fills in after its first frame.
Still clips give the tubelet codes a target. Images can also train alone, as
one-latent-frame sequences (`--single-frame-images`): scored on the first frame only, an
image needs only that frame's tokens, so many more of them fit a step.

A transformer can start from one trained on another tokenizer's codes (`--init` with
`--init-tokenizer`): its code tables are carried over by where the codes co-occur
(code_transfer.py), so a retrained tokenizer does not cost a transformer from scratch, even
one that cuts time into one-frame tubelets instead of two.
"""
import argparse
import json
import time

from .arguments import add_run_arguments, run_as_script


def add_arguments(p: argparse.ArgumentParser):
    add_run_arguments(p, batch_videos=32, batch_images=8)  # --batch-images 0: video only (Table 2)
    p.add_argument("--tokenizer", required=True, help="folder of a trained CViViT (save_pretrained)")
    p.add_argument("--tokens", default=None,
                   help="train on token shards `phenaki tokenize` wrote with this --tokenizer (a folder of .tar "
                        "shards) instead of encoding every batch")
    p.add_argument("--init", default=None,
                   help="start from this transformer folder's weights, wherever this config has the same shapes")
    p.add_argument("--init-tokenizer", default=None,
                   help="the tokenizer --init was trained on, when --tokenizer is another one: its code tables "
                        "are carried over to the new codes by their co-occurrence on training clips")
    p.add_argument("--text-dropout", type=float, default=0.1)
    p.add_argument("--story-fraction", type=float, default=0.2)
    p.add_argument("--still-fraction", type=float, default=0.0,
                   help="images also trained as still clips, scored on every frame (0: first frames only, as the paper)")
    p.add_argument("--continuation-fraction", type=float, default=0.25)
    p.add_argument("--context-frames", type=int, default=5)
    p.add_argument("--object-weight", type=float, default=4.0,
                   help="loss weight of tokens that differ from their frame's background token")
    p.add_argument("--image-weight", type=float, default=1.0,
                   help="loss weight of an image's tokens against a video's (its first frame is all it is scored on)")
    p.add_argument("--single-frame-images", type=float, default=0.0,
                   help="share of the images trained alone, as one-latent-frame sequences: a sixth of a clip's "
                        "tokens each, so a step can hold several times more of them (the rest train as whole "
                        "clips with the later frames masked, the way sampling starts)")
    p.add_argument("--text-encoder", default="minilm", help="'minilm' or a local T5 folder")


def main(args):
    import torch
    from tqdm import tqdm

    from ..models import CViViT, MaskGitTransformer
    from ..text import TextEncoder
    from .code_transfer import (
        code_cooccurrence,
        transfer_codes,
        transfer_time_positions,
    )
    from .common import Budget, TextCache, ema_copy, lr_schedule, make_ema, warm_start
    from .run import Run, make_accelerator

    if args.tokens and (args.videos or args.images):
        raise SystemExit("--tokens are the training data: give them without --videos or --images")
    acc = make_accelerator(args)
    torch.manual_seed(args.seed + acc.process_index)
    tokenizer = CViViT.from_pretrained(args.tokenizer).eval().requires_grad_(False).to(acc.device)
    text_encoder = TextEncoder("t5", args.text_encoder) if args.text_encoder != "minilm" else TextEncoder()
    text = TextCache(text_encoder)
    latent_frames = tokenizer.latent_frames(args.frames)
    config = {"codebook_size": tokenizer.codebook_size, "latent_frames": latent_frames, "grid": tokenizer.grid,
              "text_dim": text_encoder.hidden_size, **(json.loads(args.config) if args.config else {})}
    model = MaskGitTransformer(**config)
    if args.init:
        source = MaskGitTransformer.from_pretrained(args.init)
        fresh = warm_start(model, source)
        if args.init_tokenizer:  # before prepare: every process computes the same tables from the same clips
            old = CViViT.from_pretrained(args.init_tokenizer).eval().requires_grad_(False).to(acc.device)
            batches = training_batches(args, tokenizer, seed=args.seed)
            # Still clips too, whatever --still-fraction says: the codes of what only images show,
            # in later frames, occur nowhere else and would keep rows meant for other codes.
            counts = code_cooccurrence(old, tokenizer, [next(batches).with_stills(0.5) for _ in range(20)])
            unused = transfer_codes(model, counts)
            transfer_time_positions(model, source, old, tokenizer)
            fresh = [name for name in fresh if name != "pos_t"]  # carried over by video frame
            agree = counts.max(1).values.sum() / counts.sum()
            acc.print(f"--init-tokenizer: code tables carried over ({agree:.0%} of positions hold their new "
                      f"code's most frequent old code; {unused} codes never seen keep their rows)")
        if fresh:
            acc.print(f"--init: these start fresh (new or reshaped in this config): {', '.join(fresh)}")
    elif args.init_tokenizer:
        raise SystemExit("--init-tokenizer names the tokenizer of an --init transformer: give --init too")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    budget = Budget(args.steps, args.minutes)
    schedule = lr_schedule(opt, budget, 300, args.lr_decay)
    model, opt, schedule = acc.prepare(model, opt, schedule)
    ema = make_ema(acc.unwrap_model(model), decay=0.998)
    run = Run(acc, args, "phenaki-transformer", ema)
    step = run.resume() if args.resume else 0

    # Each process its own stream, each step its own batch: resumed, a run sees what it would have.
    batches = token_batches(args, tokenizer, acc, start=step * args.grad_accum)
    bar = tqdm(total=args.steps, initial=step, disable=not acc.is_local_main_process, dynamic_ncols=True)
    t0 = time.time()
    while not run.agree(budget.done(step)):
        sums = {}
        for _ in range(args.grad_accum):
            with acc.accumulate(model):
                record = transformer_step(args, acc, model, opt, schedule, next(batches), text, tokenizer)
            for k, v in record.items():
                sums[k] = sums.get(k, 0.0) + v / args.grad_accum
        ema.step(acc.unwrap_model(model).parameters())
        record = {"step": step, **sums}
        step = run.position.step = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['token_acc']:.2f}",
                        object_acc=f"{record['object_acc']:.2f}")
        if step % args.eval_every == 0 and acc.is_main_process:
            from ..eval.evaluate import quick_adherence

            pipe = assemble(text_encoder, tokenizer, ema_copy(ema, acc.unwrap_model(model)))
            record["seen"] = quick_adherence(pipe, n=32)
            acc.print(f"step {step}: seen adherence {record['seen']:.0%}")
        run.log({**record, "time": time.time() - t0})
        if run.save_due():
            save(run, model, ema, text_encoder, tokenizer)
    save(run, model, ema, text_encoder, tokenizer)
    run.check_replicas(model)
    run.end()
    bar.close()


def token_batches(args, tokenizer, acc, start: int):
    """Batches of tokens, captions and context frames: from --tokens shards, or Shapes World or
    a folder encoded here, a batch at a time, by the frozen tokenizer."""
    import torch

    from .batches import TokenBatch, on_device

    seed = (args.seed, acc.process_index)
    if args.tokens:
        from .token_shards import shard_batches

        yield from shard_batches(args.tokens, tokenizer, args.batch_videos, args.batch_images, args.frames,
                                 args.seed, acc.process_index, acc.num_processes, start, args.still_fraction)
        return
    for b in training_batches(args, tokenizer, seed, start):
        b = b.with_stills(args.still_fraction)
        with torch.no_grad():
            videos = tokenizer.tokenize(on_device(b.videos, acc.device))
            images = tokenizer.tokenize(on_device(b.images, acc.device)) if len(b.images) else videos[:0, :1]
        yield TokenBatch(videos, b.video_captions, images, b.image_captions, b.context_frames)


def transformer_step(args, acc, model, opt, schedule, b, text, tokenizer) -> dict:
    """One batch: masked-token loss, backward, and (on the last batch of an accumulation) the
    optimizer step. Its randomness (masks, continuation, text dropout) comes from torch's global
    generator, which accelerate checkpoints."""
    import torch

    from . import losses

    latent_frames = acc.unwrap_model(model).config.latent_frames
    mask_id = acc.unwrap_model(model).mask_token_id
    tp = tokenizer.config.temporal_patch_size
    k_latent = tokenizer.latent_frames(args.context_frames)
    video_tokens, image_tokens = b.videos.to(acc.device), b.images.to(acc.device)
    # An image is scored on its first frame alone, so the ones trained on their own need
    # only that frame's tokens: what only images teach (outlines) then costs little.
    n_i = len(image_tokens) - round(len(image_tokens) * args.single_frame_images)
    single_tokens, image_tokens = image_tokens[n_i:], image_tokens[:n_i]
    pad = torch.zeros(n_i, latent_frames - 1, *image_tokens.shape[2:], dtype=torch.long, device=acc.device)
    tokens = torch.cat([video_tokens, torch.cat([image_tokens, pad], 1)])
    n_v = len(video_tokens)
    is_image = torch.arange(n_v + n_i, device=acc.device) >= n_v
    # Frames before a story clip's change are context: whole latent frames before it.
    prefix = torch.where(b.context_frames > 0, 1 + (b.context_frames - 1) // tp, 0)
    plain_continuation = (b.context_frames == 0) & (torch.rand(n_v) < args.continuation_fraction)
    prefix = torch.where(plain_continuation, k_latent, prefix)
    prefix = torch.cat([prefix, torch.zeros(n_i, dtype=torch.long)]).to(acc.device)
    inputs, masked = mask_tokens(tokens, is_image, mask_id, prefix)
    states, mask = text(b.video_captions + b.image_captions, acc.device)
    drop = torch.rand(len(states)).to(acc.device) < args.text_dropout
    with acc.autocast():
        logits = model(inputs, states[:n_v + n_i], mask[:n_v + n_i], drop[:n_v + n_i], logits_at=masked)
        weight = torch.where(is_image, args.image_weight, 1.0)
        loss = losses.masked_token_loss(logits, tokens, masked, args.object_weight, weight)
        targets = tokens[masked]
        if len(single_tokens):
            single = torch.ones(len(single_tokens), dtype=torch.bool, device=acc.device)
            single_inputs, single_masked = mask_tokens(single_tokens, single, mask_id)
            single_logits = model(single_inputs, states[n_v + n_i:], mask[n_v + n_i:], drop[n_v + n_i:],
                                  logits_at=single_masked)
            single_weight = torch.full_like(single, args.image_weight, dtype=torch.float)
            single_loss = losses.masked_token_loss(single_logits, single_tokens, single_masked,
                                                   args.object_weight, single_weight)
            counts = [losses.masked_token_weights(t, m, args.object_weight, w).sum()
                      for t, m, w in ((tokens, masked, weight), (single_tokens, single_masked, single_weight))]
            loss = (loss * counts[0] + single_loss * counts[1]) / (counts[0] + counts[1])
            logits, targets = torch.cat([logits, single_logits]), torch.cat([targets, single_tokens[single_masked]])
    # Every process must give every weight a gradient, or DDP's exchange waits forever on the
    # one that did not: the null text is used only where a caption was dropped, which a batch
    # may not have. (DDP's find_unused_parameters cannot serve: a step calls the model twice.)
    null_text = acc.unwrap_model(model).null_text
    acc.backward(loss + 0.0 * null_text.sum())
    if acc.sync_gradients:
        acc.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()  # accelerate's optimizer steps only when the accumulation is complete
    if acc.sync_gradients:
        schedule.step()
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        right = logits.argmax(-1) == targets
        acc_masked = right.float().mean().item()
        on_object = losses.object_tokens(tokens)[masked]
        if len(single_tokens):
            on_object = torch.cat([on_object, losses.object_tokens(single_tokens)[single_masked]])
        acc_object = right[on_object].float().mean().item() if on_object.any() else float("nan")
    return {"loss": loss.item(), "token_acc": acc_masked, "object_acc": acc_object}


def mask_tokens(tokens, is_image, mask_id, prefix_frames=None):
    """Which tokens a step hides and scores (the cosine schedule), and the inputs with them
    hidden: the one place training masks, through the scheduler's own schedule."""
    from . import losses

    return losses.prepare_masked_batch(tokens, is_image, mask_id, prefix_frames, generator=None)


def training_batches(args, tokenizer, seed, start: int = 0):
    from .batches import folder_batches, shapes_world_batches

    if args.videos:
        return folder_batches(args.videos, args.images, args.batch_videos, args.batch_images,
                              tokenizer.config.image_size, args.frames, args.fps, seed, workers=args.workers,
                              start=start)
    return shapes_world_batches(seed, args.batch_videos, args.batch_images, tokenizer.config.image_size,
                                args.frames, args.story_fraction, args.workers, start=start)


def assemble(text_encoder, tokenizer, transformer):
    from ..pipelines import PhenakiPipeline
    from ..schedulers import MaskGitScheduler

    pipe = PhenakiPipeline(text_encoder, tokenizer, transformer, MaskGitScheduler(mask_token_id=transformer.mask_token_id))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save(run, model, ema, text_encoder, tokenizer):
    """The checkpoint (every process) and, from the main process alone, the pipeline that ships."""
    run.save()
    if run.acc.is_main_process:
        from .common import ema_copy

        assemble(text_encoder, tokenizer, ema_copy(ema, run.acc.unwrap_model(model))).save_pretrained(run.dir / "pipeline")
        run.plot(["loss", "token_acc", "object_acc", "seen"])


if __name__ == "__main__":
    run_as_script(add_arguments, main, __doc__)
