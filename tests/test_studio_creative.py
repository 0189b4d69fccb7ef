"""The studio as a creative uses it, in a real Chromium (tiny pipeline, Debian's chromium):
the whole-story player and its marks, the board, honest status, undoable destructive steps,
the prompt's word check, the storyboard sheet, bundles that keep their renders, and keys.

One app for the module (its start is the cost); small renders (2 sampling steps, 11-frame
segments). Screenshots go to tests/artifacts/.
"""
import os

import pytest

pytestmark = pytest.mark.browser
if os.environ.get("CI", "").lower() not in ("true", "1"):  # in CI a missing Playwright fails
    pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402
from studio_harness import WAIT_MS as T  # noqa: E402
from studio_harness import chromium_browser, open_tab, serve, shot, wait_chips  # noqa: E402

expect.set_options(timeout=T)
PROMPTS = ["a red circle moves right", "a red circle moves left", "a blue circle moves right"]


@pytest.fixture(scope="module")
def renders():
    """How many segments the app has rendered (a bundle must open with none)."""
    from phenaki_core.story import engine as story

    calls = []
    original = story.StoryRenderer.render_segment

    def counted(self, *a, **k):
        calls.append(1)
        return original(self, *a, **k)

    story.StoryRenderer.render_segment = counted
    yield calls
    story.StoryRenderer.render_segment = original


@pytest.fixture(scope="module")
def studio_url(tiny_pipe, tmp_path_factory, renders, chromium):
    from app.ui import build_demo
    from phenaki_core.text.vocabulary import save_vocabulary, shapes_world_vocabulary

    root = tmp_path_factory.mktemp("studio-creative")
    model_dir = root / "model"
    save_vocabulary(shapes_world_vocabulary(), model_dir)  # the tiny model "knows" Shapes World's words
    demo = build_demo(tiny_pipe, projects_dir=root / "projects", work_dir=root / "work", model="tiny",
                      model_dir=model_dir)
    yield serve(demo)
    demo.close()


@pytest.fixture(scope="module")
def browser(studio_url, chromium):
    yield from chromium_browser(chromium)


def new_page(browser, width=1280, height=800):
    ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = ctx.new_page()
    page.set_default_timeout(T)
    return page


def selected(page):
    return page.locator("#board .ph-card[aria-current='true']").get_attribute("data-segment")


def build_story(page):
    """Three short segments at 2 sampling steps, not rendered yet."""
    open_tab(page, "Settings", "#steps input")
    page.fill("#steps input", "2")
    page.click("#apply-settings")
    expect(page.locator("#undo")).to_be_enabled()
    for n, text in enumerate(PROMPTS, 1):
        page.fill("#prompt textarea", text)
        page.fill("#seed input", str(n))
        page.click("#add")
        expect(page.locator("#board .ph-card")).to_have_count(n)
    wait_chips(page, ["not rendered"] * 3)


def render(page, button="#render-all"):
    page.click(button)
    page.wait_for_selector("#progress-box[data-state=done]", timeout=T)


def box(page, sel, n=0):
    return page.locator(sel).nth(n).bounding_box()


def test_words_and_layout(browser, studio_url):
    """Unknown prompt words are flagged with suggestions; at 800 px the render button does not
    cover the board, and at 1920 px the player uses the room."""
    page = new_page(browser, 800, 900)
    page.goto(studio_url)
    page.fill("#prompt textarea", "a blu dog moves right")
    expect(page.locator("#words .ph-unknown")).to_have_text(["blu", "dog"])
    expect(page.locator("#words .ph-unknown-line")).to_contain_text("did you mean blue")
    page.fill("#prompt textarea", "a red circle moves right")
    expect(page.locator("#words .ph-known-line")).to_be_visible()
    expect(page.locator("#words .ph-unknown")).to_have_count(0)
    # a known phrase chip adds itself to the prompt
    page.locator("#words summary").click()
    page.locator("#words .ph-phrase", has_text="on a gray background").first.click()
    expect(page.locator("#prompt textarea")).to_have_value("a red circle moves right on a gray background")

    page.fill("#prompt textarea", "a red circle moves right")
    page.click("#add")
    expect(page.locator("#board .ph-card")).to_have_count(1)
    shot(page, "creative-800")
    # at 800 px the columns stack: nothing sits over the board
    render_btn, board, editor = box(page, "#render-all"), box(page, "#board"), box(page, "#editor")
    assert render_btn["y"] + render_btn["height"] <= board["y"]
    assert board["y"] + board["height"] <= editor["y"]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 800, f"the page scrolls sideways at 800 px ({width} px)"
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_function("document.querySelector('#story-player').getBoundingClientRect().width > 900")
    page.context.close()


