"""The shipped default model: loads offline, is small, generates through the CLI and the studio."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from phenaki_core.eval import check_clip
from phenaki_core.io import load_sidecar
from phenaki_core.pipelines import DEFAULT_MODEL, load_pipeline
from phenaki_core.story import Segment, Story, StoryRenderer

pytestmark = pytest.mark.default_model


@pytest.fixture(scope="module")
def default_pipe():
    return load_pipeline()


def test_model_folder_is_small_safetensors():
    files = [f for f in DEFAULT_MODEL.rglob("*") if f.is_file()]
    weights = [f for f in files if f.suffix == ".safetensors"]
    assert {f.parent.name for f in weights} == {"vqvae", "transformer", "upsampler"}
    assert not [f for f in files if f.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    assert sum(f.stat().st_size for f in files) < 60e6


def test_the_default_model_draws_256_pixels_with_its_learned_decoder(default_pipe, tmp_path):
    """The shipped upsampler loads, draws the sampled tokens at 256, and the CLI's --size 256 uses it."""
    from phenaki_core.models.upsampler import TokenUpsampler, upscale_video

    assert isinstance(default_pipe.upsampler, TokenUpsampler) and default_pipe.drawn_sizes == (64, 256)
    tokens = default_pipe("a red circle moves right", generator=torch.Generator().manual_seed(0),
                          output_type="latent").frames.flatten(0, 1)  # (batch, videos, T, g, g)
    drawn = default_pipe.upsampler.detokenize(tokens)
    plain = upscale_video(default_pipe.vqvae.detokenize(tokens), 256)
    assert drawn.shape == plain.shape == (1, 3, 11, 256, 256)
    assert (drawn - plain).abs().mean() > 0.005  # the trained head draws, not the bilinear start
    out = tmp_path / "clip.npy"
    run = subprocess.run([sys.executable, "-m", "phenaki_core.cli", "generate", "--prompt", "a red circle moves right",
                          "--frames", "11", "--size", "256", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "drawn by the model's learned decoder" in run.stderr
    assert np.load(out).shape == (11, 256, 256, 3)


def test_cli_generates_with_the_default_model(default_pipe, tmp_path):
    out = tmp_path / "clip.npy"
    prompts = ["a red circle moves right", "a blue circle moves right"]
    run = subprocess.run([sys.executable, "-m", "phenaki_core.cli", "generate", "--prompt", prompts[0],
                          "--prompt", prompts[1], "--frames", "11", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    frames = np.load(out)
    assert frames.shape == (22, 64, 64, 3) and frames.dtype == np.uint8
    # The shipped model's frames, as the library renders the story the CLI recorded, bit for bit
    story = load_sidecar(out.with_suffix(".story.json"))[0]
    assert [s.prompt for s in story.segments] == prompts and story.model_revision == default_pipe.revision
    again = StoryRenderer(default_pipe, story)
    again.render()
    assert np.array_equal(again.frames(), frames)
    # and they show what was asked: the colour of each segment (the quality floor judges the rest)
    assert check_clip(frames[:11], prompts[0]).colour and check_clip(frames[11:], prompts[1]).colour


def test_story_continues_the_default_model_exactly(default_pipe):
    story = Story([Segment("a red circle moves right", 11, seed=0), Segment("a red circle moves down", 6, seed=1)])
    r = StoryRenderer(default_pipe, story)
    r.render()
    prefix = default_pipe.encode_frames(r.results[0].frames[-5:])[0]
    assert (r.results[1].tokens[0][:3] == prefix).all()
    again = StoryRenderer(default_pipe, Story.from_json(story.to_json()))
    again.render()
    assert np.array_equal(again.frames(), r.frames())
