"""What the studio's tests share: a free local port (the two-process training test takes one
too), a demo served on it, and, for the browser tests, the Chromium flags and the page's
board, tabs and screenshots.

Plain functions, not fixtures: each test module keeps its own fixtures (their scope and
folders differ) and calls these.
"""
import json
import socket
from pathlib import Path

ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots, for a person to look at
WAIT_MS = 120_000  # generous upper bound for a browser wait, never asserted as a timing
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(demo, **launch) -> str:
    """Launch `demo` (queued) on a free local port without blocking; its URL. Close it with demo.close()."""
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch)
    return f"http://127.0.0.1:{port}/"


def chromium_browser(path: str):
    """A headless Chromium at `path`, driven by Playwright, closed after: for a fixture's `yield from`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# -- the page -----------------------------------------------------------------------------------

def shot(page, name: str):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_chips(page, expected: list[str]):
    """Wait until the board's status chips, one a segment, read `expected`."""
    from playwright.sync_api import expect

    expect(page.locator("#board .ph-chip")).to_have_text(expected, timeout=WAIT_MS)


def open_tab(page, name: str, field: str):
    """Click the tab `name` and wait until `field` (a selector inside it) is on the page and shown."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name=name).click()
    expect(page.locator(field)).to_be_visible()
    page.wait_for_function(f"document.querySelector({json.dumps(field)}) !== null")