def test_creative_flow(browser, studio_url, renders, tmp_path):
    page = new_page(browser)
    page.goto(studio_url)
    build_story(page)
    expect(page.locator("#story-status")).to_contain_text("0 of 3 rendered")
    expect(page.locator("#player-note")).to_have_text("Nothing to play yet: render the story.")

    # -- render; the player holds the whole story ------------------------------------------
    render(page)
    wait_chips(page, ["rendered"] * 3)
    expect(page.locator("#story-status")).to_contain_text("Every segment is rendered (3 of 3)")
    page.wait_for_function("document.querySelector('#story-player video')?.readyState >= 1", timeout=T)
    duration = page.evaluate("document.querySelector('#story-player video').duration")
    assert abs(duration - 33 / 8) < 0.3, duration  # three 11-frame segments at 8 fps
    player = box(page, "#story-player video")
    assert player["width"] >= 512 or player["height"] >= 512, player
    # seeking into segment 2 highlights its mark; playing moves the playhead
    page.evaluate("(() => { const v = document.querySelector('#story-player video'); v.currentTime = 1.9; })()")
    expect(page.locator("#marks .ph-mark.ph-current")).to_have_attribute("data-segment", "2")
    page.evaluate("document.querySelector('#story-player video').currentTime = 0.2")
    expect(page.locator("#marks .ph-mark.ph-current")).to_have_attribute("data-segment", "1")
    page.evaluate("document.querySelector('#story-player video').play()")
    page.wait_for_function("document.querySelector('#story-player video').currentTime > 1.5")
    page.wait_for_function("document.querySelector('#marks .ph-current')?.dataset.segment !== '1'")
    shot(page, "creative-rendered")

    # -- the board: whole thumbnails inside the strip, captions legible ------------------------
    strip = box(page, "#ph-board")
    for i in range(3):
        for part in (".ph-thumb-img", ".ph-num", ".ph-tc", ".ph-chip", ".ph-take"):
            b = page.locator(f"#board .ph-card >> nth={i}").locator(part).bounding_box()
            assert b and b["width"] > 0 and b["height"] > 0, (i, part)
            assert strip["y"] <= b["y"] and b["y"] + b["height"] <= strip["y"] + strip["height"] + 0.5, (i, part, b)
        img = page.locator("#board .ph-thumb-img").nth(i)
        b, thumb = img.bounding_box(), page.locator("#board .ph-thumb").nth(i).bounding_box()
        # object-fit: contain in a square: the whole square frame is drawn in the box
        assert abs(b["width"] - b["height"]) < 1 and b["width"] <= thumb["width"] + 0.5
    expect(page.locator("#board .ph-tc")).to_have_text(["0:00.0", "0:01.4", "0:02.8"])
    expect(page.locator("#board .ph-take")).to_have_text(["1 take"] * 3)

    # -- a card selects its segment and the player jumps there ----------------------------------
    page.locator("#board .ph-card").nth(1).click()
    expect(page.locator("#prompt textarea")).to_have_value(PROMPTS[1])
    expect(page.locator("#board .ph-card").nth(1)).to_have_attribute("aria-current", "true")
    page.wait_for_function("(() => { const t = document.querySelector('#story-player video').currentTime;"
                           " return t >= 1.37 && t < 2.9; })()")
    # a mark does the same
    page.locator("#marks .ph-mark[data-segment='3']").click()
    expect(page.locator("#prompt textarea")).to_have_value(PROMPTS[2])

    # -- regenerate 2: the status sentence agrees with the board ----------------------------------
    page.locator("#board .ph-card").nth(1).click()
    expect(page.locator("#prompt textarea")).to_have_value(PROMPTS[1])
    page.fill("#prompt textarea", "a green circle moves left")
    render(page, "#render-segment")
    wait_chips(page, ["rendered", "rendered", "stale"])
    expect(page.locator("#story-status")).to_contain_text("2 of 3 rendered; segment 3 is stale")
    expect(page.locator("#progress-text")).to_contain_text("segment 3 is stale")
    expect(page.locator("#player-note")).to_contain_text("Playing segments 1–2 of 3")
    expect(page.locator("#board .ph-take").nth(1)).to_have_text("take 2 of 2")
    # the seed line follows the box
    page.locator("#seed-locked input").uncheck()
    expect(page.locator("#seed-hint")).to_have_text("Unlocked: regenerating draws a new seed.")
    page.locator("#seed-locked input").check()
    expect(page.locator("#seed-hint")).to_contain_text("Locked: regenerating keeps seed")
    shot(page, "creative-regenerated")

    # -- keys ---------------------------------------------------------------------------------------
    page.locator("#header").click()  # focus off the text boxes
    page.keyboard.press("ArrowDown")
    expect(page.locator("#board .ph-card").nth(2)).to_have_attribute("aria-current", "true")
    page.keyboard.press("[")
    expect(page.locator("#board .ph-card").nth(1)).to_have_attribute("aria-current", "true")
    page.keyboard.press("Control+z")  # undo the prompt edit: the old take comes back
    expect(page.locator("#board .ph-prompt").nth(1)).to_have_text(PROMPTS[1])
    wait_chips(page, ["rendered"] * 3)
    page.keyboard.press("Control+Shift+Z")
    expect(page.locator("#board .ph-prompt").nth(1)).to_have_text("a green circle moves left")
    page.keyboard.press("Control+z")
    wait_chips(page, ["rendered"] * 3)
    page.evaluate("document.querySelector('#story-player video').pause()")
    page.locator("#header").click()
    page.keyboard.press("k")
    page.wait_for_function("!document.querySelector('#story-player video').paused")
    page.keyboard.press("Space")
    page.wait_for_function("document.querySelector('#story-player video').paused")
    page.locator("#board .ph-card").nth(2).click()
    expect(page.locator("#board .ph-card").nth(2)).to_have_attribute("aria-current", "true")
    expect(page.locator("#prompt textarea")).to_have_value(PROMPTS[2])  # the pick's answer is in
    page.fill("#prompt textarea", "a blue circle moves left")
    page.locator("#prompt textarea").press("Control+Enter")  # render, also while typing
    expect(page.locator("#board .ph-take").nth(2)).to_have_text("take 2 of 2")  # rendered again
    page.wait_for_selector("#progress-box[data-state=done]", timeout=T)
    wait_chips(page, ["rendered"] * 3)
    expect(page.locator("#board .ph-prompt").nth(2)).to_have_text("a blue circle moves left")

    # -- destructive steps are undoable and say so -------------------------------------------------
    page.locator("#board .ph-card").nth(2).click()
    expect(page.locator("#board .ph-card").nth(2)).to_have_attribute("aria-current", "true")
    page.click("#delete")
    expect(page.locator("#board .ph-card")).to_have_count(2)
    expect(page.get_by_text("Deleted segment 3. Undo (Ctrl+Z) brings it back.")).to_be_visible()
    page.click("#undo")
    expect(page.locator("#board .ph-card")).to_have_count(3)
    expect(page.locator("#board .ph-prompt").nth(2)).to_have_text("a blue circle moves left")
    wait_chips(page, ["rendered"] * 3)
    open_tab(page, "Project", "#new-project")
    page.click("#new-project")
    expect(page.locator("#board .ph-board-empty")).to_be_visible()
    expect(page.get_by_text("Started a new project. Undo (Ctrl+Z) brings it back.")).to_be_visible()
    page.click("#undo")
    expect(page.locator("#board .ph-card")).to_have_count(3)
    wait_chips(page, ["rendered"] * 3)

    # -- the storyboard sheet, PNG and PDF --------------------------------------------------------------
    open_tab(page, "Export", "#sheet")
    page.click("#sheet")
    links = {}
    for ext in ("png", "pdf"):
        link = page.locator(f'#sheet-files a[download$=".{ext}"]')
        expect(link).to_have_count(1)
        with page.expect_download() as dl:
            link.click()
        links[ext] = tmp_path / f"storyboard.{ext}"
        dl.value.save_as(links[ext])
    assert links["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from pypdf import PdfReader

    reader = PdfReader(links["pdf"])
    titles = [o.title for o in reader.outline if not isinstance(o, list)]
    assert len(titles) == 3, titles
    text = " ".join(pg.extract_text() for pg in reader.pages)
    for prompt in (PROMPTS[0], PROMPTS[1], "a blue circle moves left"):
        assert prompt in text

    # -- a bundle keeps the renders: it reopens rendered, with no render call --------------------------
    open_tab(page, "Project", "#save-bundle")
    page.click("#save-bundle")
    link = page.locator('#project-file a[download$=".zip"]')
    expect(link).to_have_count(1)
    with page.expect_download() as dl:
        link.click()
    bundle = tmp_path / "story.zip"
    dl.value.save_as(bundle)
    frames_before = page.locator("#board .ph-thumb-img").evaluate_all("els => els.map(e => e.src)")
    page.context.close()

    other = new_page(browser)  # another browser: another session, an empty project
    other.goto(studio_url)
    expect(other.locator("#board .ph-board-empty")).to_be_visible()
    done = len(renders)
    open_tab(other, "Project", "#project-upload")
    other.set_input_files("#project-upload input[type=file]", str(bundle))
    expect(other.locator("#board .ph-card")).to_have_count(3)
    wait_chips(other, ["rendered"] * 3)
    assert other.locator("#board .ph-thumb-img").evaluate_all("els => els.map(e => e.src)") == frames_before
    other.wait_for_function("document.querySelector('#story-player video')?.readyState >= 1", timeout=T)
    expect(other.locator("#story-status")).to_contain_text("Every segment is rendered (3 of 3)")
    assert len(renders) == done, "opening a bundle rendered"
    shot(other, "creative-bundle-opened")
    # the page lists its keys
    other.locator("#keys-accordion").get_by_text("Keyboard shortcuts").first.click()
    expect(other.locator("#ph-keys tr")).to_have_count(6)
    other.context.close()
