"""The studio's peak memory: the real `app.py` on the shipped model, driven through its
API like a user's browser, renders bench_long_story's 2-minute story (960 frames) and
exports it as MP4; the server process's peak RSS (VmHWM) is read before and after.

    python bench/bench_studio_memory.py [--out docs/studio_memory.md]
"""
import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradio_client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_long_story import SEGMENTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc (Linux only)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/studio_memory.md")
    args = ap.parse_args()
    port, tmp = free_port(), Path(tempfile.mkdtemp())
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--projects-dir",
                               str(tmp / "projects"), "--work-dir", str(tmp / "work")], cwd=ROOT)
    try:
        for _ in range(120):
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                time.sleep(1)
        else:
            sys.exit("the studio did not start")
        loaded = peak_rss_mb(server.pid)
        for i, (prompt, frames) in enumerate(SEGMENTS):
            client.predict(None, prompt, frames, "frames", i, True, "continue", api_name="/add_segment")
        t = time.perf_counter()
        out = client.predict(1, api_name="/render_story")
        wall = time.perf_counter() - t
        if any(s["status"] != "rendered" for s in out[0]["segments"]):
            sys.exit(f"the render did not finish: {out[5]}")
        client.predict("mp4", api_name="/export")
        peak = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    frames = sum(f for _, f in SEGMENTS)
    print(f"studio peak RSS: {loaded:.0f} MB with the model loaded; {peak:.0f} MB after rendering "
          f"{frames} frames in {wall:.0f} s and exporting MP4")
    Path(args.out).write_text(
        "# Studio peak memory (bench/bench_studio_memory.py)\n\n"
        f"The studio (`app.py`, shipped model, CPU) driven through its API: peak RSS {loaded:.0f} MB "
        f"once the model is loaded; {peak:.0f} MB after rendering bench_long_story's {len(SEGMENTS)}-segment, "
        f"{frames}-frame story ({wall:.0f} s) and exporting it as MP4.\n")


if __name__ == "__main__":
    main()
