"""Training that grows past one machine: exact resume, two processes, token shards, real footage.

Every run here is a subprocess, the way a person runs the trainers, on tiny configs."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from phenaki_core import CViViT

TINY_TOKENIZER = {"width": 32, "heads": 2, "spatial_depth": 1, "temporal_depth": 1, "head_channels": 8}
TINY_TRANSFORMER = {"width": 32, "depth": 1, "heads": 2}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.getcwd()}


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "phenaki_core.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def file_hashes(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.safetensors"))}


def log_rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in open(run / "log.jsonl")]


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tok") / "cvivit"
    torch.manual_seed(0)
    CViViT(image_size=32, **TINY_TOKENIZER).save_pretrained(folder)
    return folder


TOKENIZER_RUN = ["train-tokenizer", "--size", "32", "--batch-videos", "2", "--batch-images", "2", "--eval-every",
                 "1000", "--adv-start", "3", "--workers", "1", "--mixed-precision", "no",
                 "--config", json.dumps(TINY_TOKENIZER)]


def transformer_run(tokenizer):
    return ["train-transformer", "--tokenizer", str(tokenizer), "--batch-videos", "2", "--batch-images", "2",
            "--still-fraction", "0.5", "--single-frame-images", "0.5", "--eval-every", "1000",
            "--workers", "1", "--mixed-precision", "no", "--config", json.dumps(TINY_TRANSFORMER)]


@pytest.mark.parametrize("trainer", ["tokenizer", "transformer"])
def test_a_run_stopped_and_resumed_is_bit_identical_to_one_straight_through(tmp_path, trainer, tiny_tokenizer):
    """Weights, EMA and every logged loss, with a data worker rendering ahead, and the adversarial
    loss switching on (tokenizer) after the stop."""
    base, exported = (TOKENIZER_RUN, "cvivit") if trainer == "tokenizer" else (
        transformer_run(tiny_tokenizer), "pipeline/transformer")
    straight = cli(*base, "--out", str(tmp_path / "straight"), "--steps", "4")
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = cli(*base, "--out", str(tmp_path / "stopped"), "--steps", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    again = cli(*base, "--out", str(tmp_path / "stopped"), "--steps", "4", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed at step 2" in again.stdout + again.stderr
    assert log_rows(tmp_path / "stopped") == log_rows(tmp_path / "straight")
    assert [r["step"] for r in log_rows(tmp_path / "straight")] == [0, 1, 2, 3]
    assert file_hashes(tmp_path / "stopped" / exported) == file_hashes(tmp_path / "straight" / exported) != {}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two(module, *args):
    """`accelerate launch --multi_gpu --num_processes 2`: torchrun's launcher, two CPU processes over gloo
    (accelerate's `--cpu` launcher starts one process unless MPI is set up)."""
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", module, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)


def test_two_processes_train_one_model_and_export_it_once(tmp_path):
    from phenaki_core import PhenakiPipeline

    tok = launch_two("phenaki_core.training.train_tokenizer", *TOKENIZER_RUN[1:], "--adv-start", "1",
                     "--grad-accum", "2", "--steps", "2", "--out", str(tmp_path / "tok"))
    assert tok.returncode == 0, tok.stderr[-3000:]
    replicas = json.loads((tmp_path / "tok" / "replicas.json").read_text())
    assert replicas["processes"] == 2 and replicas["identical"], replicas
    assert {p.name for p in (tmp_path / "tok" / "state").glob("random_states_*")} == {"random_states_0.pkl",
                                                                                      "random_states_1.pkl"}
    tr = launch_two("phenaki_core.training.train_transformer", *transformer_run(tmp_path / "tok" / "cvivit")[1:],
                    "--steps", "2", "--out", str(tmp_path / "tr"))
    assert tr.returncode == 0, tr.stderr[-3000:]
    replicas = json.loads((tmp_path / "tr" / "replicas.json").read_text())
    assert replicas["processes"] == 2 and replicas["identical"], replicas
    pipe = PhenakiPipeline.from_pretrained(tmp_path / "tr" / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    video = pipe("a red circle moves left", num_inference_steps=1, seed=0).frames
    assert video.shape[-3:] == (32, 32, 3)
