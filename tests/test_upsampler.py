"""The token upsampler: same tokens, frames `scale` times larger; causal, saved and loaded as a
diffusers component, trained on paired renders; and the plain upscale for a model without one."""
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from phenaki_core import CViViT
from phenaki_core.data import shapes_world as sw
from phenaki_core.models.upsampler import TokenUpsampler, decode_tokens, upscale_video
from phenaki_core.training.train_upsampler import (
    paired_batches,
    render_pair,
    story_pair,
)


@pytest.fixture(scope="module")
def cvivit():
    torch.manual_seed(0)
    return CViViT(image_size=32, width=32, heads=2, spatial_depth=1, temporal_depth=2, head_channels=8).eval()


@pytest.fixture(scope="module")
def upsampler(cvivit):
    torch.manual_seed(1)
    model = TokenUpsampler.from_tokenizer(cvivit, scale=2, channels=8, blocks=1).eval()
    with torch.no_grad():  # a trained-looking head: an untrained one adds exactly zero to the upscale
        for p in model.up.parameters():
            p.normal_(0, 0.05)
    return model


def tokens_of(cvivit, frames=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return cvivit.tokenize(torch.rand(2, 3, frames, 32, 32, generator=g) * 2 - 1)


def test_upsampler_is_causal_bit_for_bit(cvivit, upsampler):
    tokens = tokens_of(cvivit)
    other = tokens.clone()
    other[:, 4:] = (other[:, 4:] + 7) % cvivit.codebook_size
    a, b = upsampler.detokenize(tokens), upsampler.detokenize(other)
    assert a.shape == (2, 3, 11, 64, 64)
    assert torch.equal(a[:, :, :7], b[:, :, :7])  # frames 0..6 come from latent frames 0..3
    assert not torch.equal(a[:, :, 7:], b[:, :, 7:])


def test_a_prefix_draws_the_same_alone_or_inside_a_clip(cvivit, upsampler):
    tokens = tokens_of(cvivit)
    assert torch.allclose(upsampler.detokenize(tokens[:, :3]), upsampler.detokenize(tokens)[:, :, :5], atol=1e-5)


def test_drawing_chosen_frames_matches_drawing_all(cvivit, upsampler):
    tokens = tokens_of(cvivit)
    pick = torch.tensor([[0, 3, 10], [2, 5, 6]])
    with torch.no_grad():
        whole, some = upsampler(tokens), upsampler(tokens, pick)
    assert torch.allclose(some, whole[torch.arange(2)[:, None], :, pick].permute(0, 2, 1, 3, 4), atol=1e-6)


def test_starts_from_the_tokenizers_decoder(cvivit):
    """Untrained, it draws the tokenizer's own frames upscaled bilinearly: training starts from there."""
    fresh = TokenUpsampler.from_tokenizer(cvivit, scale=2, channels=8, blocks=1).eval()
    tokens = tokens_of(cvivit)
    with torch.no_grad():
        own = cvivit.decode(cvivit.quantizer.indices_to_codes(tokens))
        drawn = fresh(tokens)
    frames = own.transpose(1, 2).flatten(0, 1)
    expected = F.interpolate(frames, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(drawn.transpose(1, 2).flatten(0, 1), expected, atol=1e-5)


def test_refuses_a_tokenizer_with_a_motion_head():
    moving = CViViT(image_size=32, width=32, heads=2, spatial_depth=1, temporal_depth=1, head_channels=8, motion_head=True)
    with pytest.raises(ValueError, match="motion head"):
        TokenUpsampler.from_tokenizer(moving)


def test_saves_and_loads_as_a_diffusers_component(cvivit, upsampler, tmp_path):
    upsampler.save_pretrained(tmp_path / "upsampler")
    loaded = TokenUpsampler.from_pretrained(tmp_path / "upsampler").eval()
    assert loaded.config.scale == 2 and loaded.output_size == 64
    tokens = tokens_of(cvivit)
    assert torch.equal(loaded.detokenize(tokens), upsampler.detokenize(tokens))


def test_decode_tokens_uses_the_upsampler_at_its_size(cvivit, upsampler):
    tokens = tokens_of(cvivit)
    assert torch.equal(decode_tokens(cvivit, tokens, 64, upsampler), upsampler.detokenize(tokens))


def test_decode_tokens_falls_back_to_upscaling_without_an_upsampler(cvivit, upsampler):
    tokens = tokens_of(cvivit)
    own = cvivit.detokenize(tokens)
    for size, model in ((64, None), (96, upsampler)):  # no upsampler; a size it does not draw
        video = decode_tokens(cvivit, tokens, size, model)
        assert video.shape == (2, 3, 11, size, size)
        assert torch.equal(video, upscale_video(own, size, "bicubic"))
        assert video.min() >= -1 and video.max() <= 1
    assert torch.equal(decode_tokens(cvivit, tokens), own)  # no size: the tokenizer's own frames
    nearest = decode_tokens(cvivit, tokens, 64, None, mode="nearest")
    assert torch.equal(nearest, own.repeat_interleave(2, -1).repeat_interleave(2, -2))


def test_decode_tokens_ignores_an_upsampler_for_other_tokens(cvivit, upsampler):
    other = CViViT(image_size=32, width=32, heads=2, spatial_depth=1, temporal_depth=2, head_channels=8,
                   fsq_levels=(8, 5, 5, 5)).eval()
    tokens = tokens_of(other)
    assert torch.equal(decode_tokens(other, tokens, 64, upsampler), upscale_video(other.detokenize(tokens), 64))


def test_bad_sizes_and_modes_are_refused_plainly(cvivit):
    tokens = tokens_of(cvivit)
    with pytest.raises(ValueError, match="size must be positive"):
        decode_tokens(cvivit, tokens, -64)
    with pytest.raises(ValueError, match="unknown upscaling mode"):
        decode_tokens(cvivit, tokens, 64, mode="lanczos9")


# -- paired renders ---------------------------------------------------------------------------

def _centroid(frame: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero((frame != frame[0, 0]).any(-1))
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])


def test_a_scene_renders_the_same_at_two_sizes():
    scene = sw.sample_video_scene(np.random.default_rng(3))
    small, large = render_pair(scene, 11, 64, 4)
    assert small.shape == (11, 64, 64, 3) and large.shape == (11, 256, 256, 3)
    for a, b in zip(small, large):
        assert np.abs(_centroid(b) / 4 - _centroid(a)).max() <= 0.75  # same place, same path (a 64-pixel sampling step is 1 px)
    area = large.reshape(11, 64, 4, 64, 4, 3).mean((2, 4))
    assert np.mean(np.abs(area - small) > 60) < 0.02  # they differ only along edges


def test_a_story_clip_renders_the_same_at_two_sizes():
    small, large = story_pair(np.random.default_rng(5))
    assert small.shape == (11, 64, 64, 3) and large.shape == (11, 256, 256, 3)
    colours = [tuple(a[tuple(np.argwhere((a != a[0, 0]).any(-1))[0])]) for a in small]
    assert len(set(colours)) <= 2  # a colour change at most, as sample_story_clip draws it
    for a, b in zip(small, large):
        assert np.abs(_centroid(b) / 4 - _centroid(a)).max() <= 0.75
        assert tuple(b[tuple(np.argwhere((b != b[0, 0]).any(-1))[0])]) in colours


def test_paired_batches_mix_clips_and_images_at_both_sizes():
    v, v_large, i, i_large = next(paired_batches(0, 3, 2, 64, 2))
    assert v.shape == (3, 3, 11, 64, 64) and v_large.shape == (3, 3, 11, 128, 128)
    assert i.shape == (2, 3, 1, 64, 64) and i_large.shape == (2, 3, 1, 128, 128)
    assert v.dtype == torch.uint8


# -- the trainer ------------------------------------------------------------------------------

def test_trainer_arguments_load_without_torch():
    code = ("import sys, argparse; sys.modules['torch'] = None\n"
            "import importlib.util, pathlib\n"
            "spec = importlib.util.spec_from_file_location('t', 'phenaki_core/training/train_upsampler.py')\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "p = argparse.ArgumentParser(); m.add_arguments(p); print(p.parse_args(['--out', 'x']).scale)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "4"


def test_the_trainer_is_a_phenaki_command():
    out = subprocess.run([sys.executable, "-m", "phenaki_core.cli", "train-upsampler", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--bank-clips" in out.stdout and "--loss" in out.stdout


def test_trainer_runs_saves_and_resumes(cvivit, tmp_path):
    import argparse
    import json

    from phenaki_core.training import train_upsampler

    cvivit.save_pretrained(tmp_path / "vq")
    p = argparse.ArgumentParser()
    train_upsampler.add_arguments(p)
    argv = ["--out", str(tmp_path / "run"), "--tokenizer", str(tmp_path / "vq"), "--scale", "2", "--channels", "8",
            "--blocks", "1", "--bank-clips", "2", "--bank-images", "2", "--crop", "8", "--margin", "1",
            "--batch-crops", "4", "--eval-every", "2"]
    train_upsampler.main(p.parse_args([*argv, "--steps", "2"]))
    before = TokenUpsampler.from_pretrained(tmp_path / "run" / "upsampler")
    assert before.output_size == 64
    trunk = {k: v for k, v in before.state_dict().items() if not k.startswith("up.")}
    shipped = cvivit.state_dict()
    assert all(torch.equal(v, shipped[k]) for k, v in trunk.items())  # the trunk is the tokenizer's decoder, untouched
    assert any(p.abs().sum() > 0 for p in before.up[-1].parameters())  # the head (last layer zero at start) learned
    train_upsampler.main(p.parse_args([*argv, "--steps", "3", "--resume"]))
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # resumed at 2, not from scratch
    assert "psnr" in rows[1] and "psnr_bicubic" in rows[1]
    assert (tmp_path / "run" / "loss.png").is_file()


# -- the pipeline -----------------------------------------------------------------------------

def test_a_pipeline_loads_it_as_an_optional_component_and_falls_back_without(tiny_pipe, tmp_path):
    """The wiring proposed for PhenakiPipeline (an optional `upsampler` component), on a
    subclass here: saved and loaded with the pipeline when the model has one, None when not,
    and decoding falls back to the plain upscale then."""
    from phenaki_core import PhenakiPipeline

    class WithUpsampler(PhenakiPipeline):
        _optional_components = ["upsampler"]  # noqa: RUF012 (a list, as diffusers declares it)

        def __init__(self, text_encoder, vqvae, transformer, scheduler, fps: int = 8, upsampler=None):
            super().__init__(text_encoder, vqvae, transformer, scheduler, fps)
            self.register_modules(upsampler=upsampler)

    up = TokenUpsampler.from_tokenizer(tiny_pipe.vqvae, scale=2, channels=8, blocks=1).eval()
    parts = (tiny_pipe.text_encoder, tiny_pipe.vqvae, tiny_pipe.transformer, tiny_pipe.scheduler)
    WithUpsampler(*parts, upsampler=up).save_pretrained(tmp_path / "with")
    WithUpsampler(*parts).save_pretrained(tmp_path / "without")
    loaded = WithUpsampler.from_pretrained(tmp_path / "with")
    bare = WithUpsampler.from_pretrained(tmp_path / "without")
    assert isinstance(loaded.upsampler, TokenUpsampler) and bare.upsampler is None
    tokens = torch.randint(0, tiny_pipe.vqvae.codebook_size, (1, 6, 4, 4))
    loaded.upsampler.eval()
    assert torch.equal(decode_tokens(loaded.vqvae, tokens, 64, loaded.upsampler), up.detokenize(tokens))
    fallback = decode_tokens(bare.vqvae, tokens, 64, bare.upsampler)
    assert torch.equal(fallback, upscale_video(tiny_pipe.vqvae.detokenize(tokens), 64))
    # PhenakiPipeline itself now declares the component (tests/test_upsampler_wiring.py).
    assert isinstance(PhenakiPipeline.from_pretrained(tmp_path / "with").upsampler, TokenUpsampler)


def test_a_story_segment_redraws_from_its_tokens(tiny_pipe):
    """Each clip's tokens, minus the context it continued, give the segment's frames again:
    at the tokenizer's size exactly those the story engine rendered."""
    from phenaki_core.models.upsampler import redraw_segment
    from phenaki_core.story import Segment, Story, render_segment

    story = Story([Segment("a red circle moves right", 6, 1, "continue"), Segment("a red circle moves up", 14, 2, "continue")],
                  num_inference_steps=2, context_frames=5)
    first = render_segment(tiny_pipe, story, 0, None)
    second = render_segment(tiny_pipe, story, 1, first.frames)
    assert len(second.tokens) == 3  # 6 + 6 + 6 new frames for 14
    assert np.array_equal(redraw_segment(tiny_pipe.vqvae, first.tokens, [0], 6, 32), first.frames)
    assert np.array_equal(redraw_segment(tiny_pipe.vqvae, second.tokens, [5, 5, 5], 14, 32), second.frames)
    large = redraw_segment(tiny_pipe.vqvae, second.tokens, [5, 5, 5], 14, 64)
    assert large.shape == (14, 64, 64, 3) and large.dtype == np.uint8
    with pytest.raises(ValueError, match="context lengths"):
        redraw_segment(tiny_pipe.vqvae, second.tokens, [5], 14, 64)
