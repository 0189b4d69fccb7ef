"""The studio's named API, driven with gradio_client against a real server on the tiny pipeline."""
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from studio_harness import serve

from phenaki_core.io import load_sidecar, read_video
from phenaki_core.story import Story, StoryRenderer


@pytest.fixture(scope="module")
def server(tiny_pipe, tmp_path_factory):
    from app.ui import build_demo

    root = tmp_path_factory.mktemp("studio")
    demo = build_demo(tiny_pipe, projects_dir=root / "projects", work_dir=root / "work", model="tiny")
    url = serve(demo)
    try:
        yield url, root
    finally:
        demo.close()


def client(url) -> Client:
    return Client(url, verbose=False)


def summary(c: Client, sel=1) -> dict:
    return c.predict(sel, "frames", api_name="/select_segment")[0]


def add(c, prompt, frames=11, seed=1, transition="continue", locked=True):
    return c.predict(None, prompt, frames, "frames", seed, locked, transition, api_name="/add_segment")[0]


def fast(c):
    """Two sampling steps: the app tests check the studio, not the samples' quality."""
    return c.predict(None, 2, 3.0, 8, 64, api_name="/set_settings")[0]


def export(c, fmt):
    paths = c.predict(fmt, api_name="/export")
    paths = [p if isinstance(p, str) else p["path"] if isinstance(p, dict) else p for p in paths]
    video = next(p for p in paths if not p.endswith(".story.json"))
    sidecar = next(p for p in paths if p.endswith(".story.json"))
    return video, sidecar


def statuses(s):
    return [x["status"] for x in s["segments"]]


def test_story_render_regenerate_export(server, tiny_pipe):
    url, _ = server
    c = client(url)
    fast(c)
    add(c, "a red circle moves right", seed=1)
    add(c, "a red circle moves left", frames=8, seed=2)
    s = add(c, "a blue circle moves left", seed=3)
    assert statuses(s) == ["not rendered"] * 3 and s["total_frames"] == 30
    assert [x["start"] for x in s["segments"]] == [0, 1.375, 2.375]

    out = c.predict(1, api_name="/render_story")
    s = out[0]
    assert statuses(s) == ["rendered"] * 3, out[5]
    assert "Done" in out[5]
    npy, _ = export(c, "npy")
    first = np.load(npy)
    assert first.shape == (30, 32, 32, 3)

    # edit segment 2 and regenerate it: segment 1 is frozen, segment 3 becomes stale
    s = c.predict(2, "a green circle moves left", 8, "frames", 7, True, "continue", api_name="/update_segment")[0]
    assert statuses(s) == ["rendered", "stale", "stale"]
    s = c.predict(2, api_name="/render_segment")[0]
    assert statuses(s) == ["rendered", "rendered", "stale"]
    assert len(s["segments"][1]["takes"]) == 2 and s["segments"][1]["active_take"] == 2
    with pytest.raises(AppError, match="stale"):
        c.predict("mp4", api_name="/export")
    out = c.predict(2, api_name="/render_story")  # with segment 2 selected; only segment 3 renders
    assert statuses(out[0]) == ["rendered"] * 3
    clip = out[3]["video"] if isinstance(out[3], dict) and "video" in out[3] else out[3]
    # the player ends on the selected segment, not on the last one rendered
    assert isinstance(clip, str) and len(read_video(clip)) == 8, out[3]
    npy2, sidecar = export(c, "npy")
    second = np.load(npy2)
    assert np.array_equal(second[:11], first[:11])  # segment 1 untouched
    assert not np.array_equal(second[11:19], first[11:19])  # segment 2 re-rendered under its new prompt

    # the sidecar alone renders the same frames again, bit for bit
    data = json.loads(open(sidecar).read())
    assert data["segments"][1]["prompt"] == "a green circle moves left" and data["export"]["fps"] == 8
    assert data["model"] == "tiny" and data["model_revision"] == tiny_pipe.revision
    again = StoryRenderer(tiny_pipe, Story.from_dict(data))
    again.render()
    assert np.array_equal(again.frames(), second)

    # back to take 1 of segment 2: its prompt returns; segment 3 goes stale again
    s = c.predict(2, 1, api_name="/pick_take")[0]
    assert s["segments"][1]["prompt"] == "a red circle moves left" and s["segments"][1]["active_take"] == 1
    assert statuses(s) == ["rendered", "rendered", "stale"]
    s = c.predict(1, "frames", api_name="/undo")[0]
    assert s["segments"][1]["prompt"] == "a green circle moves left"
    assert statuses(s) == ["rendered"] * 3  # the take that matches is still there

    video, sidecar = export(c, "mp4")
    assert video.endswith(".mp4") and len(read_video(video)) == 30
    assert json.loads(open(sidecar).read())["format"] == "phenaki-story/1"
    gif, _ = export(c, "gif")
    assert Image.open(gif).n_frames == 30
    assert c.predict(api_name="/preview").endswith(".mp4")


