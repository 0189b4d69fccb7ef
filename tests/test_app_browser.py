"""The studio in a real Chromium, as a person uses it (tiny pipeline, Debian's chromium).

Screenshots go to tests/artifacts/ so a person can look at the page each step produced.
"""
import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser
# In CI (CI=true) a missing browser or Playwright fails these tests; elsewhere they skip.
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")
if not IN_CI:
    pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect
from studio_harness import WAIT_MS as T
from studio_harness import chromium_browser, open_tab, serve, shot, wait_chips

from phenaki_core.io import read_video

expect.set_options(timeout=T)


@pytest.fixture(scope="module")
def studio_url(tiny_pipe, tmp_path_factory, chromium):
    from app.ui import build_demo

    root = tmp_path_factory.mktemp("studio-browser")
    demo = build_demo(tiny_pipe, projects_dir=root / "projects", work_dir=root / "work", model="tiny")
    yield serve(demo)
    demo.close()


@pytest.fixture(scope="module")
def browser(studio_url, chromium):
    yield from chromium_browser(chromium)


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(T)
    yield pg
    ctx.close()


def thumb_pixels(page) -> list[np.ndarray]:
    """Each segment thumbnail's pixels, fetched as the page fetches them (not its URL, which names the take)."""
    out = []
    for img in page.locator("#board .ph-card img").all():
        src = img.get_attribute("src")
        if src.startswith("data:"):  # the board inlines its thumbnails
            body = base64.b64decode(src.partition(",")[2])
        else:
            response = page.request.get(src)
            assert response.ok, response.status
            body = response.body()
        out.append(np.asarray(Image.open(io.BytesIO(body)).convert("RGB")))
    return out


def export_file(page, fmt: str, dest: Path) -> Path:
    """Export in `fmt` from the Export tab and download the new file (not a link left by an earlier export)."""
    open_tab(page, "Export", "#export")
    page.locator("#export-format").get_by_role("radio", name=fmt, exact=True).check()
    old = page.evaluate("() => Array.from(document.querySelectorAll('#export-files a')).map(a => a.href)")
    page.click("#export")
    selector = f'#export-files a[download$=".{fmt}"]'
    page.wait_for_function("([sel, old]) => { const a = document.querySelector(sel); return a && !old.includes(a.href); }",
                           arg=[selector, old], timeout=T)
    expect(page.locator(selector)).to_have_count(1)
    expect(page.locator('#export-files a[download$=".story.json"]')).to_have_count(1)
    with page.expect_download() as dl:
        page.locator(selector).click()
    dl.value.save_as(dest)
    return dest


def wait_render_done(page):
    page.wait_for_selector("#progress-box[data-state=done]", timeout=T)


