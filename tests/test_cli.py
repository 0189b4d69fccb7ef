"""The `phenaki` command as a Unix user meets it: fast help, every mistake one error line
(exit 2) before anything loads, a clear refusal of what the model cannot read, progress."""
import json
import subprocess
import sys

import numpy as np
import pytest

from phenaki_core import cli


def test_help_imports_no_torch_and_no_training_module():
    code = ("import sys\nfrom phenaki_core import cli\n"
            "for argv in (['--help'], ['generate', '--help'], ['evaluate', '--help']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit as e:\n        assert e.code == 0, e.code\n"
            "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'phenaki_core.training.train_tokenizer',"
            " 'phenaki_core.training.train_transformer') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout
    assert "generate" in out.stdout and "train-tokenizer" in out.stdout and "--version" in out.stdout


def test_every_option_shows_its_help_and_default(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ("--prompt", "--frames", "--seed", "--steps", "--guidance", "--out", "--fps", "--size", "--resample",
                   "--device", "--dtype", "--quiet", "--model"):
        assert option in text
    assert "(default: 12)" in text and "(default: 2.0)" in text and "(default: 0)" in text
    assert "(default: outputs/story.mp4)" in text and "(default: auto)" in text


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("phenaki ")


def test_a_training_command_is_imported_only_when_named(tmp_path, monkeypatch):
    (tmp_path / "fake_tokenize.py").write_text(
        "def add_arguments(p):\n    p.add_argument('--shards', required=True)\n"
        "def main(args):\n    print('TOKENIZE', args.shards)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "LAZY_COMMANDS", cli.LAZY_COMMANDS + (("tokenize-test", "fake_tokenize", "make shards"),
                                                                   ("absent", "no_such_module_here", "never listed")))
    sys.modules.pop("fake_tokenize", None)
    parser = cli.build_parser(["generate"])
    assert "tokenize-test" in parser.commands and "absent" not in parser.commands
    assert "fake_tokenize" not in sys.modules
    out = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from phenaki_core import cli; "
                          "cli.LAZY_COMMANDS += (('tokenize-test', 'fake_tokenize', 'x'),); "
                          "cli.main(['tokenize-test', '--shards', 'here'])", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "TOKENIZE here" in out.stdout, out.stderr[-1000:]


@pytest.fixture(scope="module")
def model_folder(tiny_pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "tiny"
    tiny_pipe.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("args, message", [
    (["--out", "clip.avi"], "must end in one of"),
    (["--fps", "0"], "--fps"),
    (["--fps", "nan"], "--fps"),
    (["--size", "0"], "--size"),
    (["--frames", "0"], "--frames"),
    (["--steps", "0"], "--steps"),
    (["--guidance", "inf"], "--guidance"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**31)], "--seed"),
    (["--model", "/no/such/folder"], "no model folder"),
    (["--out", "/proc/clip.mp4"], "cannot write"),
    (["--story", "/no/such.story.json"], "no such file"),
    (["--prompt", " "], "empty"),
    (["--device", "tpu"], "unknown device"),
])
def test_each_mistake_is_one_error_line_before_the_model_loads(args, message, capsys, monkeypatch, tmp_path):
    from phenaki_core.pipelines import default

    monkeypatch.setattr(default, "load_pipeline", lambda *a, **k: pytest.fail("the model loaded before the check"))
    argv = ["generate", "--out", str(tmp_path / "clip.mp4")] + (["--prompt", "a red circle"] if "--prompt" not in args
                                                                and "--story" not in args else []) + args
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err


def test_cuda_without_a_gpu_is_refused_in_one_line(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "--prompt", "a red circle", "--device", "cuda", "--out", "/tmp/x.npy"])
    assert e.value.code == 2 and "no CUDA device is available" in capsys.readouterr().err


def test_a_corrupt_model_folder_is_a_clear_error(model_folder, tmp_path, capsys):
    import shutil

    from phenaki_core.pipelines import ModelLoadError, load_pipeline

    broken = tmp_path / "broken"
    shutil.copytree(model_folder, broken)
    weights = next((broken / "transformer").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="cannot load"):
        load_pipeline(broken)
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "--prompt", "a red circle", "--model", str(broken), "--out", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err and "cannot load the model" in err
    (broken / "vqvae" / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="vqvae/config.json"):
        load_pipeline(broken)


def test_a_prompt_longer_than_the_text_encoder_reads_is_refused(model_folder, tmp_path, capsys):
    long = "a red circle moves right " * 10
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", "--prompt", long, "--model", str(model_folder), "--out", str(tmp_path / "x.npy")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "tokens; the text encoder reads 32" in err and not (tmp_path / "x.npy").exists()


def test_generate_reports_each_segment_and_is_silent_when_quiet(model_folder, tmp_path, capsys):
    common = ["generate", "--prompt", "a red circle moves right", "--prompt", "a red circle moves down",
              "--frames", "6", "--steps", "2", "--model", str(model_folder), "--device", "cpu"]
    cli.main(common + ["--out", str(tmp_path / "a.npy")])
    captured = capsys.readouterr()
    assert "segment 1/2: 6 frames" in captured.err and "segment 2/2: 6 frames" in captured.err
    assert captured.out.strip() == str(tmp_path / "a.npy")
    cli.main(common + ["--out", str(tmp_path / "b.npy"), "--quiet"])
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.strip() == str(tmp_path / "b.npy")
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    sidecar = json.loads((tmp_path / "b.story.json").read_text())
    assert sidecar["model"] == "tiny" and [s["seed"] for s in sidecar["segments"]] == [0, 1]
