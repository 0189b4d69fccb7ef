"""Messages are plain text: what a user or a file supplied is escaped (Gradio renders a toast
as HTML, and links and remote images survive its sanitiser), no server path, no library
internals. Hostile project files are refused with such a message, the project unchanged."""
from __future__ import annotations

import json

import pytest
from gradio_client import handle_file
from hostile_helpers import add, assert_plain, client, project_state, refused, summary

FMT = "phenaki-studio-project/1"
LINK = "<a href='http://example.com/steal'>click</a>"
IMG = "<img src='http://example.com/pixel.png'>"


def story(segments, **extra):
    return {"format": "phenaki-story/1", "segments": segments, **extra}


def seg(**extra):
    return {"prompt": "a red circle moves right", "frames": 11, "seed": 0, "transition": "continue", **extra}


def project(segments=None, items=None, **extra):
    segments = [seg()] if segments is None else segments
    items = [{"id": "0123abcd", "takes": []}] if items is None else items
    return {"format": FMT, "story": story(segments), "items": items, **extra}


HOSTILE_FILES = {  # name: (file text, what the message says)
    "unknown field is a link": (project([seg(**{LINK: 1})]), "unknown fields"),
    "unknown field is a remote image": (project([seg(**{IMG: 1})]), "unknown fields"),
    "segments are markup": ({"format": FMT, "story": story(IMG), "items": [{"id": "0123abcd"}]}, "segment"),
    "format is markup": ({"format": IMG}, "not a Phenaki Studio project"),
    "take segment key is markup": (project(items=[{"id": "0123abcd", "takes": [
        {"id": 1, "segment": {**seg(), IMG: 1}, "sampling": [12, 3.0, 5], "context_fingerprint": "none"}]}]),
        "malformed"),
    "item id is markup": (project(items=[{"id": IMG}]), "invalid id"),
    "item id is a path": (project(items=[{"id": "../../etc/passwd"}]), "invalid id"),
    "transition is markup": (project([seg(transition=LINK)]), "transition"),
    "seed is markup": (project([seg(seed=IMG)]), "seed"),
    "frames is markup": (project([seg(frames=LINK)]), "duration"),
    "prompt is a number": (project([seg(prompt=5)]), "prompt"),
    "prompt is zero-width": (project([seg(prompt="\u200b\u200b")]), "prompt"),
    "settings is a link": (project(settings=LINK), "settings"),
    "steps are markup": ({"format": FMT, "story": {**story([seg()]), "num_inference_steps": IMG},
                          "items": [{"id": "0123abcd"}]}, "steps"),
    "guidance is NaN": ((f'{{"format": "{FMT}", "story": {{"format": "phenaki-story/1", "segments": [], '
                         '"guidance_scale": NaN}}'), "NaN"),
    "deeply nested": (f'{{"format": "{FMT}", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested|JSON"),
    "not JSON": ("<html><body>" + LINK + "</body></html>", "not valid JSON"),
    "not UTF-8": (b"\xff\xfe<\x00a\x00>\x00", "UTF-8"),
    "takes without a list": (project(items=[{"id": "0123abcd", "takes": IMG}]), "malformed"),
    "too many segments for items": (project([seg(), seg()]), "disagree"),
    "init frames are markup": (project(init_frames=[IMG]), "init frames"),
    "init frames not a list": (project(init_frames=LINK), "init frames"),
    "history entry with markup id": (project(history={"undo": [{"items": [{"id": IMG, "segment": seg(),
                                                                           "locked": True, "active_take": None}],
                                                                "settings": {}}]}), "invalid id|malformed"),
    "model is markup": ({**project(), "story": {**story([seg()]), "model": LINK}}, "."),
}


def as_bytes(text) -> bytes:
    if isinstance(text, bytes):
        return text
    return (text if isinstance(text, str) else json.dumps(text)).encode()


@pytest.fixture(scope="module")
def loader(studio):
    url, root, _ = studio
    c = client(url)
    add(c, "a red circle moves right", seed=2)
    return c, root


@pytest.mark.hostile("files")
@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_hostile_project_file(loader, tmp_path, name):
    import re

    c, root = loader
    text, expected = HOSTILE_FILES[name]
    path = tmp_path / "shared-project.json"
    path.write_bytes(as_bytes(text))
    before = project_state(summary(c))
    if name == "model is markup":  # a valid project whose model name is markup: loads; the warning is escaped
        from app.messages import plain

        s = c.predict(handle_file(str(path)), api_name="/load_project")[0]
        assert s["made_with"] == LINK and plain(s["made_with"]).startswith("&lt;a")
        c.predict(1, "frames", api_name="/undo")
        assert project_state(summary(c))["segments"] == before["segments"]
        return
    msg = refused(c, handle_file(str(path)), api_name="/load_project", root=root)
    assert re.search(expected, msg), msg
    assert "http://example.com" not in msg or "&lt;" in msg  # a link shows as text, never as a link
    assert project_state(summary(c)) == before


PLAIN = [  # (text in, what must not come out, what must)
    ("unknown fields ['<a href=http://x>y</a>']", "<a", "&lt;a"),
    ("<img src=http://example.com/x.png>", "<img", "&lt;img"),
    ("<script>alert(1)</script>", "<script", "&lt;script"),
    ("cannot read the video /tmp/gradio/abc/clip.mp4: [Errno 1094995529] Invalid data", "/tmp", "clip.mp4"),
    ("at /home/user/outputs/projects/0123/project.json", "/home", "project.json"),
    ("at /work/main/.venv/lib/python3.11/site-packages/av/x.py line 3", "site-packages", "x.py"),
    ("C:\\Users\\me\\AppData\\Local\\Temp\\gradio\\a.png is bad", "Users", "a.png"),
    ("file:///etc/passwd", "/etc", "passwd"),
    ("[Errno 2] No such file or directory", "Errno", "No such file"),
    ("x" * 5000, "x" * 700, "…"),
    ("a ratio of 1/2 is fine", "&lt;", "1/2"),
    ("multi\nline\ttext", "\n", "multi line text"),
    ("&amp; already", "\x00", "&amp;amp; already"),
    ("<b>bold</b> & <i>it</i>", "<b>", "&lt;b&gt;bold&lt;/b&gt; &amp;"),
    ("error in /var/lib/phenaki/models/x/config.json", "/var", "config.json"),
]


@pytest.mark.hostile("markup")
@pytest.mark.parametrize("text, gone, kept", PLAIN, ids=[p[0][:30] for p in PLAIN])
def test_plain(text, gone, kept):
    from app.messages import plain

    out = plain(text)
    assert gone not in out and kept in out, out


@pytest.mark.hostile("markup")
@pytest.mark.parametrize("prompt", [LINK, IMG, "<script>alert(1)</script> a red circle", "a & b < c"])
def test_markup_in_a_prompt_is_shown_as_text(loader, prompt):
    """A prompt may hold any visible text; the page shows it as text (the timeline escapes it)
    and a message that quotes it escapes it too."""
    c, root = loader
    s = c.predict(None, prompt, 11, "frames", 1, True, "continue", api_name="/add_segment")[0]
    assert s["segments"][-1]["prompt"] == prompt
    msg = refused(c, None, prompt, 10**9, "frames", 1, True, "continue", api_name="/add_segment", root=root)
    assert "duration" in msg
    c.predict(1, "frames", api_name="/undo")


@pytest.mark.hostile("markup")
def test_render_failure_message_has_no_internals(tiny_pipe, tmp_path, monkeypatch):
    """A render that fails unexpectedly said "rendering failed: RuntimeError: <its text>", which
    can hold server paths and library internals; now it says what to do."""
    from app.render import Studio, new_session_id
    from phenaki_core.story import Segment, StoryRenderer

    st = Studio(tiny_pipe, new_session_id(), tmp_path / "p", tmp_path / "w", "tiny")
    st.project.set_settings(num_inference_steps=1)
    st.project.add(Segment("a red circle moves right", 11, 1))

    def boom(*a, **k):
        raise RuntimeError(f"failed to mmap {tmp_path}/work/cache.bin: <b>CUDA</b> error at 0x7f00")
    monkeypatch.setattr(StoryRenderer, "render_segment", boom)
    kind, msg = list(st.iter_render())[-1]
    assert kind == "error"
    assert_plain(msg, tmp_path)
    assert "RuntimeError" not in msg and "0x7f00" not in msg and "Render again" in msg


@pytest.mark.hostile("serving")
@pytest.mark.parametrize("target", ["/etc/passwd", "secret", "autosave", "this test", "../../etc/passwd",
                                    "..%2f..%2fetc%2fpasswd", "/proc/self/environ", "%2fetc%2fpasswd",
                                    "work", "~/.bashrc"])
def test_serves_only_files_it_made(studio, target):
    import urllib.error
    import urllib.request

    url, root, _ = studio
    c = client(url)
    add(c, "a red circle moves right")
    paths = {"secret": root / "projects" / ".browser-state-secret", "this test": __file__,
             "autosave": next((root / "projects").rglob("project.json"), root / "x"), "work": root / "work"}
    path = str(paths.get(target, target))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=30)
    assert e.value.code in (400, 403, 404)
