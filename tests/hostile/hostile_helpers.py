"""Helpers the hostile cases share (the fixtures and the count by kind are in conftest.py)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest

GENERIC = "upstream Gradio app has raised an exception"


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def summary(c, sel=1) -> dict:
    return c.predict(sel, "frames", api_name="/select_segment")[0]


def add(c, prompt, frames=11, seed=1, transition="continue", locked=True, number=None):
    return c.predict(number, prompt, frames, "frames", seed, locked, transition, api_name="/add_segment")[0]


def project_state(s: dict) -> dict:
    """What must not change when an input is refused (the summary less what only shows selection)."""
    return {k: v for k, v in s.items() if k not in ("selected",)}


def assert_plain(message: str, root: Path | None = None):
    """A message a person can read: present, not Gradio's message-less error, no markup, no
    server path, no traceback."""
    assert message and message.strip(), "no message"
    assert GENERIC not in message, f"Gradio's message-less error: {message}"
    assert "<" not in message and ">" not in message, f"markup in the message: {message}"
    assert "Traceback" not in message and "Errno" not in message, message
    for bad in ("/tmp", "/work", "/home", "/usr", "site-packages", "gradio_cached", "\\Users"):
        assert bad not in message, f"a server path in the message: {message}"
    if root is not None:
        assert str(root) not in message, message


def refused(c, *args, api_name: str, root=None) -> str:
    """Call the API expecting a refusal; return its message after checking it is plain."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as e:
        c.predict(*args, api_name=api_name)
    msg = str(e.value)
    assert_plain(msg, root)
    return msg


class PeakRSS:
    """Peak growth of this process's resident memory while the block runs (sampled every 2 ms)."""

    def __init__(self):
        self.proc = psutil.Process()
        self.peak = 0

    def __enter__(self):
        self.base = self.proc.memory_info().rss
        self.stop = threading.Event()

        def sample():
            while not self.stop.is_set():
                self.peak = max(self.peak, self.proc.memory_info().rss - self.base)
                time.sleep(0.002)
        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss - self.base)
        return False

    @property
    def mb(self) -> float:
        return self.peak / 2**20


def raw_call(url: str, api_name: str, data_json: str, timeout: float = 60) -> tuple[str, str]:
    """Call an event over Gradio's plain HTTP API with a hand-written JSON body (NaN and the
    infinities, which no JSON library sends, are valid input to the server's parser).
    Returns (the final event name: "complete" or "error", its data)."""
    import json
    import urllib.request

    name = api_name.strip("/")
    req = urllib.request.Request(f"{url}gradio_api/call/{name}", data=f'{{"data": {data_json}}}'.encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        event_id = json.loads(r.read())["event_id"]
    event, data = "", ""
    with urllib.request.urlopen(f"{url}gradio_api/call/{name}/{event_id}", timeout=timeout) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = line.split(":", 1)[1].strip()
    return event, data


def launch(pipe, root: Path):
    """(demo, url): a studio server on `root`'s folders, launched as app.py launches it."""
    from studio_harness import serve

    from app.bounds import launch_kwargs
    from app.ui import build_demo

    demo = build_demo(pipe, projects_dir=root / "projects", work_dir=root / "work", model="tiny")
    return demo, serve(demo, show_error=False, **launch_kwargs("127.0.0.1"))
