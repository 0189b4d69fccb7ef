"""The studio's display helpers: pure functions first, then their script in a real Chromium."""
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from app.display import (
    SHORTCUTS,
    Card,
    board_html,
    mark_at,
    picked_segment,
    player_marks_html,
    prompt_words_html,
    seed_hint,
    shortcuts_html,
    story_status,
    studio_js,
    thumbnail_data_uri,
    timecode,
)


class _Tags(HTMLParser):
    """Start tags with their attributes, and the text, of an HTML fragment."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, cls):
        return [a for t, a in self.tags if cls in (a.get("class") or "").split()]


def _cards(statuses=("rendered", "stale", "not rendered")):
    img = thumbnail_data_uri(np.zeros((64, 64, 3), np.uint8))
    return [Card(i + 1, i * 1.375, (i + 1) * 1.375, f"prompt {i + 1}", s, None if s == "not rendered" else img,
                 take=1 if s != "not rendered" else None, takes=1 if s != "not rendered" else 0)
            for i, s in enumerate(statuses)]


def test_timecode():
    assert [timecode(t) for t in (0, 1.375, 5.75, 59.96, 62, -1)] == ["0:00.0", "0:01.4", "0:05.8", "1:00.0",
                                                                       "1:02.0", "0:00.0"]


def test_board_has_a_card_per_segment_with_number_time_and_status():
    cards = _cards()
    page = _Tags(board_html(cards, selected=2))
    found = page.find("ph-card")
    assert [c["data-segment"] for c in found] == ["1", "2", "3"]
    assert [c["data-status"] for c in found] == ["rendered", "stale", "not rendered"]
    assert [c.get("aria-current") for c in found] == [None, "true", None]
    text = " ".join(page.text)
    for c in cards:
        assert timecode(c.start) in text and c.prompt in text
    assert "stale" in text and "not rendered" in text and "no take yet" in text
    imgs = page.find("ph-thumb-img")
    assert len(imgs) == 2 and all(i["src"].startswith("data:image/png;base64,") for i in imgs)


def test_board_shows_the_active_take_and_a_render_in_progress():
    img = thumbnail_data_uri(np.zeros((8, 8, 3), np.uint8))
    html_ = board_html([Card(1, 0, 1, "p", "rendered", img, take=2, takes=3),
                        Card(2, 1, 2, "q", "rendering", None, progress=0.4)])
    page = _Tags(html_)
    assert "take 2 of 3" in " ".join(page.text)
    bar = [a for t, a in page.tags if a.get("role") == "progressbar"]
    assert len(bar) == 1 and bar[0]["aria-valuenow"] == "40"
    assert page.find("ph-card")[1]["data-status"] == "rendering"


def test_board_contains_the_whole_frame():
    # The picture fills a square box with object-fit: contain, so no part of the frame is cut off.
    from app.display import STUDIO_CSS

    rule = re.search(r"\.ph-thumb-img \{([^}]*)\}", STUDIO_CSS).group(1)
    assert "object-fit: contain" in rule and "height: 100%" in rule and "width: 100%" in rule
    assert "aspect-ratio: 1 / 1" in re.search(r"\.ph-thumb \{([^}]*)\}", STUDIO_CSS).group(1)


def test_board_escapes_what_users_write():
    evil = "<img src=x onerror=alert(1)>' onclick='x"
    html_ = board_html([Card(1, 0, 1, evil, "rendered", "javascript:alert(1)")])
    page = _Tags(html_)
    assert not any(t == "img" and a.get("src") == "x" for t, a in page.tags)
    assert all("onclick" not in a and "onerror" not in a for _, a in page.tags)
    assert evil in " ".join(page.text)  # shown as text
    assert not page.find("ph-thumb-img")  # a javascript: source never reaches the page
    assert "https://elsewhere" not in board_html([Card(1, 0, 1, "p", "rendered", "https://elsewhere/x.png")])


def test_board_refuses_unknown_status_and_bad_frames():
    with pytest.raises(ValueError, match="unknown segment status"):
        board_html([Card(1, 0, 1, "p", "done")])
    with pytest.raises(ValueError, match="uint8"):
        thumbnail_data_uri(np.zeros((8, 8, 3), np.float32))


def test_empty_board_says_what_to_do():
    assert "timeline is empty" in board_html([])


@pytest.mark.parametrize("statuses, expected", [
    ([], "The timeline is empty."),
    (["rendered"] * 3, "Every segment is rendered (3 of 3)."),
    (["rendered", "rendered", "stale"], "2 of 3 rendered; segment 3 is stale. Render the story to bring them up to date."),
    (["stale", "not rendered", "not rendered"],
     "0 of 3 rendered; segment 1 is stale and segments 2 and 3 are not rendered. Render the story to bring them up to date."),
    (["rendered", "rendering", "not rendered"], "Rendering segment 2 (1 of 3 rendered)."),
])
def test_story_status_agrees_with_the_board(statuses, expected):
    assert story_status(statuses) == expected
    # and it never claims "every segment" while a card says otherwise
    if any(s != "rendered" for s in statuses):
        assert "Every segment" not in story_status(statuses)


def test_player_plays_the_rendered_prefix_and_says_so():
    from app.display import playable_segments, player_note, undo_notice

    assert playable_segments(["rendered", "rendered", "stale", "rendered"]) == 2
    assert playable_segments(["not rendered", "rendered"]) == 0
    assert player_note(["rendered"] * 3) == "" and player_note([]) == ""
    assert player_note(["rendered", "rendered", "stale"]) == "Playing segments 1–2 of 3; render the story to see the rest."
    assert player_note(["rendered", "rendering"]) == "Playing segment 1 of 2; render the story to see the rest."
    assert player_note(["stale", "rendered"]) == "Nothing to play yet: render the story."
    assert undo_notice("Deleted segment 3") == "Deleted segment 3. Undo (Ctrl+Z) brings it back."


def test_seed_hint_says_what_the_box_means():
    assert seed_hint(True, 7) == "Locked: regenerating keeps seed 7."
    assert seed_hint(False, 7) == "Unlocked: regenerating draws a new seed."


def test_player_marks_are_placed_by_timecode():
    spans = [(0, 1.375), (1.375, 2.75), (2.75, 4.75), (4.75, 5.75)]
    page = _Tags(player_marks_html(spans, ["a", "b", "c<script>", "d"], current=3))
    marks = page.find("ph-mark")
    assert [m["data-segment"] for m in marks] == ["1", "2", "3", "4"]
    lefts = [float(re.search(r"left:([\d.]+)%", m["style"]).group(1)) for m in marks]
    widths = [float(re.search(r"width:([\d.]+)%", m["style"]).group(1)) for m in marks]
    assert lefts == pytest.approx([0, 23.913, 47.826, 82.609], abs=1e-3)
    assert sum(widths) == pytest.approx(100, abs=1e-2)
    assert [("ph-current" in m["class"]) for m in marks] == [False, False, True, False]
    assert "<script>" not in player_marks_html(spans, ["a", "b", "c<script>", "d"])
    assert [mark_at(spans, t) for t in (0, 1.374, 1.375, 5.0, 5.75, 9)] == [1, 1, 2, 4, 4, 4]
    assert player_marks_html([], []).count("ph-mark'") == 0


def test_prompt_words_flag_unknown_and_offer_known():
    html_ = prompt_words_html("a blu dog", ["blu", "dog"], {"colours": ["red", "blue"], "shapes": ["circle"]},
                              {"blu": ["blue"], "dog": []})
    page = _Tags(html_)
    text = " ".join(page.text)
    assert "never seen" in text and "did you mean" in text and "blue" in text
    assert [a.get("class") for t, a in page.tags if t == "mark"] == ["ph-unknown", "ph-unknown"]
    assert [a["data-phrase"] for a in page.find("ph-phrase")] == ["red", "blue", "circle"]
    assert "knows" in prompt_words_html("a red circle", [], {})
    evil = prompt_words_html("<b>", ["<b>"], {"x": ["<i>'"]})
    assert "<b>" not in evil.replace("<b>blue", "") and "&lt;b&gt;" in evil


def test_shortcuts_list_every_action_the_script_knows():
    page = _Tags(shortcuts_html())
    text = " ".join(page.text)
    for s in SHORTCUTS:
        assert s["does"] in text
    assert {s["action"] for s in SHORTCUTS} == {"render", "playpause", "next", "previous", "undo", "redo"}
    js = studio_js()
    for s in SHORTCUTS:
        assert f"{s['action']}:" in js or f"{s['action']}: " in js


def test_studio_js_takes_only_plain_ids():
    js = studio_js(pick="my-pick", player="story_player")
    config = json.loads(re.search(r"const C = (\{.*?\});\n", js).group(1))
    assert config["pick"] == "my-pick" and config["player"] == "story_player"
    with pytest.raises(ValueError, match="elem_id"):
        studio_js(pick="x'); alert(1); ('")


def test_picked_segment_reads_the_hidden_box():
    assert picked_segment("3:1700000000") == 3
    assert [picked_segment(v) for v in ("", None, "x:1", "-1:2", "1" * 9, 5)] == [None] * 6


# -- in a real browser ------------------------------------------------------------------------------
T = 60_000  # ms: upper bounds for waits, never asserted as timings


@pytest.fixture(scope="module")
def display_page(tmp_path_factory, chromium):
    from display_page import build
    from playwright.sync_api import sync_playwright
    from studio_harness import CHROMIUM_ARGS, serve

    demo = build(tmp_path_factory.mktemp("display"))
    url = serve(demo, css=demo.css_for_launch, js=demo.js_for_launch)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(T)
        page.goto(url)
        page.wait_for_selector(".ph-card")
        page.wait_for_function("document.querySelector('#story-player video')?.readyState >= 1")
        yield page
        browser.close()
    demo.close()


@pytest.mark.browser
def test_in_chromium_board_player_and_keys_work(display_page):
    from playwright.sync_api import expect

    page = display_page
    expect.set_options(timeout=T)
    picked = page.locator("#picked textarea")
    # thumbnails are whole: each picture's box lies inside its card, and the board is not clipped vertically
    board = page.locator("#ph-board").bounding_box()
    for img in page.locator(".ph-thumb-img").all():
        b = img.bounding_box()
        assert b["width"] == b["height"] >= 100
        assert board["y"] <= b["y"] and b["y"] + b["height"] <= board["y"] + board["height"]
    # the story player is large
    video = page.locator("#story-player video").bounding_box()
    assert min(video["width"], video["height"]) >= 500
    # clicking a card selects it (through the server) and plays the story from its start
    page.locator(".ph-card[data-segment='3']").click()
    expect(picked).to_have_value("3")
    expect(page.locator(".ph-card[data-segment='3']")).to_have_attribute("aria-current", "true")
    # the mark under the playhead is the highlighted one, while the video plays
    page.wait_for_function("!document.querySelector('#story-player video').paused")
    state = page.evaluate("""() => { const v = document.querySelector('#story-player video');
        v.pause(); v.currentTime = 3.0; return new Promise(r => v.addEventListener('seeked', () => r(
        [...document.querySelectorAll('.ph-mark.ph-current')].map(m => m.dataset.segment)), {once: true})); }""")
    assert state == ["3"]
    head = page.evaluate("document.querySelector('.ph-playhead').style.left")
    assert float(head.rstrip("%")) == pytest.approx(100 * 3.0 / 5.75, abs=0.5)
    # clicking a mark seeks the video to its segment
    page.locator(".ph-mark[data-segment='2']").click()
    expect(picked).to_have_value("2")
    t = page.evaluate("document.querySelector('#story-player video').currentTime")
    assert 1.375 <= t < 2.75
    # keys: next segment, play/pause, render, undo; none of them fire while typing in a text box
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowDown")
    expect(picked).to_have_value("3")
    page.keyboard.press("[")
    expect(picked).to_have_value("2")
    paused = page.evaluate("document.querySelector('#story-player video').paused")
    page.keyboard.press("k")
    page.wait_for_function(f"document.querySelector('#story-player video').paused === {str(not paused).lower()}")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#last-action textarea")).to_have_value("render")
    page.keyboard.press("Control+z")
    expect(page.locator("#last-action textarea")).to_have_value("undo")
    page.keyboard.press("Control+Shift+Z")
    expect(page.locator("#last-action textarea")).to_have_value("redo")
    prompt = page.locator("#prompt textarea")
    prompt.click()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Control+z")
    page.wait_for_timeout(500)
    expect(picked).to_have_value("2")
    expect(page.locator("#last-action textarea")).to_have_value("redo")
    # unknown words are flagged as the prompt changes, and a suggestion chip adds itself
    prompt.fill("a blu dog runs")
    expect(page.locator(".ph-unknown")).to_have_text(["blu", "dog", "runs"])
    page.locator(".ph-suggest summary").click()
    page.locator(".ph-phrase[data-phrase='on a navy background']").click()
    expect(prompt).to_have_value("a blu dog runs on a navy background")
