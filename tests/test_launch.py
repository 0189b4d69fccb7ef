"""The README's launch line, `python app.py`: Gradio's address variables, a busy port, a missing or
corrupt model, and `--smoke` on the shipped model. Subprocesses, since the launcher is a script."""
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from studio_harness import free_port

ROOT = Path(__file__).resolve().parents[1]


def load_launcher():
    # `import app` would find the studio package, not the script beside it
    spec = importlib.util.spec_from_file_location("phenaki_app_launcher", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_app(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def assert_one_clear_line(stderr: str):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("phenaki studio: "), stderr
    assert "Traceback" not in stderr


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_gradio_variables_are_defaults_and_flags_win(monkeypatch):
    launcher = load_launcher()
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    args = launcher.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    args = launcher.parse_args([])
    assert (args.host, args.port) == ("0.0.0.0", 7999)
    args = launcher.parse_args(["--port", "8123", "--host", "localhost"])
    assert (args.host, args.port) == ("localhost", 8123)


def test_a_bad_port_variable_is_a_usage_error(monkeypatch, capsys):
    launcher = load_launcher()
    monkeypatch.setenv("GRADIO_SERVER_PORT", "seventy")
    with pytest.raises(SystemExit) as e:
        launcher.parse_args([])
    assert e.value.code == 2 and "GRADIO_SERVER_PORT" in capsys.readouterr().err


def test_busy_port_from_the_variable_is_one_line_not_a_traceback(busy_port):
    r = run_app(env={"GRADIO_SERVER_PORT": str(busy_port)}, timeout=60)
    assert r.returncode == 1
    assert_one_clear_line(r.stderr)
    assert f"port {busy_port}" in r.stderr and "already in use" in r.stderr


def test_the_port_flag_wins_over_the_variable(busy_port):
    # the variable names a free port: were it used, the server would start instead of refusing
    r = run_app("--port", str(busy_port), env={"GRADIO_SERVER_PORT": str(free_port())}, timeout=60)
    assert r.returncode == 1 and f"port {busy_port}" in r.stderr


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_smoke_without_a_usable_model_says_so_in_one_line(tmp_path, kind):
    folder = tmp_path / "model"
    if kind == "corrupt":
        folder.mkdir()
        (folder / "model_index.json").write_text("{not json")
    r = run_app("--smoke", "--model", str(folder), "--work-dir", str(tmp_path / "work"), timeout=120)
    assert r.returncode == 1
    assert_one_clear_line(r.stderr)
    assert "no usable model" in r.stderr and "--model" in r.stderr


def test_without_a_model_the_studio_serves_its_no_model_page(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--model", str(tmp_path / "none"), "--port", str(port),
                             "--projects-dir", str(tmp_path / "p"), "--work-dir", str(tmp_path / "w")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, page = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as resp:
                    page = resp.read().decode()
                break
            except OSError:
                time.sleep(1)
        assert page is not None, "the studio did not serve its page"
        assert "No model to generate with" in page
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.default_model
def test_smoke_renders_one_clip_on_the_shipped_model(tmp_path):
    r = run_app("--smoke", "--work-dir", str(tmp_path / "work"), "--projects-dir", str(tmp_path / "projects"))
    assert r.returncode == 0, r.stderr
    clips = list((tmp_path / "work").rglob("*.mp4"))
    assert len(clips) == 1 and clips[0].stat().st_size > 1000
    assert str(clips[0]) in r.stdout
    assert (tmp_path / "projects").is_dir()  # the session autosaved its project, as the studio does
