"""Screenshot the studio on a model for the README: load an example story, render it, shoot.

    python scripts/screenshot_studio.py [--model DIR] [--out docs/studio.png]
"""
import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default="docs/studio.png")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from app.ui import build_demo
    from phenaki_core.pipelines import load_pipeline

    root = Path(tempfile.mkdtemp())
    demo = build_demo(load_pipeline(args.model), projects_dir=root / "p", work_dir=root / "w")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(300_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.click("#tab-project-button") if page.query_selector("#tab-project-button") else page.get_by_role("tab", name="Project").click()
            page.click("#load-example")
            page.wait_for_selector("#timeline td")
            page.click("#render-all")
            page.wait_for_function("!document.querySelector('#timeline').innerText.match(/not rendered|stale|rendering/i)")
            page.wait_for_function("document.querySelector('#clip-video video')?.readyState >= 1")
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        demo.close()
    print(args.out)


if __name__ == "__main__":
    main()
