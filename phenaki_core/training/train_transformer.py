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

import torch
from accelerate import Accelerator
from tqdm import tqdm

from ..models import CViViT, MaskGitTransformer
from ..pipelines import PhenakiPipeline
from ..schedulers import MaskGitScheduler
from ..text import TextEncoder
from . import losses
from .batches import folder_batches, on_device, shapes_world_batches
from .code_transfer import code_cooccurrence, transfer_codes, transfer_time_positions
from .common import EMA, Budget, Checkpointer, TextCache, add_run_arguments, learning_rate, warm_start


def add_arguments(p: argparse.ArgumentParser):
    add_run_arguments(p, batch_videos=32, batch_images=8)  # --batch-images 0: video only (Table 2)
    p.add_argument("--tokenizer", required=True, help="folder of a trained CViViT (save_pretrained)")
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
    acc = Accelerator(mixed_precision=args.mixed_precision)
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
    ema = EMA(model, decay=0.998)
    ckpt, step = Checkpointer(args.out, 60 * args.checkpoint_minutes), 0
    if args.resume and (state := ckpt.load()) is not None:
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        ema.model.load_state_dict(state["ema"]); step = state["step"]
        acc.print(f"resumed at step {step}")
    model, opt = acc.prepare(model, opt)
    ema.model.to(acc.device)  # the copy was made before prepare moved the model
    mask_id = config["codebook_size"]
    tp = tokenizer.config.temporal_patch_size
    k_latent = tokenizer.latent_frames(args.context_frames)

    seed = args.seed * 1000 + step + acc.process_index
    batches = training_batches(args, tokenizer, seed)
    gen = torch.Generator().manual_seed(seed)
    budget = Budget(args.steps, args.minutes, start_step=step)
    bar = tqdm(total=args.steps, initial=step, disable=not acc.is_local_main_process, dynamic_ncols=True)
    t0 = time.time()
    while not budget.done(step):
        b = next(batches).with_stills(args.still_fraction)
        with torch.no_grad():
            video_tokens = tokenizer.tokenize(on_device(b.videos, acc.device))
            image_tokens = tokenizer.tokenize(on_device(b.images, acc.device)) if len(b.images) else video_tokens[:0, :1]
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
        plain_continuation = (b.context_frames == 0) & (torch.rand(n_v, generator=gen) < args.continuation_fraction)
        prefix = torch.where(plain_continuation, k_latent, prefix)
        prefix = torch.cat([prefix, torch.zeros(n_i, dtype=torch.long)]).to(acc.device)
        inputs, masked = losses.prepare_masked_batch(tokens, is_image, mask_id, prefix, generator=None)
        states, mask = text(b.video_captions + b.image_captions, acc.device)
        drop = torch.rand(len(states), generator=gen).to(acc.device) < args.text_dropout
        with acc.autocast():
            logits = model(inputs, states[:n_v + n_i], mask[:n_v + n_i], drop[:n_v + n_i], logits_at=masked)
            weight = torch.where(is_image, args.image_weight, 1.0)
            loss = losses.masked_token_loss(logits, tokens, masked, args.object_weight, weight)
            targets = tokens[masked]
            if len(single_tokens):
                single = torch.ones(len(single_tokens), dtype=torch.bool, device=acc.device)
                single_inputs, single_masked = losses.prepare_masked_batch(single_tokens, single, mask_id)
                single_logits = model(single_inputs, states[n_v + n_i:], mask[n_v + n_i:], drop[n_v + n_i:],
                                      logits_at=single_masked)
                single_weight = torch.full_like(single, args.image_weight, dtype=torch.float)
                single_loss = losses.masked_token_loss(single_logits, single_tokens, single_masked,
                                                       args.object_weight, single_weight)
                counts = [losses.masked_token_weights(t, m, args.object_weight, w).sum()
                          for t, m, w in ((tokens, masked, weight), (single_tokens, single_masked, single_weight))]
                loss = (loss * counts[0] + single_loss * counts[1]) / (counts[0] + counts[1])
                logits, targets = torch.cat([logits, single_logits]), torch.cat([targets, single_tokens[single_masked]])
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        acc.clip_grad_norm_(model.parameters(), 1.0)
        for group in opt.param_groups:
            group["lr"] = learning_rate(args.lr, step, budget, 300, args.lr_decay)
        opt.step()
        ema.update(acc.unwrap_model(model), step)
        with torch.no_grad():
            right = logits.argmax(-1) == targets
            acc_masked = right.float().mean().item()
            on_object = losses.object_tokens(tokens)[masked]
            if len(single_tokens):
                on_object = torch.cat([on_object, losses.object_tokens(single_tokens)[single_masked]])
            acc_object = right[on_object].float().mean().item() if on_object.any() else float("nan")
        record = {"step": step, "loss": loss.item(), "token_acc": acc_masked, "object_acc": acc_object}
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc_masked:.2f}", object_acc=f"{acc_object:.2f}")
        if step % args.eval_every == 0 and acc.is_main_process:
            from ..eval.evaluate import quick_adherence

            pipe = assemble(text_encoder, tokenizer, ema.model)
            record["seen"] = quick_adherence(pipe, n=32)
            acc.print(f"step {step}: seen adherence {record['seen']:.0%}")
        if acc.is_main_process:
            ckpt.log({**record, "time": time.time() - t0})
        if acc.is_main_process and ckpt.due():
            save(acc, ckpt, model, opt, ema, step, text_encoder, tokenizer)
    if acc.is_main_process:
        save(acc, ckpt, model, opt, ema, step, text_encoder, tokenizer)
    bar.close()


def training_batches(args, tokenizer, seed):
    if args.videos:
        return folder_batches(args.videos, args.images, args.batch_videos, args.batch_images,
                              tokenizer.config.image_size, args.frames, args.fps, seed)
    return shapes_world_batches(seed, args.batch_videos, args.batch_images, tokenizer.config.image_size,
                                args.frames, args.story_fraction, args.workers)


def assemble(text_encoder, tokenizer, transformer) -> PhenakiPipeline:
    pipe = PhenakiPipeline(text_encoder, tokenizer, transformer, MaskGitScheduler(mask_token_id=transformer.mask_token_id))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save(acc, ckpt, model, opt, ema, step, text_encoder, tokenizer):
    ckpt.save({"model": acc.unwrap_model(model).state_dict(), "opt": opt.state_dict(),
               "ema": ema.model.state_dict(), "step": step})
    assemble(text_encoder, tokenizer, ema.model).save_pretrained(ckpt.dir / "pipeline")
    ckpt.plot(["loss", "token_acc", "object_acc", "seen"])