def test_sessions_are_separate_and_project_files(server, tmp_path):
    url, _ = server
    a, b = client(url), client(url)
    a.predict("Red circle: motion, then colour, then shape", api_name="/load_example")
    add(b, "a yellow triangle moves up", seed=4)
    sa, sb = summary(a), summary(b)
    assert len(sa["segments"]) == 4 and sa["segments"][0]["prompt"] == "a red circle moves right"
    assert [x["prompt"] for x in sb["segments"]] == ["a yellow triangle moves up"]

    saved = a.predict(api_name="/save_project")
    text = open(saved).read()
    assert "/tmp" not in text and json.loads(text)["format"] == "phenaki-studio-project/1"
    sb = b.predict(handle_file(saved), api_name="/load_project")[0]
    assert [x["prompt"] for x in sb["segments"]] == [x["prompt"] for x in sa["segments"]]
    sb = b.predict(1, "frames", api_name="/undo")[0]  # loading is one undoable step
    assert [x["prompt"] for x in sb["segments"]] == ["a yellow triangle moves up"]
    assert len(summary(a)["segments"]) == 4

    # duplicate, move, delete, insert, redo
    s = a.predict(1, "frames", api_name="/duplicate_segment")[0]
    assert [x["prompt"] for x in s["segments"]][:2] == ["a red circle moves right"] * 2
    s = a.predict(2, "frames", api_name="/move_down")[0]
    assert s["segments"][2]["prompt"] == "a red circle moves right" and s["selected"] == 3
    s = a.predict(3, "frames", api_name="/delete_segment")[0]
    assert len(s["segments"]) == 4
    s = a.predict(1, "a white square stays still", 2, "seconds", 5, False, "cut", api_name="/insert_segment")[0]
    assert s["segments"][0]["frames"] == 16 and s["segments"][0]["transition"] == "cut"
    assert not s["segments"][0]["seed_locked"]
    a.predict(1, "frames", api_name="/undo")
    s = a.predict(1, "frames", api_name="/redo")[0]
    assert s["segments"][0]["prompt"] == "a white square stays still"


def test_start_from_image(server, tiny_pipe, tmp_path):
    url, _ = server
    c = client(url)
    fast(c)
    add(c, "a red circle moves right", seed=1)
    img = tmp_path / "start.png"
    Image.new("RGB", (80, 60), (200, 30, 30)).save(img)
    s = c.predict(1, handle_file(str(img)), api_name="/set_init")[0]
    assert s["init_frames"] == 1
    s = c.predict(1, api_name="/render_story")[0]
    assert statuses(s) == ["rendered"]
    npy, sidecar = export(c, "npy")
    story, init, _ = load_sidecar(sidecar)
    assert init.shape == (1, 32, 32, 3) and (init == (200, 30, 30)).all()  # the upload, cropped to the model's size
    # The render continued the image: the same story from the image renders these frames, without it others.
    with_image, without = StoryRenderer(tiny_pipe, story, init_frames=init), StoryRenderer(tiny_pipe, story)
    with_image.render(), without.render()
    assert np.array_equal(np.load(npy), with_image.frames())
    assert torch.equal(with_image.results[0].tokens[0][:1], tiny_pipe.encode_frames(init)[0])
    assert not np.array_equal(np.load(npy), without.frames())
    s = c.predict(1, api_name="/clear_init")[0]
    assert s["init_frames"] == 0 and statuses(s) == ["stale"]  # its context changed


BAD_ADDS = [
    ("", 11, "frames", 1, "empty"),
    ("x" * 10_000, 11, "frames", 1, "10000 characters"),
    ("a red \x07circle", 11, "frames", 1, "U\\+0007"),
    ("ok", 0, "frames", 1, "positive"),
    ("ok", -2, "seconds", 1, "positive"),
    ("ok", 10**9, "frames", 1, "duration"),
    ("ok", 11, "frames", -4, "seed"),
]


def test_bad_inputs_get_clear_errors_and_change_nothing(server, tmp_path):
    url, _ = server
    c = client(url)
    add(c, "a red circle moves right")
    before = summary(c)
    for prompt, d, unit, seed, msg in BAD_ADDS:
        with pytest.raises(AppError, match=msg):
            c.predict(None, prompt, d, unit, seed, True, "continue", api_name="/add_segment")
    for steps, guidance, fps, size, msg in [(0, 3.0, 8, 64, "steps"), (10**6, 3.0, 8, 64, "steps"),
                                            (2, 99, 8, 64, "guidance"), (2, 3.0, 0, 64, "fps"),
                                            (2, 3.0, 8, 10**7, "export size")]:
        with pytest.raises(AppError, match=msg):
            c.predict(None, steps, guidance, fps, size, api_name="/set_settings")
    with pytest.raises(AppError, match="segment number"):
        c.predict(9, "frames", api_name="/delete_segment")
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps({"format": "phenaki-studio-project/1", "story": {
        "format": "phenaki-story/1", "segments": [{"prompt": "x", "frames": 11, "seed": 0, "path": "../../etc/passwd"}]},
        "items": [{"id": "../../etc/passwd"}]}))
    with pytest.raises(AppError, match="malformed"):
        c.predict(handle_file(str(hostile)), api_name="/load_project")
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "phenaki-studio-project/1", "story": ')
    with pytest.raises(AppError, match="not valid JSON"):
        c.predict(handle_file(str(broken)), api_name="/load_project")
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(AppError, match="not an image or a video"):
        c.predict(1, handle_file(str(fake)), api_name="/set_init")
    with pytest.raises(AppError, match="not in the list of choices|no example"):
        c.predict("../../etc/passwd", api_name="/load_example")
    assert summary(c) == before  # the project is unchanged and the server still answers