def test_story_render_regenerate_undo_export_save_reload(page, studio_url, tmp_path):
    page.goto(studio_url)
    expect(page.locator("#board .ph-board-empty")).to_be_visible()

    # fast sampling for the tiny model
    open_tab(page, "Settings", "#steps input")
    expect(page.locator("#steps input")).to_have_value("12")
    page.fill("#steps input", "2")
    expect(page.locator("#steps input")).to_have_value("2")
    page.click("#apply-settings")
    expect(page.locator("#undo")).to_be_enabled()

    # build three segments in the editor
    prompts = ["a red circle moves right", "a red circle moves left", "a blue circle moves left"]
    for n, text in enumerate(prompts, 1):
        page.fill("#prompt textarea", text)
        expect(page.locator("#prompt-counter")).to_contain_text(f"{len(text)} / 1000")
        page.fill("#seed input", str(n))
        page.click("#add")
        expect(page.locator("#board .ph-card")).to_have_count(n)
    expect(page.locator("#story-length")).to_contain_text("0:04.1")  # 33 frames at 8 fps
    wait_chips(page, ["not rendered"] * 3)
    shot(page, "01-timeline")

    # render the story: every clip appears, the timeline stays visible while it runs
    page.click("#render-all")
    wait_render_done(page)
    wait_chips(page, ["rendered"] * 3)
    page.wait_for_function("document.querySelector('#clip-video video')?.readyState >= 1", timeout=T)
    before = thumb_pixels(page)
    assert len(before) == 3
    shot(page, "02-rendered")
    first = np.load(export_file(page, "npy", tmp_path / "first.npy"))
    assert first.shape == (33, 32, 32, 3)

    # edit segment 2 and regenerate it: segment 1 stays, segment 3 goes stale
    page.locator("#board .ph-card").nth(1).click()
    expect(page.locator("#prompt textarea")).to_have_value(prompts[1])
    page.fill("#prompt textarea", "a green circle moves left")
    page.click("#render-segment")
    wait_render_done(page)
    wait_chips(page, ["rendered", "rendered", "stale"])
    after = thumb_pixels(page)
    assert np.array_equal(after[0], before[0])  # segment 1: the same frames
    assert not np.array_equal(after[1], before[1])  # segment 2: a new take under its new prompt
    expect(page.locator("#takes label")).to_have_count(2)
    expect(page.locator("#board .ph-prompt").nth(1)).to_have_text("a green circle moves left")
    shot(page, "03-regenerated")

    # undo the prompt edit: the old prompt and its take come back, so nothing is stale
    page.click("#undo")
    expect(page.locator("#board .ph-prompt").nth(1)).to_have_text(prompts[1])
    wait_chips(page, ["rendered"] * 3)
    assert all(np.array_equal(a, b) for a, b in zip(thumb_pixels(page), before))
    shot(page, "04-undone")

    # export: the story's frames are the first render's again, segment 1 untouched throughout
    assert np.array_equal(np.load(export_file(page, "npy", tmp_path / "undone.npy")), first)
    frames = read_video(export_file(page, "mp4", tmp_path / "story.mp4"))
    assert frames.shape[0] == 33 and frames.shape[1] == 256
    page.click("#preview")
    page.wait_for_function("document.querySelector('#story-video video')?.readyState >= 1", timeout=T)
    shot(page, "05-exported")

    # save the project file, download it
    open_tab(page, "Project", "#save-project")
    page.click("#save-project")
    plink = page.locator("#project-file a")
    expect(plink).to_have_count(1)
    with page.expect_download() as dl:
        plink.click()
    saved = tmp_path / "project.json"
    dl.value.save_as(saved)
    data = json.loads(saved.read_text())
    assert [s["prompt"] for s in data["story"]["segments"]] == prompts

    # a reload finds the session's project again (browser state + autosave)
    page.reload()
    wait_chips(page, ["rendered"] * 3)
    expect(page.locator("#board .ph-prompt")).to_have_text(prompts)

    # start over, then load the saved file: the story comes back and re-renders identically
    open_tab(page, "Project", "#new-project")
    page.click("#new-project")
    expect(page.locator("#board .ph-board-empty")).to_be_visible()
    page.set_input_files("#project-upload input[type=file]", str(saved))
    expect(page.locator("#board .ph-prompt")).to_have_text(prompts)
    wait_chips(page, ["not rendered"] * 3)  # files carry recipes, not frames
    page.click("#render-all")
    wait_render_done(page)
    wait_chips(page, ["rendered"] * 3)
    shot(page, "06-reloaded")
    again = np.load(export_file(page, "npy", tmp_path / "again.npy"))
    assert np.array_equal(again, first), "the loaded project re-rendered other frames"


def test_bad_input_shows_a_message_and_changes_nothing(page, studio_url, tiny_pipe, tmp_path):
    page.goto(studio_url)
    expect(page.locator("#board .ph-board-empty")).to_be_visible()
    page.fill("#prompt textarea", "x" * 10_000)
    expect(page.locator("#prompt-counter")).to_contain_text("10000 / 1000")
    page.click("#add")
    expect(page.get_by_text("at most 1000").first).to_be_visible()
    expect(page.locator("#board .ph-board-empty")).to_be_visible()
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps({"format": "phenaki-studio-project/1", "story": {"format": "phenaki-story/1",
                                   "segments": [{"prompt": "x", "frames": 11, "seed": 0, "path": "../../etc/passwd"}]},
                                   "items": [{"id": "deadbeef"}]}))
    open_tab(page, "Project", "#project-upload")
    page.set_input_files("#project-upload input[type=file]", str(hostile))
    expect(page.get_by_text("malformed").first).to_be_visible()
    expect(page.locator("#board .ph-board-empty")).to_be_visible()
    shot(page, "07-bad-input")

    # a long render shows its progress beside the timeline, and Cancel stops it
    page.fill("#prompt textarea", "a red circle moves right")
    page.fill("#duration input", "400")
    page.click("#add")
    expect(page.locator("#board .ph-card")).to_have_count(1)
    forwards = []  # the shared pipeline's sampling steps, counted where they happen
    hook = tiny_pipe.transformer.register_forward_hook(lambda *a: forwards.append(1))
    try:
        page.click("#render-all")
        expect(page.locator("#progress-text")).to_contain_text("step")
        expect(page.locator("#board .ph-card")).to_be_visible()  # not hidden by the progress
        shot(page, "08-rendering")
        page.click("#cancel")
        page.wait_for_selector("#progress-box[data-state=cancelled]", timeout=T)
        wait_chips(page, ["not rendered"])
        stopped_at = len(forwards)
        page.wait_for_timeout(1000)
        assert stopped_at > 0 and len(forwards) == stopped_at, "the pipeline kept sampling after Cancel"
    finally:
        hook.remove()
    shot(page, "09-cancelled")
