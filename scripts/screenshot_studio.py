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
    ap.add_argument("--out", default="docs/studio.png", help="the 1280x800 shot; the 800x900 one gets -800")
    ap.add_argument("--full", action="store_true", help="also the whole page, beside each (…-full.png)")
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
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            page = ctx.new_page()
            page.set_default_timeout(600_000)
            page.goto(f"http://127.0.0.1:{port}/")
            print('page.goto(f"http://127.0.0.1:{port}/")', flush=True)
            page.get_by_role("tab", name="Project").click()
            page.click("#load-example")
            print('page.click("#load-example")', flush=True)
            page.wait_for_selector("#board .ph-card")
            print('page.wait_for_selector("#board .ph-card")', flush=True)
            page.click("#render-all")
            print('page.click("#render-all")', flush=True)
            page.wait_for_selector("#progress-box[data-state=done]")
            print('page.wait_for_selector("#progress-box[data-state=done]")', flush=True)
            page.wait_for_function("document.querySelector('#story-player video')?.readyState >= 2")
            print('page.wait_for_function("document.querySelector(\'#story-playe', flush=True)
            page.locator("#board .ph-card").nth(1).click()  # the editor shows segment 2, the player plays it
            page.wait_for_function("document.querySelector('#story-player video').currentTime > 1.5")
            print('page.wait_for_function("document.querySelector(\'#story-playe', flush=True)
            page.evaluate("document.querySelector('#story-player video').pause()")
            page.fill("#prompt textarea", "a red circle moves left on a pink backdrop")  # the word check shows
            page.wait_for_selector("#words .ph-unknown")
            print('page.wait_for_selector("#words .ph-unknown")', flush=True)
            page.mouse.move(0, 0)
            page.wait_for_timeout(500)
            shots = [(out, 1280, 800), (out.with_name(out.stem + "-800" + out.suffix), 800, 900)]
            for path, w, h in shots:
                page.set_viewport_size({"width": w, "height": h})
                page.wait_for_timeout(800)
                page.screenshot(path=str(path))
                if args.full:
                    page.screenshot(path=str(path.with_name(path.stem + "-full" + path.suffix)), full_page=True)
                print(path)
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
