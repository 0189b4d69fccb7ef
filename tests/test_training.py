"""Gradients flow where they should: tiny models overfit one clip; the trainers run and resume."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from phenaki_core import CViViT, MaskGitTransformer
from phenaki_core.data import shapes_world as sw
from phenaki_core.training import losses
from phenaki_core.training.batches import on_device, shapes_world_batches
from phenaki_core.training.prior_tokens import redraw_tokens

TINY_TOKENIZER = {"width": 32, "heads": 2, "spatial_depth": 1, "temporal_depth": 1, "head_channels": 8}
TINY_TRANSFORMER = {"width": 32, "depth": 1, "heads": 2}


def one_clip(size=32):
    scene = sw.sample_video_scene(np.random.default_rng(0), size)
    frames = sw.render(scene, 11, size)
    return torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1


def test_tokenizer_overfits_one_clip():
    torch.manual_seed(0)
    model = CViViT(image_size=32, **TINY_TOKENIZER)
    clip = one_clip()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        loss = losses.reconstruction_loss(model(clip)[0], clip)
        first = first or loss.item()
        opt.zero_grad(); loss.backward(); opt.step()
    assert loss.item() < 0.05 * first, (first, loss.item())


def test_transformer_overfits_masked_prediction_of_one_clip():
    torch.manual_seed(0)
    tr = MaskGitTransformer(codebook_size=64, latent_frames=6, grid=4, text_dim=8, **TINY_TRANSFORMER)
    tokens = torch.randint(0, 64, (1, 6, 4, 4)).expand(8, -1, -1, -1)
    text, mask = torch.randn(1, 3, 8).expand(8, -1, -1), torch.ones(8, 3, dtype=torch.bool)
    opt = torch.optim.Adam(tr.parameters(), lr=3e-3)
    no_images = torch.zeros(8, dtype=torch.bool)
    for _ in range(300):
        inputs, masked = losses.prepare_masked_batch(tokens, no_images, tr.mask_token_id)
        loss = losses.masked_token_loss(tr(inputs, text, mask, logits_at=masked), tokens, masked)
        opt.zero_grad(); loss.backward(); opt.step()
    inputs = tokens.clone()
    inputs[:, 3:] = tr.mask_token_id  # predict the second half from the first
    predicted = tr(inputs, text, mask).argmax(-1)
    assert (predicted[:, 3:] == tokens[:, 3:]).float().mean() > 0.95


def test_image_loss_covers_only_the_first_frame():
    tokens = torch.randint(0, 10, (4, 6, 4, 4))
    is_image = torch.tensor([True, False, True, False])
    inputs, masked = losses.prepare_masked_batch(tokens, is_image, 10, generator=torch.Generator().manual_seed(0))
    assert not masked[is_image][:, 1:].any() and masked[is_image][:, 0].any()
    assert (inputs[is_image][:, 1:] == 10).all()  # an image's later frames are unknown, never targets


def test_prefix_is_never_masked():
    tokens = torch.randint(0, 10, (16, 6, 4, 4))
    _, masked = losses.prepare_masked_batch(tokens, torch.zeros(16, dtype=torch.bool), 10, torch.full((16,), 3))
    assert not masked[:, :3].any() and masked[:, 3:].flatten(1).any(1).all()


def test_object_weight_counts_the_tokens_that_differ_from_the_background():
    targets = torch.zeros(1, 1, 4, 4, dtype=torch.long)  # background token 0 ...
    targets[0, 0, 1, 1] = 5  # ... and one object token
    logits = torch.zeros(1, 1, 4, 4, 8)
    logits[..., 0] = 30.0  # every position predicts the background: only the object token is wrong
    mask = torch.ones_like(targets, dtype=torch.bool)
    plain = losses.masked_token_loss(logits[mask], targets, mask)
    weighted = losses.masked_token_loss(logits[mask], targets, mask, object_weight=4.0)
    ce_object = torch.nn.functional.cross_entropy(logits[0, 0, 1, 1][None], targets[0, 0, 1, 1][None])
    assert torch.isclose(weighted, ce_object * 4 / (15 + 4), atol=1e-4)
    assert weighted > 3 * plain


def test_sample_weight_scales_each_samples_share_of_the_loss():
    targets = torch.zeros(2, 1, 2, 2, dtype=torch.long)
    logits = torch.zeros(2, 1, 2, 2, 4)
    logits[0, ..., 0] = 30.0  # sample 0 right everywhere, sample 1 uniform over 4 codes
    mask = torch.ones_like(targets, dtype=torch.bool)
    even = losses.masked_token_loss(logits[mask], targets, mask)
    heavy = losses.masked_token_loss(logits[mask], targets, mask, sample_weight=torch.tensor([1.0, 3.0]))
    assert torch.isclose(even, torch.log(torch.tensor(4.0)) / 2, atol=1e-4)
    assert torch.isclose(heavy, torch.log(torch.tensor(4.0)) * 3 / 4, atol=1e-4)


def test_losses_of_two_batches_weighed_by_their_weights_are_the_loss_of_both_as_one():
    # What the transformer trainer does with the images it trains alone (a batch of its own).
    g = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 3, (5, 1, 4, 4), generator=g)  # many tokens off the background one
    mask = torch.rand(targets.shape, generator=g) < 0.6
    logits = torch.randn(int(mask.sum()), 8, generator=g)
    weight = torch.tensor([1.0, 1.0, 2.0, 2.0, 2.0])
    joint = losses.masked_token_loss(logits, targets, mask, 4.0, weight)
    n = int(mask[:2].sum())
    parts = [(logits[:n], targets[:2], mask[:2], weight[:2]), (logits[n:], targets[2:], mask[2:], weight[2:])]
    loss = [losses.masked_token_loss(lg, t, m, 4.0, w) for lg, t, m, w in parts]
    count = [losses.masked_token_weights(t, m, 4.0, w).sum() for _, t, m, w in parts]
    assert torch.isclose((loss[0] * count[0] + loss[1] * count[1]) / (count[0] + count[1]), joint)
    assert not torch.isclose((loss[0] + loss[1]) / 2, joint)  # a plain mean of the two would not be


def test_a_batch_without_videos_is_refused_clearly():
    out = run("train-transformer", "--tokenizer", "x", "--out", "y", "--batch-videos", "0")
    assert out.returncode != 0 and "--batch-videos: must be at least 1" in out.stderr and "Traceback" not in out.stderr


def test_object_weighting_does_not_favour_bleeding_colour_outward():
    target = -torch.ones(1, 3, 3, 16, 16)
    target[..., 6:10, 6:10] = 1  # a small object on a flat background
    bleed, miss = target.clone(), target.clone()
    bleed[..., 5, 6:10] = 1  # one row of colour outside the edge
    miss[..., 6, 6:10] = -1  # one row missing inside it
    a, b = (losses.reconstruction_loss(x, target, object_weight=8.0) for x in (bleed, miss))
    assert torch.isclose(a, b) and a > losses.reconstruction_loss(bleed, target)


def test_warm_start_copies_what_fits_and_names_what_starts_fresh():
    from phenaki_core.training.common import warm_start

    source = CViViT(image_size=32, **TINY_TOKENIZER)
    target = CViViT(image_size=32, **{**TINY_TOKENIZER, "fsq_levels": (8, 5, 5, 5, 5)})
    fresh = warm_start(target, source)
    assert set(fresh) == {"to_code.weight", "to_code.bias", "from_code.weight"}
    assert torch.equal(target.enc_spatial_pos, source.enc_spatial_pos)
    assert not torch.equal(target.to_code.weight[:4], source.to_code.weight)


def test_rendering_workers_each_draw_their_own_batches_as_uint8():
    batches = shapes_world_batches(seed=3, n_videos=3, n_images=2, size=32, workers=2)
    first, second = next(batches), next(batches)
    assert first.videos.dtype == torch.uint8 and first.videos.shape == (3, 3, sw.CLIP_FRAMES, 32, 32)
    assert first.images.shape == (2, 3, 1, 32, 32) and len(first.video_captions) == 3
    assert not torch.equal(first.videos, second.videos)  # two workers, two streams, not one stream twice
    frames = on_device(first.videos, "cpu")
    assert frames.dtype == torch.float32 and frames.min() >= -1 and frames.max() <= 1
    assert torch.equal(frames, first.videos.float() / 127.5 - 1)


def test_stills_join_the_videos_as_plain_clips_of_their_image():
    b = next(shapes_world_batches(seed=5, n_videos=3, n_images=4, size=32))
    s = b.with_stills(0.5)
    assert s.videos.shape == (5, 3, sw.CLIP_FRAMES, 32, 32) and torch.equal(s.videos[:3], b.videos)
    assert torch.equal(s.videos[3], b.images[0].expand(-1, sw.CLIP_FRAMES, -1, -1))
    assert s.video_captions == b.video_captions + b.image_captions[:2]
    assert s.context_frames.tolist() == b.context_frames.tolist() + [0, 0]  # scored on every frame
    assert torch.equal(s.images, b.images) and b.with_stills(0.0) is b


def run(*args):
    return subprocess.run([sys.executable, "-m", "phenaki_core.cli", *args], capture_output=True, text=True, timeout=600)


def test_trainers_run_resume_and_generate(tmp_path):
    tok = run("train-tokenizer", "--out", str(tmp_path / "tok"), "--steps", "3", "--size", "32", "--batch-videos", "2",
              "--batch-images", "2", "--eval-every", "1000", "--adv-start", "1", "--config", json.dumps(TINY_TOKENIZER))
    assert tok.returncode == 0, tok.stderr[-2000:]
    again = run("train-tokenizer", "--out", str(tmp_path / "tok"), "--steps", "5", "--size", "32", "--batch-videos", "2",
                "--batch-images", "2", "--eval-every", "1000", "--resume", "--config", json.dumps(TINY_TOKENIZER))
    assert again.returncode == 0 and "resumed at step 3" in again.stdout + again.stderr
    steps = [json.loads(line)["step"] for line in open(tmp_path / "tok" / "log.jsonl")]
    assert steps == [0, 1, 2, 3, 4]
    assert (tmp_path / "tok" / "loss.png").stat().st_size > 1000

    tr = run("train-transformer", "--tokenizer", str(tmp_path / "tok" / "cvivit"), "--out", str(tmp_path / "tr"),
             "--steps", "3", "--batch-videos", "2", "--batch-images", "4", "--still-fraction", "0.5", "--eval-every", "1000",
             "--single-frame-images", "0.5", "--workers", "2",
             "--config", json.dumps(TINY_TRANSFORMER))
    assert tr.returncode == 0, tr.stderr[-2000:]
    model = tmp_path / "tr" / "pipeline"
    out = tmp_path / "story.npy"
    gen = run("generate", "--model", str(model), "--prompt", "a red circle moves left", "--prompt",
              "a blue circle moves left", "--frames", "8", "--steps", "2", "--out", str(out))
    assert gen.returncode == 0, gen.stderr[-2000:]
    frames = np.load(out)
    assert frames.shape == (16, 32, 32, 3) and frames.dtype == np.uint8
    sidecar = tmp_path / "story.story.json"
    again = run("generate", "--model", str(model), "--story", str(sidecar), "--out", str(tmp_path / "again.npy"))
    assert again.returncode == 0, again.stderr[-2000:]
    assert np.array_equal(np.load(tmp_path / "again.npy"), frames)

    bad = run("generate", "--model", str(model), "--prompt", "", "--out", str(tmp_path / "x.npy"))
    assert bad.returncode != 0 and "is empty" in bad.stderr and "Traceback" not in bad.stderr

    # The decoder trained on the transformer's own redraws of its tokens (--prior).
    tok_args = ["--size", "32", "--batch-videos", "2", "--batch-images", "2", "--eval-every", "1000",
                "--config", json.dumps(TINY_TOKENIZER)]
    prior = run("train-tokenizer", "--out", str(tmp_path / "dec"), "--init", str(model / "vqvae"), "--decoder-only",
                "--prior", str(model), "--prior-rows", "1", "--steps", "2", *tok_args)
    assert prior.returncode == 0, prior.stderr[-2000:]
    clip = one_clip()
    assert torch.equal(CViViT.from_pretrained(tmp_path / "dec" / "cvivit").tokenize(clip),
                       CViViT.from_pretrained(model / "vqvae").tokenize(clip))
    whole = run("train-tokenizer", "--out", str(tmp_path / "dec2"), "--init", str(model / "vqvae"),
                "--prior", str(model), "--steps", "1", *tok_args)
    assert whole.returncode != 0 and "give --decoder-only" in whole.stderr and "Traceback" not in whole.stderr
    torch.manual_seed(1)
    CViViT(image_size=32, **TINY_TOKENIZER).save_pretrained(tmp_path / "other")
    other = run("train-tokenizer", "--out", str(tmp_path / "dec3"), "--init", str(tmp_path / "other"), "--decoder-only",
                "--prior", str(model), "--steps", "1", *tok_args)
    assert other.returncode != 0 and "tokens differ" in other.stderr and "Traceback" not in other.stderr


def test_decoder_only_training_leaves_the_encoder_and_so_the_tokens_unchanged(tmp_path):
    torch.manual_seed(0)
    CViViT(image_size=32, **TINY_TOKENIZER).save_pretrained(tmp_path / "start")
    out = run("train-tokenizer", "--out", str(tmp_path / "run"), "--init", str(tmp_path / "start"), "--decoder-only",
              "--steps", "3", "--size", "32", "--batch-videos", "2", "--batch-images", "2", "--eval-every", "1000",
              "--lr", "1e-2", "--config", json.dumps(TINY_TOKENIZER))
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = CViViT.from_pretrained(tmp_path / "start"), CViViT.from_pretrained(tmp_path / "run" / "cvivit")
    clip = one_clip()
    assert torch.equal(before.tokenize(clip), after.tokenize(clip))
    assert not torch.equal(before.head[0].weight, after.head[0].weight)  # the decoder did train


def test_a_motion_head_added_to_a_trained_tokenizer_trains_alone_with_its_decoder(tmp_path):
    """The shipped way to add the motion head: decoder-only from a tokenizer without one,
    so the tokens, and the transformer trained on them, stay valid."""
    torch.manual_seed(0)
    CViViT(image_size=32, **TINY_TOKENIZER).save_pretrained(tmp_path / "start")
    out = run("train-tokenizer", "--out", str(tmp_path / "run"), "--init", str(tmp_path / "start"), "--decoder-only",
              "--steps", "3", "--size", "32", "--batch-videos", "2", "--batch-images", "2", "--eval-every", "1000",
              "--lr", "1e-2", "--config", json.dumps({**TINY_TOKENIZER, "motion_head": True}))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "these start fresh" in out.stdout + out.stderr and "motion.weight" in out.stdout + out.stderr
    before, after = CViViT.from_pretrained(tmp_path / "start"), CViViT.from_pretrained(tmp_path / "run" / "cvivit")
    assert after.config.motion_head and not before.config.motion_head
    clip = one_clip()
    assert torch.equal(before.tokenize(clip), after.tokenize(clip))
    assert after.motion.weight.abs().sum() > 0  # trained from its zero init
    rows = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert all(0 < r["motion_l2"] and 0 <= r["drawn"] <= 1 for r in rows)

    # Training on from it, with no --config, keeps its architecture and so its motion head.
    more = run("train-tokenizer", "--out", str(tmp_path / "more"), "--init", str(tmp_path / "run" / "cvivit"),
               "--decoder-only", "--steps", "1", "--size", "32", "--batch-videos", "2", "--batch-images", "2",
               "--eval-every", "1000")
    assert more.returncode == 0, more.stderr[-2000:]
    assert "start fresh" not in more.stdout + more.stderr
    assert CViViT.from_pretrained(tmp_path / "more" / "cvivit").config.motion_head


def test_code_transfer_moves_each_code_table_row_to_the_new_code_found_in_its_place():
    from phenaki_core.training.code_transfer import transfer_codes

    torch.manual_seed(0)
    old = MaskGitTransformer(codebook_size=8, latent_frames=2, grid=2, text_dim=8, **TINY_TRANSFORMER)
    new = MaskGitTransformer.from_config(old.config)
    new.load_state_dict(old.state_dict())
    perm = torch.tensor([3, 0, 1, 2, 5, 4, 6, 7])  # new code c stood where old code perm[c] stood
    counts = torch.zeros(8, 8, dtype=torch.float64)
    counts[torch.arange(7), perm[:7]] = 10.0  # new code 7 never occurs
    assert transfer_codes(new, counts) == 1
    tokens = torch.tensor([[[[0, 1], [2, 4]], [[5, 6], [8, 3]]]])  # 8: the mask id, which keeps its row
    text, mask = torch.randn(1, 3, 8), torch.ones(1, 3, dtype=torch.bool)
    old_tokens = torch.where(tokens < 7, perm[tokens.clamp(max=6)], tokens)
    with torch.no_grad():
        mapped, original = new(tokens, text, mask), old(old_tokens, text, mask)
    assert torch.allclose(mapped[..., :7], original[..., perm[:7]], atol=1e-5)
    assert torch.equal(new.to_logits.weight[7], old.to_logits.weight[7])

    counts[2, 5] = 10.0  # a new code found half where old code 1 was, half where old code 5 was
    again = MaskGitTransformer.from_config(old.config)
    again.load_state_dict(old.state_dict())
    transfer_codes(again, counts)
    halfway = (old.token_emb.weight[1] + old.token_emb.weight[5]) / 2
    assert torch.allclose(again.token_emb.weight[2], halfway, atol=1e-6)


def test_code_cooccurrence_of_a_tokenizer_with_itself_is_its_code_counts():
    from phenaki_core.training.code_transfer import code_cooccurrence

    torch.manual_seed(0)
    tok = CViViT(image_size=32, **TINY_TOKENIZER).eval()
    batch = next(shapes_world_batches(seed=2, n_videos=2, n_images=2, size=32))
    counts = code_cooccurrence(tok, tok, [batch])
    assert counts.sum() == 2 * 6 * 16 + 2 * 16  # every position of every clip and image, once
    assert counts.sum() == counts.diag().sum()
    other = CViViT(image_size=32, **{**TINY_TOKENIZER, "fsq_levels": (8, 5, 5, 5)})
    with pytest.raises(ValueError, match="same codebook size"):
        code_cooccurrence(tok, other, [batch])


def test_code_transfer_matches_one_frame_tubelets_with_the_two_frame_tubelet_they_were_in():
    from phenaki_core.training.code_transfer import code_cooccurrence, transfer_time_positions

    torch.manual_seed(0)
    old = CViViT(image_size=32, **TINY_TOKENIZER).eval()
    new = CViViT(image_size=32, **{**TINY_TOKENIZER, "temporal_patch_size": 1}).eval()
    batch = next(shapes_world_batches(seed=2, n_videos=2, n_images=2, size=32))
    counts = code_cooccurrence(old, new, [batch])
    with torch.no_grad():
        videos, images = on_device(batch.videos, "cpu"), on_device(batch.images, "cpu")
        new_tokens, old_tokens = new.tokenize(videos), old.tokenize(videos)
        new_images, old_images = new.tokenize(images), old.tokenize(images)
    expected = torch.zeros(old.codebook_size**2, dtype=torch.float64)
    for t in range(11):  # frames 2t-1 and 2t were one tubelet of the old tokenizer
        pairs = new_tokens[:, t] * old.codebook_size + old_tokens[:, (t + 1) // 2]
        expected += torch.bincount(pairs.flatten(), minlength=len(expected)).double()
    expected += torch.bincount((new_images * old.codebook_size + old_images).flatten(), minlength=len(expected)).double()
    assert torch.equal(counts.flatten(), expected)

    source = MaskGitTransformer(latent_frames=6, grid=4, **TINY_TRANSFORMER)
    model = MaskGitTransformer(latent_frames=11, grid=4, **TINY_TRANSFORMER)
    transfer_time_positions(model, source, old, new)
    assert torch.equal(model.pos_t[4], source.pos_t[2]) and torch.equal(model.pos_t[5], source.pos_t[3])
    assert torch.equal(model.pos_t[0], source.pos_t[0]) and torch.equal(model.pos_t[10], source.pos_t[5])


def test_transformer_training_carries_an_init_over_to_another_tokenizer(tmp_path):
    for seed in (0, 1):
        torch.manual_seed(seed)
        CViViT(image_size=32, **TINY_TOKENIZER).save_pretrained(tmp_path / f"tok{seed}")
    MaskGitTransformer(latent_frames=6, grid=4, **TINY_TRANSFORMER).save_pretrained(tmp_path / "init")
    common = ["--tokenizer", str(tmp_path / "tok1"), "--init-tokenizer", str(tmp_path / "tok0"), "--steps", "2",
              "--batch-videos", "2", "--batch-images", "2", "--eval-every", "1000", "--config", json.dumps(TINY_TRANSFORMER)]
    out = run("train-transformer", "--out", str(tmp_path / "run"), "--init", str(tmp_path / "init"), *common)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "code tables carried over" in out.stdout + out.stderr
    init = MaskGitTransformer.from_pretrained(tmp_path / "init")
    trained = MaskGitTransformer.from_pretrained(tmp_path / "run" / "pipeline" / "transformer")
    assert not torch.allclose(init.token_emb.weight, trained.token_emb.weight, atol=1e-2)
    alone = run("train-transformer", "--out", str(tmp_path / "alone"), *common)
    assert alone.returncode != 0 and "give --init too" in alone.stderr and "Traceback" not in alone.stderr


def test_the_prior_redraws_only_a_share_of_the_chosen_rows_and_samples_images_as_it_trained_on_them():
    torch.manual_seed(0)
    prior = MaskGitTransformer(codebook_size=16, latent_frames=3, grid=4, text_dim=8, **TINY_TRANSFORMER).eval()
    with torch.no_grad():  # a transformer that always draws code 7
        prior.to_logits.weight.zero_()
        prior.to_logits.bias.fill_(-30.0)[7] = 30.0
    states, mask = torch.randn(4, 5, 8), torch.ones(4, 5, dtype=torch.bool)
    for frames in (3, 1):  # a clip; an image, whose later frames the prior sees masked
        tokens = torch.randint(0, 7, (4, frames, 4, 4))
        rows = torch.tensor([True, True, True, False])
        out = redraw_tokens(prior, tokens, states, mask, 0.5, rows, torch.Generator().manual_seed(0))
        changed = out != tokens
        assert out.shape == tokens.shape and changed[:3].any() and not changed[3].any()
        assert (out[changed] == 7).all()
        assert changed[:3].flatten(1).float().mean(1).max() < 1  # a share, not the whole clip
    assert torch.equal(redraw_tokens(prior, tokens, states, mask, 0.0, rows), tokens)