def test_serves_only_files_it_made(server):
    import urllib.error
    import urllib.request

    url, root = server
    secret = root / "projects" / ".browser-state-secret"
    for path in ["/etc/passwd", str(secret), str(Path(__file__).resolve()), "../../etc/passwd"]:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=30)
        assert e.value.code in (403, 404)


def wait_for(condition, what: str, limit_s: float = 120):
    """A watchdog, not a timing check: poll until `condition()`, fail with a message if it never comes."""
    for _ in range(int(limit_s / 0.05)):
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} (nothing after {limit_s:g} s)")


def test_cancel_stops_the_render(server, tiny_pipe):
    url, _ = server
    c = client(url)
    c.predict(None, 64, 3.0, 8, 64, api_name="/set_settings")
    add(c, "a red circle moves right", frames=400)  # far longer than the test waits for
    forwards = []  # the shared pipeline's sampling steps, counted where they happen
    hook = tiny_pipe.transformer.register_forward_hook(lambda *a: forwards.append(1))
    try:
        job = c.submit(1, api_name="/render_story")
        wait_for(lambda: any("step" in str(o[5]) for o in job.outputs()) or job.done(), "the render never reported a step")
        c.predict(1, api_name="/cancel")
        out = job.result(timeout=120)
        assert "Cancelled" in out[5], out[5]
        assert statuses(out[0]) == ["not rendered"]
        # The sampling really stopped: the pipeline takes no step once the render says it was cancelled.
        stopped_at = len(forwards)
        assert stopped_at > 0
        time.sleep(1.0)
        assert len(forwards) == stopped_at, f"{len(forwards) - stopped_at} sampling steps ran after the cancel"
    finally:
        hook.remove()
    s = summary(c)
    assert statuses(s) == ["not rendered"] and s["segments"][0]["takes"] == []  # no take appeared after the cancel


def test_two_clients_render_at_once_the_frames_each_would_get_alone(server, tiny_pipe):
    url, _ = server
    clients = [client(url) for _ in range(3)]
    texts = ["a red circle moves right", "a cyan square moves down", "a yellow triangle grows"]
    for c, text in zip(clients, texts):
        c.predict(None, 12, 3.0, 8, 64, api_name="/set_settings")
        add(c, text, frames=23, seed=3)  # three clips each: long enough for the renders to overlap
    jobs = [c.submit(1, api_name="/render_story") for c in clients]
    results = [j.result(timeout=300)[0] for j in jobs]
    for c, s, text in zip(clients, results, texts):
        assert statuses(s) == ["rendered"] and [x["prompt"] for x in s["segments"]] == [text]
        npy, sidecar = export(c, "npy")
        alone = StoryRenderer(tiny_pipe, load_sidecar(sidecar)[0])  # the same story, rendered alone afterwards
        alone.render()
        assert np.array_equal(np.load(npy), alone.frames()), f"{text!r}: rendered beside others, other frames"


def test_autosave_survives_a_restart(tiny_pipe, tmp_path):
    """A new server process (a fresh Studio from the same projects folder) finds the project,
    its takes' frames and its undo history."""
    from app.render import Studio, new_session_id
    from phenaki_core.story import Segment

    sid = new_session_id()
    st = Studio(tiny_pipe, sid, tmp_path / "projects", tmp_path / "work", "tiny")
    st.project.set_settings(num_inference_steps=1)
    st.project.add(Segment("a red circle moves right", 11, 1))
    st.project.add(Segment("a red circle moves left", 6, 2))
    events = list(st.iter_render())
    assert events[-1][0] == "done"
    st.autosave()
    frames = st.story_frames()
    again = Studio.restore(tiny_pipe, sid, tmp_path / "projects", tmp_path / "work", "tiny")
    assert again.status() == ["rendered", "rendered"]
    assert np.array_equal(again.story_frames(), frames)
    again.project.undo()
    assert len(again.project.items) == 1
    other = Studio.restore(tiny_pipe, new_session_id(), tmp_path / "projects", tmp_path / "work", "tiny")
    assert other.project.items == []  # another session id sees nothing of it
